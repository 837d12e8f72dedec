"""The example SPA when a sign-in does not go straight through (issue 17,
item 18): a handoff held up by an identity provider outage survives a
reload of the tab, and a refused (tampered) token is told by one message,
the error box, never by the notice and the error box at once.

Against the real stack of ``examples/demo.py`` in Debian's chromium; the
outage is the development provider's fault injection (its JWKS answers 503,
so the API cannot verify the id_token yet).
"""

from __future__ import annotations

import json
import re
import urllib.parse

import pytest

from .flows import api_calls, no_page_errors, sign_in

expect = pytest.importorskip("playwright.sync_api", reason="pip install playwright (PyPI package only)").expect

pytestmark = pytest.mark.browser

SESSION_KEY = "contacts-spa.session"
HANDOFF_KEY = "contacts-spa.handoff"
HANDOFF_503 = r"The id_token handoff failed: the identity provider is temporarily unavailable, (retry in \d+ s|you can retry now)\."

# Records every moment (each DOM change) at which the blue notice and the
# red error box are both visible, from the first script of every page load.
BOTH_SHOWN_WATCH = """
  window.__bothShown = [];
  new MutationObserver(() => {
    const notice = document.getElementById("notice"), box = document.getElementById("error-box");
    if (notice && box && !notice.hidden && !box.hidden)
      window.__bothShown.push(document.getElementById("notice-text").textContent + " | " + document.getElementById("error").textContent);
  }).observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
"""


def _storage_keys(page):
    return sorted(page.evaluate("Object.keys(sessionStorage)")), page.evaluate("localStorage.length")


def _handoff_answers(page, stack):
    statuses = []
    page.on("response", lambda r: statuses.append(r.status) if r.url == stack.api_url + "/session/handoff" else None)
    return statuses


def _assert_not_signed_in_yet(page):
    assert page.text_content("#status") == "Sign-in not finished"
    assert page.locator("#signout").is_hidden()
    for section in ("#session", "#contacts-section", "#extras"):
        assert page.locator(section).is_hidden(), section


def test_a_reload_keeps_a_sign_in_held_up_by_a_jwks_outage(page, shots, dev_stack):
    stack = dev_stack
    handoffs = _handoff_answers(page, stack)
    stack.issuer.set_fault("jwks", status=503)  # the API cannot get the keys to verify the id_token
    sign_in(page, shots, stack)
    page.wait_for_selector("body[data-phase='error']")
    expect(page.locator("#retry")).to_be_visible()
    assert handoffs == [503]
    assert re.fullmatch(HANDOFF_503, page.text_content("#error")), page.text_content("#error")
    _assert_not_signed_in_yet(page)
    # The tokens wait for Retry in this tab's sessionStorage, nowhere else.
    assert _storage_keys(page) == ([HANDOFF_KEY], 0)
    shots("handoff-503")

    calls_before = len(api_calls(page, stack))
    page.reload()
    page.wait_for_selector("body[data-phase='error']")
    expect(page.locator("#retry")).to_be_visible()
    shots("after-reload-retry-still-there")
    assert re.fullmatch(HANDOFF_503, page.text_content("#error")), page.text_content("#error")
    _assert_not_signed_in_yet(page)
    assert _storage_keys(page) == ([HANDOFF_KEY], 0)
    assert api_calls(page, stack)[calls_before:] == []  # a reload alone sends nothing

    # A Retry during the outage keeps the sign-in pending (and across a
    # second reload); once the JWKS answers again, Retry completes it.
    expect(page.locator("#retry")).to_be_enabled(timeout=10_000)
    page.click("#retry")
    expect(page.locator("#retry")).to_be_visible()
    assert handoffs == [503, 503]
    page.reload()
    page.wait_for_selector("body[data-phase='error']")
    expect(page.locator("#retry")).to_be_visible()

    stack.issuer.clear_faults()
    expect(page.locator("#retry")).to_be_enabled(timeout=10_000)
    page.wait_for_timeout(500)  # the API's own retry interval ends with the same second
    page.click("#retry")
    page.wait_for_selector("body[data-phase='signed-in']")
    shots("signed-in-after-retry")
    assert handoffs == [503, 503, 200]
    assert page.text_content("#status") == "Signed in as Alice Example"
    assert page.text_content("#user") == "Alice Example (sub alice)"
    expect(page.locator("#error-box")).to_be_hidden()
    assert page.text_content("#contacts-count") == "No contacts yet."  # the API took the token
    assert _storage_keys(page) == ([SESSION_KEY], 0)  # the pending sign-in became the session
    page.reload()
    page.wait_for_selector("body[data-phase='signed-in']")
    assert no_page_errors(page), page.console_seen


