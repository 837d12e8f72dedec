#!/usr/bin/env bash
# Install oidc_guard into .venv and start the demo: a development identity
# provider, the contacts API and the single-page app, all on 127.0.0.1.
#
#   bash scripts/demo.sh            # then open the printed URL
#   bash scripts/demo.sh --check    # the whole sign-in and API handoff, headless
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet -e ".[flask]"
exec .venv/bin/python examples/demo.py "$@"
