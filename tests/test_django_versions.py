"""The Django / DRF tests (tests/test_django.py, tests/test_drf.py) under the
other supported Django lines, each in a venv of its own built by
scripts/test_django_versions.sh (about a minute on a fresh machine, seconds
once the venvs exist): 4.2 LTS on this Python, 6.0 on Python >= 3.12 when
one is found (pyenv or PATH; otherwise the script says it skipped it).  The
project venv itself runs them under 5.2 LTS."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_django_lines():
    if shutil.which("bash") is None:
        pytest.skip("needs bash")
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "test_django_versions.sh")], cwd=str(ROOT),
                          capture_output=True, text=True, timeout=900)
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:] + proc.stderr[-4000:]
    assert re.search(r"^Django 4\.2: 4\.2\.\d+ ", out, re.M), out[-2000:]
    lines = re.findall(r"^Django (\d+\.\d+): (SKIPPED|\d)", out, re.M)
    assert [line for line, _ in lines] == ["4.2", "6.0"], out[-2000:]
    ran = [line for line, what in lines if what != "SKIPPED"]
    passed = re.findall(r"^(\d+) passed", out, re.M)
    assert len(passed) == len(ran) and all(int(n) >= 40 for n in passed), out[-2000:]