def test_a_pending_sign_in_whose_token_expired_is_dropped_on_reload(page, shots, dev_stack):
    stack = dev_stack
    stack.issuer.set_fault("jwks", status=503)
    sign_in(page, shots, stack)
    page.wait_for_selector("body[data-phase='error']")
    expect(page.locator("#retry")).to_be_visible()
    page.evaluate(
        """(key) => {
             const h = JSON.parse(sessionStorage.getItem(key));
             h.expiresAt = Date.now() - 1000;
             sessionStorage.setItem(key, JSON.stringify(h));
           }""",
        HANDOFF_KEY,
    )
    calls_before = len(api_calls(page, stack))
    page.reload()
    page.wait_for_selector("body[data-phase='expired']")
    shots("pending-expired")
    assert "not finished before its access token expired" in page.text_content("#notice-text")
    assert page.locator("#notice").is_visible() and page.locator("#error-box").is_hidden()
    assert page.locator("#signin").is_visible() and page.text_content("#signin") == "Sign in again"
    assert _storage_keys(page) == ([], 0)
    assert api_calls(page, stack)[calls_before:] == []  # an expired token is not sent


def _flip_signature(jwt):
    header, payload, signature = jwt.split(".")
    middle = len(signature) // 2
    swapped = "B" if signature[middle] == "A" else "A"
    return ".".join([header, payload, signature[:middle] + swapped + signature[middle + 1:]])


def _tamper_access_token_in_response(page, stack):
    """The provider's redirect back to the SPA carries an access token whose
    signature was changed on the way (the rest of the response untouched)."""

    def tamper(route):
        if route.request.method != "POST":
            route.continue_()
            return
        answer = route.fetch(max_redirects=0)
        base, fragment = answer.headers["location"].split("#", 1)
        params = dict(urllib.parse.parse_qsl(fragment))
        params["access_token"] = _flip_signature(params["access_token"])
        route.fulfill(status=302, headers={"Location": base + "#" + urllib.parse.urlencode(params)}, body="")

    page.route(re.compile("^" + re.escape(stack.authorization_endpoint)), tamper)


@pytest.mark.parametrize("where", ["stored-session", "sign-in-response"])
def test_a_tampered_token_gets_one_message_the_error(page, shots, dev_stack, where):
    """The API refuses a token whose signature was changed (401): the page
    says so once, in the error box with the API's reason, and never shows
    the blue notice with it, not even for a moment."""
    stack = dev_stack
    page.add_init_script(BOTH_SHOWN_WATCH)
    if where == "sign-in-response":
        _tamper_access_token_in_response(page, stack)
    sign_in(page, shots, stack)
    if where == "stored-session":
        page.wait_for_selector("body[data-phase='signed-in']")
        stored = json.loads(page.evaluate(f"sessionStorage.getItem('{SESSION_KEY}')"))
        stored["accessToken"] = _flip_signature(stored["accessToken"])
        page.evaluate("([key, value]) => sessionStorage.setItem(key, value)", [SESSION_KEY, json.dumps(stored)])
        page.reload()
        page.wait_for_selector("body[data-phase='expired']")
        what = "Loading contacts"
    else:
        page.wait_for_selector("body[data-phase='error']")
        what = "The id_token handoff"
    page.wait_for_timeout(300)  # anything late would show up now
    shots("tampered-token-refused")

    expect(page.locator("#error-box")).to_be_visible()
    expect(page.locator("#error-box h2")).to_have_text("Something went wrong")
    expect(page.locator("#notice")).to_be_hidden()
    error = page.text_content("#error")
    assert error.startswith(what + " failed: access token signature is invalid"), error
    assert error.endswith("sign in again."), error
    assert '"status": 401' in page.text_content("#error-detail")
    assert page.evaluate("window.__bothShown") == []
    assert page.locator("#signin").is_visible() and page.locator("#signout").is_hidden()
    assert _storage_keys(page) == ([], 0)  # the refused token is forgotten
