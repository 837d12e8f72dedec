"""The example SPA in a real browser against the development provider
(``oidc_guard.testing.LocalIssuer``), the contacts API and the SPA server of
``examples/demo.py``.

What a user would do and see: sign in, land back with the tokens gone from
the address bar, see who they are (after the API verified the id_token),
the granted scopes and the expiry, import and list contacts; and what an
attacker would try: a forged or replayed authentication response must be
refused by the page before any API call.
"""

from __future__ import annotations

import urllib.parse

import pytest

from .authz import rewrite_authorize_param
from .flows import api_calls, grant_only, no_page_errors, scope_names, sign_in

expect = pytest.importorskip("playwright.sync_api", reason="pip install playwright (PyPI package only)").expect

pytestmark = pytest.mark.browser


_api_calls = api_calls
_sign_in = sign_in


def test_sign_in_import_and_list_contacts(page, shots, dev_stack):
    stack = dev_stack
    _sign_in(page, shots, stack)

    page.wait_for_selector("body[data-phase='signed-in']")
    shots("signed-in")

    # Back on the SPA, and the fragment with the tokens is gone from the
    # address bar (history.replaceState); the session is in this tab's
    # sessionStorage only, never in localStorage.
    assert page.url == stack.spa_url
    assert page.evaluate("location.hash") == ""
    assert page.evaluate("Object.keys(sessionStorage)") == ["contacts-spa.session"]
    assert page.evaluate("localStorage.length") == 0
    assert page.locator("#error-box").is_hidden()

    # Who the user is: from the API's handoff answer (verified id_token).
    assert page.text_content("#status") == "Signed in as Alice Example"
    assert page.text_content("#user") == "Alice Example (sub alice)"
    assert page.text_content("#issuer") == stack.issuer_url
    handoff = page.text_content("#handoff-result")
    assert '"sub": "alice"' in handoff and "at_hash matches the bearer token" in handoff

    # Granted scopes and expiry.
    assert {"contacts", "wte", "coordinate", "openid", "profile"} <= set(scope_names(page))
    assert page.text_content("#expiry-left") == "in 60 min"
    assert page.get_attribute("#expiry", "data-expired") == "false"

    # The API calls carried the access token as a bearer token.
    assert _api_calls(page, stack)[:2] == [stack.api_url + "/session/handoff", stack.api_url + "/contacts"]
    assert page.text_content("#contacts-count") == "No contacts yet."

    # Import: two new addresses, one duplicate (case-insensitive).
    page.fill("#emails", "ann@example.com\nbob@example.org, ANN@example.com")
    page.click("#import")
    expect(page.locator("#contacts-list li")).to_have_count(2)
    assert page.text_content("#import-result") == "Imported 2 new, 1 already known; 2 in total."
    assert page.locator("#contacts-list li").all_text_contents() == ["ann@example.com", "bob@example.org"]
    assert page.text_content("#contacts-count") == "2 contacts"
    shots("contacts-imported")

    # Bad input: the API's 400 explains which entry and why; nothing imported.
    page.fill("#emails", "carol@example.com\nnot-an-address")
    page.click("#import")
    page.wait_for_selector("#import-result[data-ok='false']")
    result = page.text_content("#import-result")
    assert "1 of 2 entries are not valid e-mail addresses; nothing was imported" in result
    assert '"not-an-address"' in result
    assert page.locator("#contacts-list li").count() == 2
    shots("invalid-import-refused")

    # The coordinate route (scope coordinate).
    page.click("#coordinate")
    expect(page.locator("#coordinate-result")).to_contain_text("coordinate")
    assert '"sub": "alice"' in page.text_content("#coordinate-result")

    assert no_page_errors(page), page.console_seen


