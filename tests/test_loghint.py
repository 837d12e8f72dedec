"""The one-time hint when refusals are logged where nobody sees them.

Logging configuration is process-wide (and pytest installs its own
handlers), so each case runs in a fresh interpreter: a WSGI app behind
BearerMiddleware(required=True) refuses three requests (a malformed token,
the same again, no token) and the test reads stderr, where
``logging.lastResort`` or the configured handler writes.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HINT = "oidc_guard refused a request; the reason is logged at INFO"
REASON = "rejected bearer token"

SCRIPT = '''
import io, logging, sys
{setup}
from oidc_guard import BearerMiddleware, TokenValidator

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]

# Never contacted: a token that is not a JWT is refused before any network.
validator = TokenValidator("http://127.0.0.1:9", audience="api://x")
guarded = BearerMiddleware(app, validator, realm="r", required=True)
statuses = []
for auth in ("Bearer not-a-jwt", "Bearer not-a-jwt", None):
    environ = {{"REQUEST_METHOD": "GET", "PATH_INFO": "/x", "wsgi.input": io.BytesIO(b"")}}
    if auth:
        environ["HTTP_AUTHORIZATION"] = auth
    guarded(environ, lambda status, headers, exc_info=None: statuses.append(status))
print(statuses)
'''


def run(setup: str) -> subprocess.CompletedProcess:
    code = textwrap.dedent(SCRIPT).format(setup=textwrap.dedent(setup))
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("401") == 3, result.stdout  # every request was refused
    return result


def test_no_logging_configured_the_hint_appears_once():
    result = run("")
    assert result.stderr.count(HINT) == 1, result.stderr
    assert "logging.basicConfig(level=logging.INFO)" in result.stderr
    assert REASON not in result.stderr  # the reasons themselves are INFO: not shown
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr  # one line, nothing else


def test_info_logging_configured_no_hint_and_the_reasons_show():
    result = run("logging.basicConfig(level=logging.INFO, stream=sys.stderr)")
    assert HINT not in result.stderr
    assert result.stderr.count(REASON) == 2 and "not-a-jwt" not in result.stderr
    assert "no bearer token" in result.stderr


def test_oidc_guard_logger_with_its_own_handler_no_hint():
    result = run(
        """
        handler = logging.StreamHandler(sys.stderr)
        logging.getLogger("oidc_guard").addHandler(handler)
        logging.getLogger("oidc_guard").setLevel(logging.INFO)
        """
    )
    assert HINT not in result.stderr
    assert result.stderr.count(REASON) == 2


@pytest.mark.parametrize(
    "setup",
    [
        # a handler, but the root level stays WARNING: INFO goes nowhere
        "logging.basicConfig(stream=sys.stderr)",
        # INFO enabled, but no handler: lastResort shows WARNING and above only
        "logging.getLogger('oidc_guard').setLevel(logging.INFO)",
    ],
)
def test_reasons_still_invisible_the_hint_appears_once(setup):
    result = run(setup)
    assert result.stderr.count(HINT) == 1, result.stderr
    assert REASON not in result.stderr


def test_silenced_on_purpose_no_hint():
    result = run("logging.getLogger('oidc_guard').setLevel(logging.ERROR)")
    assert result.stderr == ""


def test_visibility_rules_in_process():
    import io
    import logging

    from oidc_guard.loghint import reasons_visible

    logger = logging.getLogger("oidc_guard.test_loghint_probe")
    parent = logging.getLogger("oidc_guard")
    saved = (parent.level, parent.propagate, list(parent.handlers))
    try:
        parent.propagate = False  # pytest's own handlers on the root do not count here
        parent.handlers = []
        parent.setLevel(logging.INFO)
        assert not reasons_visible(logger)
        warning_only = logging.StreamHandler()
        warning_only.setLevel(logging.WARNING)
        parent.addHandler(warning_only)
        assert not reasons_visible(logger)
        parent.addHandler(logging.StreamHandler(io.StringIO()))  # level NOTSET: takes INFO
        assert reasons_visible(logger)
        parent.setLevel(logging.WARNING)
        assert not reasons_visible(logger)
    finally:
        parent.setLevel(saved[0])
        parent.propagate = saved[1]
        parent.handlers = saved[2]
