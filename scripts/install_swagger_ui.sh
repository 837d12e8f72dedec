#!/usr/bin/env bash
# Swagger UI's static files for the FastAPI example's /docs page (and its
# browser test): npm swagger-ui-dist, pinned in scripts/swagger-ui/package.json
# and package-lock.json, installed into scripts/swagger-ui/node_modules.
# FastAPI's default docs page loads them from a CDN; the example serves them
# from this folder instead.
#
# --ignore-scripts: swagger-ui-dist depends on @scarf/scarf, whose install
# script reports the installation to a third party; nothing here needs it.
# Idempotent: skipped when the pinned version is already installed.
set -euo pipefail
cd "$(dirname "$0")/swagger-ui"
want=$(python3 -c 'import json; print(json.load(open("package.json"))["dependencies"]["swagger-ui-dist"])')
have=$(python3 -c 'import json,sys
try: print(json.load(open("node_modules/swagger-ui-dist/package.json"))["version"])
except OSError: print("")')
if [ "$have" = "$want" ]; then
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "install_swagger_ui.sh: npm not found on PATH (install Node.js with npm)" >&2
    exit 3
fi
echo "install_swagger_ui.sh: installing swagger-ui-dist $want with npm ci (found: ${have:-none})"
SCARF_ANALYTICS=false npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
test -f node_modules/swagger-ui-dist/swagger-ui-bundle.js
