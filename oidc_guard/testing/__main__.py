"""``python -m oidc_guard.testing``: development tools (:mod:`oidc_guard.testing.devtoken`)."""

import sys

from .devtoken import main

if __name__ == "__main__":
    sys.exit(main())
