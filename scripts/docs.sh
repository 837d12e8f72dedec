#!/usr/bin/env bash
# Build the documentation site from a fresh clone: install the project with
# its docs extra into .venv (only when setup.cfg / pyproject.toml changed, see
# scripts/install_stamp.py), then run Sphinx exactly as tests/test_docs.py
# does: offline, nitpicky, every warning an error.
#
#   bash scripts/docs.sh            # then open build/docs/index.html
#   bash scripts/docs.sh OUTDIR     # build somewhere else
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:-build/docs}
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
# autodoc imports every module: the Flask extension needs flask, the
# testing package's pages need PyJWT (extra "testing").
.venv/bin/python scripts/install_stamp.py ensure docs,flask,testing
.venv/bin/python -m sphinx -W --keep-going -n -q -b html docs "$OUT"
echo "docs: built $OUT/index.html"