def test_contacts_are_per_user(page, shots, dev_stack):
    """bob signs in after alice imported: he sees his own (empty) list."""
    stack = dev_stack
    _sign_in(page, shots, stack)
    page.wait_for_selector("body[data-phase='signed-in']")
    page.fill("#emails", "only-alice-knows@example.com")
    page.click("#import")
    expect(page.locator("#contacts-list li")).to_have_count(1)
    page.click("#signout")
    page.wait_for_selector("body[data-phase='signed-out']")

    _sign_in(page, shots, stack, username="bob", password="bob")
    page.wait_for_selector("body[data-phase='signed-in']")
    assert page.text_content("#user") == "Bob Example (sub bob)"
    assert page.text_content("#contacts-count") == "No contacts yet."
    assert page.locator("#contacts-list li").count() == 0
    shots("bob-sees-only-his-own")


def test_state_mismatch_is_refused_without_api_call(page, shots, dev_stack):
    """An authentication response whose state is not the one this tab sent
    (RFC 6749 10.12, CSRF) is discarded before any API call."""
    stack = dev_stack

    rewrite_authorize_param(page, stack.authorization_endpoint, "state", "attacker-chosen-state")
    _sign_in(page, shots, stack)

    page.wait_for_selector("body[data-phase='error']")
    shots("state-mismatch-refused")
    assert page.url == stack.spa_url  # tokens removed from the address bar all the same
    assert page.text_content("#error").startswith("State mismatch")
    assert page.locator("#error-box").is_visible()
    assert page.get_attribute("#status", "data-state") == "error"
    assert page.locator("#session").is_hidden() and page.locator("#contacts-section").is_hidden()
    assert _api_calls(page, stack) == []


def test_unsolicited_response_is_refused_without_api_call(page, shots, dev_stack):
    """Tokens pushed to the SPA without a sign-in started in this tab (e.g. a
    link planted by an attacker) are refused, even with real tokens."""
    stack = dev_stack
    access_token = stack.issuer.mint(scope="openid contacts")
    id_token = stack.issuer.mint_id_token("spa", nonce="whatever", access_token=access_token)
    fragment = urllib.parse.urlencode(
        {"access_token": access_token, "id_token": id_token, "token_type": "Bearer", "state": "s", "expires_in": "3600"}
    )
    page.goto(stack.spa_url + "#" + fragment)
    page.wait_for_selector("body[data-phase='error']")
    shots("unsolicited-response-refused")
    assert "did not start a sign-in" in page.text_content("#error")
    assert page.evaluate("location.hash") == ""
    assert _api_calls(page, stack) == []


def test_nonce_mismatch_is_refused_without_api_call(page, shots, dev_stack):
    """An id_token issued for another authentication request (its nonce is
    not ours: OIDC Core 3.2.2.11) is refused."""
    stack = dev_stack

    rewrite_authorize_param(page, stack.authorization_endpoint, "nonce", "a-nonce-from-another-request")
    _sign_in(page, shots, stack)
    page.wait_for_selector("body[data-phase='error']")
    shots("nonce-mismatch-refused")
    assert page.text_content("#error").startswith("Nonce mismatch")
    assert _api_calls(page, stack) == []


def test_missing_scope_shows_the_403_and_its_challenge(page, shots, dev_stack):
    """Signed in without the coordinate scope: the page shows the API's 403
    body and its WWW-Authenticate challenge (RFC 6750 3.1)."""
    stack = dev_stack

    grant_only(page, stack, "openid profile contacts")
    _sign_in(page, shots, stack)
    page.wait_for_selector("body[data-phase='signed-in']")
    assert sorted(scope_names(page)) == ["contacts", "openid", "profile"]

    page.click("#coordinate")
    page.wait_for_selector("#error-box:not([hidden])")
    shots("coordinate-403")
    assert page.text_content("#error") == "GET /coordinate failed: the token lacks the required scope coordinate"
    detail = page.text_content("#error-detail")
    assert '"status": 403' in detail
    assert 'error=\\"insufficient_scope\\"' in detail and 'scope=\\"coordinate\\"' in detail
    log = page.locator("#api-log li.fail").last.text_content()
    assert "GET /coordinate \u2192 403" in log and 'WWW-Authenticate: Bearer realm="contacts-api"' in log


