"""scripts/provider.py itself: idempotent start/stop, status, clear failures."""

import socket

import pytest

from .conftest import ProviderProcess, free_port

pytestmark = pytest.mark.integration


def test_start_stop_are_idempotent(provider_installed, tmp_path):
    op = ProviderProcess(tmp_path / "run", free_port())
    op.start()
    try:
        again = op._script("start", "--port", str(op.port))
        assert again.returncode == 0, again.stderr
        assert again.stdout.strip().splitlines()[-1] == "ISSUER=" + op.issuer
        assert "already running" in again.stderr

        # Another port while one runs from the same run dir: refused, not a second process.
        other = op._script("start", "--port", str(free_port()))
        assert other.returncode == 1 and "stop it first" in other.stderr

        status = op._script("status")
        assert status.returncode == 0 and "discovery=ok" in status.stdout
        # Loopback only: the provider is bound to 127.0.0.1.
        assert op.discovery["issuer"] == op.issuer
    finally:
        op.stop()
    op.stop()  # stopping a stopped provider is fine
    status = op._script("status")
    assert status.returncode == 1 and status.stdout.strip() == "stopped"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", op.port), timeout=1).close()


def test_start_fails_clearly_when_the_port_is_taken(provider_installed, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        op = ProviderProcess(tmp_path / "run", busy.getsockname()[1])
        proc = op._script("start", "--port", str(op.port))
    assert proc.returncode == 1
    assert "EADDRINUSE" in proc.stderr  # the provider's own log tail is shown
    assert op._script("status").returncode == 1
