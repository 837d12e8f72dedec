"""``python -m oidc_guard``: the ``oidc-guard`` command line (:mod:`oidc_guard.cli`)."""

from .cli import console_main

if __name__ == "__main__":
    console_main()
