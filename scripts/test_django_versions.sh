#!/usr/bin/env bash
# Run the Django / DRF tests under each supported Django line, each in a
# venv of its own (build/django-venvs/), next to the project venv's Django:
#
#   bash scripts/test_django_versions.sh            # 4.2 LTS and 6.0 (Python >= 3.12)
#   bash scripts/test_django_versions.sh 4.2        # one line only
#
# Django 6.x needs Python 3.12 or later: PYTHON312 (default: python3.12 on
# PATH, else pyenv's newest 3.12/3.13); without one that line is skipped
# with a message, not failed.
set -euo pipefail
cd "$(dirname "$0")/.."

LINES=("$@")
[ ${#LINES[@]} -eq 0 ] && LINES=(4.2 6.0)

python_for() {
    case "$1" in
        4.2|5.2) command -v python3 ;;
        *)
            if [ -n "${PYTHON312:-}" ]; then echo "$PYTHON312"; return; fi
            for candidate in python3.13 python3.12; do
                # (a pyenv shim is on PATH even when that version is not active)
                if "$candidate" -c "import sys; assert sys.version_info >= (3, 12)" >/dev/null 2>&1; then
                    command -v "$candidate"; return
                fi
            done
            if command -v pyenv >/dev/null || [ -x "$HOME/.pyenv/bin/pyenv" ]; then
                root="$("${HOME}/.pyenv/bin/pyenv" root 2>/dev/null || pyenv root)"
                for v in $(ls "$root/versions" 2>/dev/null | grep -E '^3\.1[2-9]' | sort -V -r); do
                    echo "$root/versions/$v/bin/python"; return
                done
            fi ;;
    esac
}

status=0
for line in "${LINES[@]}"; do
    py="$(python_for "$line" || true)"
    if [ -z "$py" ]; then
        echo "Django $line: SKIPPED (needs Python >= 3.12; set PYTHON312)"
        continue
    fi
    venv="build/django-venvs/django-$line"
    if [ ! -x "$venv/bin/python" ]; then
        "$py" -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --upgrade pip
    fi
    "$venv/bin/python" -m pip install --quiet -e . "Django==$line.*" djangorestframework drf-spectacular \
        "pyjwt[crypto]>=2.8" "pytest>=7.4" asgiref
    echo "Django $line: $("$venv/bin/python" -c 'import django, rest_framework, sys; print(django.get_version(), "DRF", rest_framework.VERSION, "Python", sys.version.split()[0])')"
    "$venv/bin/python" -m pytest -p no:cacheprovider -q tests/test_django.py tests/test_drf.py || status=1
done
exit $status
