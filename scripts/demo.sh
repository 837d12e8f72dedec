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
# Install (quietly, pip's output in .venv/oidc_guard-install.log) only on the
# first run or when setup.cfg / pyproject.toml changed; see the script.
# The demo's provider is oidc_guard.testing.LocalIssuer: extra "testing";
# the Django twin of the contacts API needs the extra "drf"; the FastAPI
# example runs under uvicorn: extras "fastapi" and "examples".
.venv/bin/python scripts/install_stamp.py ensure flask,testing,drf,fastapi,examples
# Swagger UI's files for the FastAPI example's /docs (npm; skipped without it).
if command -v npm >/dev/null 2>&1; then
    bash scripts/install_swagger_ui.sh
fi
exec .venv/bin/python examples/demo.py "$@"
