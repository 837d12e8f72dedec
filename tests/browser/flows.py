"""Steps the SPA browser tests share: signing in on the development
provider's login page, reading what the page shows, and taking parts of the
demo stack down as an outage would."""

from __future__ import annotations

import re
import urllib.parse

DEMO_SCOPES = {"openid", "profile", "contacts", "wte", "coordinate"}


def api_calls(page, stack):
    """The URLs of the API that ``page`` requested so far."""
    return [url for url in page.requests_seen if url.startswith(stack.api_url)]


def sign_in(page, shots, stack, username="alice", password="alice", scopes=DEMO_SCOPES):
    """Open the SPA, click "Sign in", log in on the provider's page."""
    page.goto(stack.spa_url)
    page.wait_for_selector("body[data-phase='signed-out']")
    assert page.locator("#signin").is_visible()
    shots("signed-out")

    page.click("#signin")
    page.wait_for_url(re.compile("^" + re.escape(stack.authorization_endpoint) + r"\?"))
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)
    # The authentication request app.js built (OIDC Core 3.2.2.1).
    assert query["response_type"] == ["id_token token"]
    assert query["client_id"] == ["spa"]
    assert query["redirect_uri"] == [stack.spa_url]
    assert set(query["scope"][0].split()) == set(scopes)
    assert len(query["state"][0]) >= 43 and len(query["nonce"][0]) >= 43  # 256 random bits each
    assert query["state"] != query["nonce"]
    assert page.locator("#dev-warning").is_visible()  # "not for production" on the login page
    page.fill("#username", username)
    page.fill("#password", password)
    shots("provider-login")
    page.click("#sign-in")


def grant_only(page, stack, scopes):
    """Make the authorization request ask for ``scopes`` only, as a user who
    unticks some on a consent page (the provider grants what was asked)."""

    def fewer_scopes(route):
        parts = urllib.parse.urlsplit(route.request.url)
        params = dict(urllib.parse.parse_qsl(parts.query))
        params["scope"] = scopes
        route.continue_(url=urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(params))))

    page.route(re.compile("^" + re.escape(stack.authorization_endpoint) + r"\?"), fewer_scopes)


def scope_names(page, list_id="scopes"):
    return page.locator(f"#{list_id} li .scope-name").all_text_contents()


def stop_api(stack):
    """Take the contacts API down: its port refuses connections."""
    for index, (server, thread) in enumerate(stack._servers):
        if server.server_port == int(urllib.parse.urlsplit(stack.api_url).port):
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
            del stack._servers[index]
            return
    raise AssertionError("the API server of the stack was not found")


def visible_text(page):
    return page.evaluate("document.body.innerText")


def no_page_errors(page):
    return not [line for line in page.console_seen if line.startswith("pageerror")]
