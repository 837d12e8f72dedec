"""Helpers for the server processes tests start (gunicorn, http.server)."""

from __future__ import annotations

import subprocess


def stop_process(proc: "subprocess.Popen[bytes] | subprocess.Popen[str]", timeout: float = 10) -> None:
    """SIGTERM, wait up to *timeout* seconds, then SIGKILL: never leave a
    server running after its test, even one that ignores SIGTERM."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
