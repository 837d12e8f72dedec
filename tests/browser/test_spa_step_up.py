"""RFC 9470 step-up in a real browser: the example SPA deletes a contact,
the contacts API answers 401 ``insufficient_user_authentication`` with
``acr_values="urn:oidc-guard:loa:2"``, and the SPA reads that challenge,
signs the user in again at the development provider with those
``acr_values`` and repeats the call with the new token (whose ``acr`` is
level 2). A user who cannot reach level 2 (bob) is refused by the provider,
and the SPA says so."""

from __future__ import annotations

import re
import urllib.parse

import pytest

from .flows import no_page_errors, sign_in

expect = pytest.importorskip("playwright.sync_api", reason="pip install playwright (PyPI package only)").expect

pytestmark = pytest.mark.browser

LOA2 = "urn:oidc-guard:loa:2"


def _import(page, addresses, count):
    page.fill("#emails", addresses)
    page.click("#import")
    expect(page.locator("#contacts-list li")).to_have_count(count)


def test_delete_needs_a_stronger_sign_in_and_the_spa_steps_up(page, shots, dev_stack):
    stack = dev_stack
    sign_in(page, shots, stack)
    page.wait_for_selector("body[data-phase='signed-in']")
    _import(page, "ann@example.com\nbob@example.org", 2)

    deletes = []
    page.on("response", lambda r: deletes.append((r.status, r.headers.get("www-authenticate")))
            if r.request.method == "DELETE" else None)
    page.fill("#delete-email", "ann@example.com")
    page.click("#delete")
    # The API's challenge sends the page back to the provider with the
    # challenge's acr_values (OIDC Core 3.1.2.1).
    page.wait_for_url(re.compile("^" + re.escape(stack.authorization_endpoint) + r"\?"))
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)
    assert query["acr_values"] == [LOA2]
    assert query["response_type"] == ["id_token token"] and query["client_id"] == ["spa"]
    status, challenge = deletes[0]
    assert status == 401
    assert 'error="insufficient_user_authentication"' in challenge and f'acr_values="{LOA2}"' in challenge
    shots("step-up-login")

    page.fill("#username", "alice")
    page.fill("#password", "alice")
    page.click("#sign-in")
    page.wait_for_selector("body[data-phase='signed-in']")
    expect(page.locator("#delete-result")).to_have_text(
        f"Deleted ann@example.com after signing in again (acr {LOA2}).")
    expect(page.locator("#contacts-list li")).to_have_count(1)
    assert page.locator("#contacts-list li").all_text_contents() == ["bob@example.org"]
    assert [s for s, _c in deletes] == [401, 200]  # the call was repeated once, with the new token
    assert page.locator("#error-box").is_hidden()
    shots("deleted-after-step-up")

    # The new token has level 2: the next delete needs no new sign-in.
    page.fill("#delete-email", "bob@example.org")
    page.click("#delete")
    expect(page.locator("#delete-result")).to_have_text("Deleted bob@example.org.")
    # the list is reloaded after the delete answers: wait for it, do not race it
    expect(page.locator("#contacts-count")).to_have_text("No contacts yet.")
    assert no_page_errors(page)


def test_a_user_who_cannot_step_up_is_told_why(page, shots, dev_stack):
    stack = dev_stack
    sign_in(page, shots, stack, username="bob", password="bob")
    page.wait_for_selector("body[data-phase='signed-in']")
    _import(page, "carol@example.com", 1)
    page.fill("#delete-email", "carol@example.com")
    page.click("#delete")
    page.wait_for_url(re.compile("^" + re.escape(stack.authorization_endpoint) + r"\?"))
    page.fill("#username", "bob")
    page.fill("#password", "bob")
    page.click("#sign-in")
    page.wait_for_selector("body[data-phase='error']")
    expect(page.locator("#error-box")).to_contain_text("unmet_authentication_requirements")
    shots("step-up-unmet")
    assert no_page_errors(page)
