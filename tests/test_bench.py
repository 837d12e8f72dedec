"""bench/run.py is one runner over a registry of sections (bench/sections/):
the sections are found, offered by --only in run order, and a section's
fresh-process measurement (a registered child) runs through the runner."""

import json
import os
import subprocess
import sys

RUN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "run.py")


def test_only_offers_every_registered_section_in_run_order():
    out = subprocess.run([sys.executable, RUN, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "--only {tokens,reference,routing,dpop,web,django,asgi,memory,introspection}" in out.stdout
    bad = subprocess.run([sys.executable, RUN, "--only", "nope"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "invalid choice: 'nope'" in bad.stderr


def test_memory_child_runs_through_the_runner_and_keeps_the_bound():
    out = subprocess.run([sys.executable, RUN, "--_child", "memory", "60", "25"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert (result["count"], result["cache_size"], result["entries"]) == (60, 25, 25)
    assert result["last_ok"] is True
    assert result["traced"] > 0
