#!/usr/bin/env bash
# Install everything the test suites need, then run them all.
#
#   bash scripts/test.sh            # every suite: unit, integration, browser, reliability
#   bash scripts/test.sh -m "not browser"   # extra arguments go to pytest
#
# Installs, idempotently:
#   * a virtualenv in .venv with the project and its test, browser and docs extras (PyPI);
#   * the pinned npm oidc-provider for the integration suite (npm ci);
#   * the pinned npm swagger-ui-dist for the FastAPI example's /docs (npm ci);
#   * Debian's chromium for the browser suite (apt-get; needs root);
#   * Debian's redis-server for the shared-cache tests (apt-get; needs root).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test,browser,docs]"

# The real third-party OpenID Provider (panva's oidc-provider, pinned).
.venv/bin/python scripts/provider.py install

# Swagger UI's static files for the FastAPI example's /docs (npm swagger-ui-dist, pinned).
bash scripts/install_swagger_ui.sh

# A real browser: Debian's chromium (Playwright's own download cannot work here).
bash scripts/install_chromium.sh

# A real Redis for the shared cache (the tests start their own on a free port).
bash scripts/install_redis.sh

# Everything was installed above, so the browser suite must run, not skip.
export OIDC_GUARD_BROWSER_REQUIRED=${OIDC_GUARD_BROWSER_REQUIRED:-1}
export OIDC_GUARD_REDIS_REQUIRED=${OIDC_GUARD_REDIS_REQUIRED:-1}
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
