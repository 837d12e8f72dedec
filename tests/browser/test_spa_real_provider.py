"""The example SPA and API, unchanged but for the issuer URL, against a real
OpenID Provider nobody on this project wrote: panva's ``oidc-provider``
7.14.3 from npm (the last release line with implicit ``id_token token``),
installed and started through the project's own ``scripts/provider.py``.

The provider's ``spa`` client is a native-type public client whose loopback
redirect URIs match on any port (RFC 8252 section 7.3), so the SPA's
ephemeral port needs no provider change.  Its built-in development login and
consent pages (``devInteractions``) accept any password.

Skipped when node/npm are not on PATH (like the integration suite); a failed
install or start is an error, not a skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from .authz import rewrite_authorize_param
from .flows import scope_names


expect = pytest.importorskip("playwright.sync_api", reason="pip install playwright (PyPI package only)").expect

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
PROVIDER_SCRIPT = ROOT / "scripts" / "provider.py"
VARIANT = "7"  # oidc-provider 7.14.3: has response_type "id_token token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _script(env, *args, timeout=120):
    return subprocess.run(
        [sys.executable, str(PROVIDER_SCRIPT), *args],
        cwd=str(ROOT), env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture(scope="module")
def npm_provider(tmp_path_factory):
    """A private oidc-provider instance on an ephemeral loopback port."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs Node.js and npm on PATH (missing: {', '.join(missing)})")
    if not PROVIDER_SCRIPT.exists():
        pytest.fail(f"{PROVIDER_SCRIPT} is missing", pytrace=False)
    env = dict(os.environ, OIDC_PROVIDER_RUN_DIR=str(tmp_path_factory.mktemp("oidc-provider-browser")))
    installed = _script(env, "install", "--variant", VARIANT, timeout=600)
    if installed.returncode != 0:
        pytest.fail(f"scripts/provider.py install failed:\n{installed.stdout}{installed.stderr}", pytrace=False)
    port = _free_port()
    started = _script(env, "start", "--variant", VARIANT, "--port", str(port), timeout=90)
    if started.returncode != 0:
        pytest.fail(f"scripts/provider.py start failed:\n{started.stdout}{started.stderr}", pytrace=False)
    issuer = f"http://127.0.0.1:{port}"
    assert started.stdout.strip().splitlines()[-1] == "ISSUER=" + issuer
    try:
        no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
        with no_proxy.open(issuer + "/.well-known/openid-configuration", timeout=10) as response:
            discovery = json.load(response)
        yield {"issuer": issuer, "discovery": discovery}
    finally:
        _script(env, "stop", "--variant", VARIANT, timeout=60)


@pytest.fixture
def real_stack(npm_provider, tmp_path):
    import demo

    discovery = npm_provider["discovery"]
    assert "id_token token" in discovery["response_types_supported"]
    stack = demo.Stack(
        ports={"provider": 0, "api": 0, "spa": 0},
        db_path=str(tmp_path / "contacts.sqlite3"),
        issuer_url=npm_provider["issuer"],
        authorization_endpoint=discovery["authorization_endpoint"],
    )
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def _login_and_consent(page, shots, stack, login):
    """oidc-provider's devInteractions: a login page, then a consent page."""
    page.wait_for_url(re.compile("^" + re.escape(stack.issuer_url) + "/interaction/"))
    page.fill("input[name='login']", login)
    page.fill("input[name='password']", "any-password")
    shots("oidc-provider-login")
    page.click("button[type='submit']")
    page.wait_for_url(re.compile("^(" + re.escape(stack.issuer_url) + "/interaction/|" + re.escape(stack.spa_url) + ")"))
    if page.url.startswith(stack.issuer_url):
        expect(page.locator("button[type='submit']").first).to_have_text(re.compile("Continue"))
        shots("oidc-provider-consent")
        page.locator("button[type='submit']").first.click()


def test_sign_in_against_oidc_provider(page, shots, real_stack):
    stack = real_stack
    page.goto(stack.spa_url)
    page.wait_for_selector("body[data-phase='signed-out']")
    shots("signed-out")
    page.click("#signin")
    _login_and_consent(page, shots, stack, "alice")

    page.wait_for_selector("body[data-phase='signed-in']")
    shots("signed-in")
    assert page.url == stack.spa_url
    assert page.evaluate("location.hash") == ""
    assert page.evaluate("Object.keys(sessionStorage)") == ["contacts-spa.session"]  # this tab only
    assert page.evaluate("localStorage.length") == 0

    # The API verified oidc-provider's id_token (nonce, at_hash) and its
    # RFC 9068 JWT access token (aud api://contacts, scope string).
    assert page.text_content("#user") == "Alice Example (sub alice)"
    assert page.text_content("#issuer") == stack.issuer_url
    handoff = json.loads(page.text_content("#handoff-result"))
    assert handoff["user"]["sub"] == "alice" and handoff["client_id"] == "spa"
    assert "at_hash matches the bearer token" in handoff["checked"]
    scopes = set(scope_names(page))
    assert {"contacts", "coordinate", "wte", "openid", "profile"} <= scopes  # profile: id_token scopes too
    assert page.locator("#scopes-missing-block").is_hidden()
    assert re.fullmatch(r"in \d+ (min|s)", page.text_content("#expiry-left"))

    page.fill("#emails", "ann@example.com, bob@example.org")
    page.click("#import")
    expect(page.locator("#contacts-list li")).to_have_count(2)
    assert page.locator("#contacts-list li").all_text_contents() == ["ann@example.com", "bob@example.org"]
    shots("contacts-imported")

    page.click("#coordinate")
    expect(page.locator("#coordinate-result")).to_contain_text('"sub": "alice"')
    assert not [line for line in page.console_seen if line.startswith("pageerror")], page.console_seen


def test_state_mismatch_against_oidc_provider(page, shots, real_stack):
    stack = real_stack
    api_calls = lambda: [u for u in page.requests_seen if u.startswith(stack.api_url)]  # noqa: E731

    rewrite_authorize_param(page, stack.authorization_endpoint, "state", "attacker-chosen-state")
    page.goto(stack.spa_url)
    page.click("#signin")
    _login_and_consent(page, shots, stack, "mallory")
    page.wait_for_selector("body[data-phase='error']")
    shots("state-mismatch-refused")
    assert page.text_content("#error").startswith("State mismatch")
    assert page.url == stack.spa_url
    assert api_calls() == []
