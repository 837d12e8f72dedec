"""The example SPA as a user sees it (issue 9): errors that go away when they
no longer apply, outages said in words (where, and when to retry), one
consistent signed-in / signed-out state, a session that survives a reload of
the tab, scopes explained, an action for every scope, expiry in local time,
and a page that fits a phone.

Everything runs against the real stack of ``examples/demo.py`` (development
provider, contacts API, SPA server with its strict CSP) in Debian's chromium.
"""

from __future__ import annotations

import datetime
import json
import re

import pytest

from .flows import DEMO_SCOPES, api_calls, grant_only, no_page_errors, scope_names, sign_in, stop_api, visible_text

expect = pytest.importorskip("playwright.sync_api", reason="pip install playwright (PyPI package only)").expect

pytestmark = pytest.mark.browser

SESSION_KEY = "contacts-spa.session"


def _signed_in(page):
    page.wait_for_selector("body[data-phase='signed-in']")


def _assert_signed_out_look(page, status_state):
    """The header, the buttons and the sections agree: nobody is signed in."""
    assert page.get_attribute("#status", "data-state") == status_state
    assert not page.text_content("#status").startswith("Signed in")
    assert page.locator("#signin").is_visible()
    assert page.locator("#signout").is_hidden()
    for section in ("#session", "#contacts-section", "#extras"):
        assert page.locator(section).is_hidden(), section
    assert page.evaluate("sessionStorage.length + localStorage.length") == 0


def _assert_signed_in_look(page, name="Alice Example"):
    assert page.text_content("#status") == "Signed in as " + name
    assert page.locator("#signin").is_hidden()
    assert page.locator("#signout").is_visible()
    for section in ("#session", "#contacts-section", "#extras"):
        assert page.locator(section).is_visible(), section
    assert page.locator("#welcome").is_hidden()


# --- errors ------------------------------------------------------------------


def test_error_box_goes_after_a_later_success_and_after_sign_out(page, shots, dev_stack):
    stack = dev_stack
    grant_only(page, stack, "openid profile contacts")
    sign_in(page, shots, stack)
    _signed_in(page)

    page.click("#coordinate")  # 403: no coordinate scope
    expect(page.locator("#error-box")).to_be_visible()
    shots("error-403")

    page.fill("#emails", "ann@example.com")
    page.click("#import")
    expect(page.locator("#contacts-list li")).to_have_count(1)
    expect(page.locator("#error-box")).to_be_hidden()
    shots("error-gone-after-success")

    page.click("#coordinate")
    expect(page.locator("#error-box")).to_be_visible()
    page.click("#signout")
    page.wait_for_selector("body[data-phase='signed-out']")
    expect(page.locator("#error-box")).to_be_hidden()
    _assert_signed_out_look(page, "signed-out")
    # Nothing of the previous user is left on the page.
    assert page.locator("#contacts-list li").count() == 0
    assert page.locator("#api-log li").count() == 0
    assert "ann@example.com" not in visible_text(page)
    shots("signed-out-clean")


def test_unreachable_api_says_so_and_where(page, shots, dev_stack):
    stack = dev_stack
    sign_in(page, shots, stack)
    _signed_in(page)
    stop_api(stack)

    page.click("#coordinate")
    expect(page.locator("#error-box")).to_be_visible()
    shots("api-unreachable")
    message = page.text_content("#error")
    assert message.startswith(f"GET /coordinate failed: the contacts API at {stack.api_url} could not be reached."), message
    assert "HTTP 0" not in visible_text(page)
    assert page.locator("#retry").is_visible() and page.locator("#retry").is_enabled()
    assert page.locator("#api-log li.fail").last.text_content() == f"GET /coordinate \u2192 not reached ({stack.api_url})"
    # An API outage is not the end of the session.
    _assert_signed_in_look(page)


def test_provider_outage_503_says_retry_in_n_seconds_not_the_raw_reason(page, shots, dev_stack):
    """The API cannot reach the identity provider (stopped while the user was
    on its login page): the page says the provider is temporarily
    unavailable and when to retry (Retry-After), shows no internal URL or
    socket error, and its Retry finishes the sign-in once the provider is back."""
    stack = dev_stack
    answers = []
    page.on("response", lambda r: answers.append(r) if r.url == stack.api_url + "/session/handoff" else None)

    def provider_down_first(route):
        if stack.issuer.running and not answers:
            stack.issuer.stop()  # connections to the provider are refused from now on
        route.continue_()

    page.route(stack.api_url + "/session/handoff", provider_down_first)
    sign_in(page, shots, stack)
    page.wait_for_selector("body[data-phase='error']")
    expect(page.locator("#error-box")).to_be_visible()
    shots("provider-503")

    assert answers and answers[0].status == 503
    retry_after = int(answers[0].headers["retry-after"])
    message = page.text_content("#error")
    found = re.fullmatch(
        r"The id_token handoff failed: the identity provider is temporarily unavailable, retry in (\d+) s\.", message
    )
    assert found, message
    assert 0 < int(found.group(1)) <= retry_after
    text = visible_text(page) + page.text_content("#error-detail") + page.text_content("#api-log")
    for leak in ("well-known", "refused", "Connection", stack.issuer_url):
        assert leak not in text, leak
    assert '"Retry-After"' in page.text_content("#error-detail")
    assert page.locator("#retry").is_disabled()
    assert page.text_content("#status") == "Sign-in not finished"
    assert page.locator("#signout").is_hidden() and not page.text_content("#status").startswith("Signed in")

    # The countdown runs down; then Retry, with the provider back, signs in.
    stack.issuer.start()
    expect(page.locator("#retry")).to_be_enabled(timeout=(retry_after + 3) * 1000)
    assert "you can retry now" in page.text_content("#error")
    page.wait_for_timeout(500)  # the API's own retry interval ends with the same second
    page.click("#retry")
    _signed_in(page)
    expect(page.locator("#error-box")).to_be_hidden()
    _assert_signed_in_look(page)
    shots("signed-in-after-retry")


# --- one consistent state ----------------------------------------------------------


def test_expiry_counts_down_then_ends_the_session_with_a_sign_in_button(page, shots, dev_stack):
    stack = dev_stack
    stack.issuer.token_lifetime = 8
    sign_in(page, shots, stack)
    _signed_in(page)
    first = page.text_content("#expiry-left")
    assert re.fullmatch(r"in [1-8] s", first), first
    page.wait_for_timeout(2500)  # the countdown ticks once a second
    second = page.text_content("#expiry-left")
    assert int(second.split()[1]) < int(first.split()[1]), (first, second)  # it updates

    page.wait_for_selector("body[data-phase='expired']", timeout=12_000)
    shots("expired")
    assert page.text_content("#status") == "Session ended"
    assert "The access token expired at" in page.text_content("#notice-text")
    assert page.text_content("#signin") == "Sign in again"
    _assert_signed_out_look(page, "expired")

    # The button works: a new sign-in, a new session.
    stack.issuer.token_lifetime = 3600
    page.click("#signin")
    page.wait_for_url(re.compile("^" + re.escape(stack.authorization_endpoint)))
    page.fill("#username", "alice")
    page.fill("#password", "alice")
    page.click("#sign-in")
    _signed_in(page)
    _assert_signed_in_look(page)
    assert page.locator("#notice").is_hidden()


def test_a_401_ends_the_session_and_the_header_agrees(page, shots, dev_stack):
    """The API refuses the token the tab holds (here: the stored token is
    replaced by an expired one, as a token revoked or a clock gone wrong would
    look): the page shows the 401 and its challenge, and the whole page says
    signed out: Sign in only, no "Signed in as", no tokens kept."""
    stack = dev_stack
    sign_in(page, shots, stack)
    _signed_in(page)
    stale = stack.issuer.mint(subject="alice", scope=" ".join(sorted(DEMO_SCOPES)), expires_in=-600)
    page.evaluate(
        """([key, token]) => {
             const s = JSON.parse(sessionStorage.getItem(key));
             s.accessToken = token;
             sessionStorage.setItem(key, JSON.stringify(s));
           }""",
        [SESSION_KEY, stale],
    )
    page.reload()
    page.wait_for_selector("body[data-phase='expired']")
    shots("after-401")
    error = page.text_content("#error")
    assert error.startswith("Loading contacts failed: ") and "expired" in error and error.endswith("sign in again."), error
    detail = page.text_content("#error-detail")
    assert '"status": 401' in detail and 'error=\\"invalid_token\\"' in detail
    assert page.locator("#notice").is_hidden()  # the error box alone says it
    _assert_signed_out_look(page, "expired")


# --- reload -------------------------------------------------------------------------


def test_a_reload_keeps_the_session_for_the_tab_only(page, shots, dev_stack):
    stack = dev_stack
    sign_in(page, shots, stack)
    _signed_in(page)
    page.fill("#emails", "ann@example.com")
    page.click("#import")
    expect(page.locator("#contacts-list li")).to_have_count(1)
    stored = json.loads(page.evaluate(f"sessionStorage.getItem('{SESSION_KEY}')"))
    assert set(stored) == {"accessToken", "idToken", "expiresAt", "scopes", "answer"}
    assert page.evaluate("localStorage.length") == 0

    calls_before = len(api_calls(page, stack))
    page.reload()
    _signed_in(page)
    _assert_signed_in_look(page)
    expect(page.locator("#contacts-list li")).to_have_text(["ann@example.com"])  # the API answered again
    assert api_calls(page, stack)[calls_before:] == [stack.api_url + "/contacts"]
    assert page.text_content("#user") == "Alice Example (sub alice)"
    assert "reload keeps you signed in" in page.text_content("#session")
    shots("after-reload-still-signed-in")

    # Another tab (same browser profile) does not get this tab's session.
    other = page.context.new_page()
    other.goto(stack.spa_url)
    other.wait_for_selector("body[data-phase='signed-out']")
    other.close()

    # Signing out forgets it: a reload stays signed out.
    page.click("#signout")
    page.wait_for_selector("body[data-phase='signed-out']")
    assert page.evaluate("sessionStorage.length + localStorage.length") == 0
    page.reload()
    page.wait_for_selector("body[data-phase='signed-out']")
    _assert_signed_out_look(page, "signed-out")
    assert no_page_errors(page), page.console_seen
    # Nothing failed to load and nothing broke the CSP (both are console errors).
    assert not [line for line in page.console_seen if line.startswith("error")], page.console_seen


def _expire_session(page):
    """Move the stored session's expiry into the past, as if its token had run out."""
    page.evaluate(
        """(key) => {
             const s = JSON.parse(sessionStorage.getItem(key));
             s.expiresAt = Date.now() - 1000;
             sessionStorage.setItem(key, JSON.stringify(s));
           }""",
        SESSION_KEY,
    )


def test_a_reload_after_expiry_says_the_session_expired(page, shots, dev_stack):
    stack = dev_stack
    sign_in(page, shots, stack)
    _signed_in(page)
    _expire_session(page)
    calls_before = len(api_calls(page, stack))
    page.reload()
    page.wait_for_selector("body[data-phase='expired']")
    assert "expired" in page.text_content("#notice-text")
    _assert_signed_out_look(page, "expired")
    assert api_calls(page, stack)[calls_before:] == []  # an expired token is not sent


# --- scopes and their actions ---------------------------------------------------------


def test_every_scope_is_explained_and_wte_has_an_action(page, shots, dev_stack):
    stack = dev_stack
    sign_in(page, shots, stack)
    _signed_in(page)
    assert set(scope_names(page)) == DEMO_SCOPES
    words = {
        scope: page.text_content(f"#scopes li[data-scope='{scope}'] .scope-what") for scope in DEMO_SCOPES
    }
    assert "contacts" in words["contacts"] and "/contacts/import" in words["contacts"]
    assert "POST /wte/jobs" in words["wte"]
    assert "GET /coordinate" in words["coordinate"]
    assert "id_token" in words["openid"] and "name" in words["profile"]
    assert len(set(words.values())) == len(words)  # each its own explanation
    assert page.locator("#scopes-missing-block").is_hidden()

    page.click("#wte")
    expect(page.locator("#wte-summary")).to_contain_text("queued")
    answer = json.loads(page.text_content("#wte-result"))
    assert answer["job"]["kind"] == "sync" and answer["job"]["subject"] == "alice"
    assert answer["client_token"] is False
    assert re.fullmatch(r"Job \d+ \(sync\) queued at .+\.", page.text_content("#wte-summary"))
    assert stack.api_app.extensions["contacts_store"].count_jobs("spa") == 1
    shots("wte-job-queued")


def test_wte_without_the_scope_shows_its_403(page, shots, dev_stack):
    stack = dev_stack
    grant_only(page, stack, "openid profile contacts coordinate")
    sign_in(page, shots, stack)
    _signed_in(page)
    assert scope_names(page, "scopes-missing") == ["wte"]
    assert "not granted: expect a 403" in page.text_content("[data-needs-scope='wte'] .needs")
    page.click("#wte")
    expect(page.locator("#error-box")).to_be_visible()
    shots("wte-403")
    assert page.text_content("#error") == "POST /wte/jobs failed: the token lacks the required scope wte"
    assert 'scope=\\"wte\\"' in page.text_content("#error-detail")
    assert page.text_content("#wte-result") == ""
    assert stack.api_app.extensions["contacts_store"].count_jobs() == 0


# --- time -------------------------------------------------------------------------------


def test_expiry_in_local_time_and_minutes_then_expired(page_factory, shots, dev_stack):
    """A user in India (UTC+05:30) sees the expiry in their own clock time,
    and "in N min" that follows the clock; when it passes, the page is in
    the expired state. The browser's clock is driven by Playwright."""
    stack = dev_stack
    page = page_factory(timezone_id="Asia/Kolkata", locale="en-GB")
    shots.use(page)
    page.clock.install()
    sign_in(page, shots, stack)
    _signed_in(page)

    iso = page.get_attribute("#expiry-time", "datetime")
    utc = datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    local = utc.astimezone(datetime.timezone(datetime.timedelta(hours=5, minutes=30)))  # Kolkata: no DST
    shown = page.text_content("#expiry-time")
    assert local.strftime("%H:%M:%S") in shown, shown
    assert utc.strftime("%H:%M") not in shown  # not UTC (the offset is 5:30)
    assert "Z" not in shown
    assert page.text_content("#expiry-left") == "in 60 min"
    shots("expiry-local-time")

    page.clock.run_for("10:00")
    expect(page.locator("#expiry-left")).to_have_text("in 50 min")
    page.clock.run_for("49:00")
    expect(page.locator("#expiry-left")).to_have_text(re.compile(r"in [1-6]?\d s"))
    page.clock.run_for("01:01")
    page.wait_for_selector("body[data-phase='expired']")
    assert local.strftime("%H:%M:%S") in page.text_content("#notice-text")
    _assert_signed_out_look(page, "expired")


# --- layout ---------------------------------------------------------------------------------

LONG_SCOPE = "contacts.read-archive-of-" + "x" * 90
LONG_NAME = "Maximiliana-" + "Wolfeschlegelsteinhausenbergerdorff" * 3
LONG_EMAIL = "a" * 64 + "@" + ".".join(["b" * 63, "c" * 63, "d" * 57, "org"])

OVERFLOW_REPORT = """() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  for (const node of document.querySelectorAll("body *")) {
    const box = node.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;
    if (box.right > width + 0.5 || box.left < -0.5) out.push(node.tagName + "#" + node.id + "." + node.className + " " + Math.round(box.left) + ".." + Math.round(box.right));
    if (node.scrollWidth > node.clientWidth + 1 && getComputedStyle(node).overflowX !== "visible")
      out.push("clipped/scrolling " + node.tagName + "#" + node.id + " " + node.scrollWidth + ">" + node.clientWidth);
  }
  // Squeezed text is clipped text too: every scope explanation keeps room.
  for (const node of document.querySelectorAll(".scope-what"))
    if (node.getClientRects().length && node.getBoundingClientRect().width < 150) out.push("squeezed: " + node.textContent.slice(0, 40));
  return {scrollWidth: document.documentElement.scrollWidth, bodyScrollWidth: document.body.scrollWidth, width: width, out: out};
}"""


@pytest.fixture
def long_values_stack(tmp_path):
    """The demo stack with the longest values a user might see: a name with
    no space, a 254-character address, a long scope name."""
    import demo

    scope = demo.SPA_SCOPE + " " + LONG_SCOPE
    stack = demo.Stack(ports={"provider": 0, "api": 0, "spa": 0}, db_path=str(tmp_path / "c.sqlite3"), spa_scope=scope)
    stack.start()
    try:
        port = stack.spa_url.rsplit(":", 1)[1].rstrip("/")
        stack.issuer.register_client(
            "spa", redirect_uris=[stack.spa_url, f"http://localhost:{port}/"], scopes=scope, grant_types=("implicit",)
        )
        stack.issuer.users["alice"]["name"] = LONG_NAME
        yield stack
    finally:
        stack.stop()


@pytest.mark.parametrize("width", [390, 1280])
def test_no_horizontal_scroll_with_long_values(page_factory, shots, long_values_stack, width):
    stack = long_values_stack
    page = page_factory(viewport=(width, 844))
    shots.use(page)
    grant_only(page, stack, "openid profile contacts wte " + LONG_SCOPE)  # no coordinate: a 403 on screen
    sign_in(page, shots, stack, scopes=DEMO_SCOPES | {LONG_SCOPE})
    _signed_in(page)
    assert LONG_SCOPE in scope_names(page)
    page.fill("#emails", LONG_EMAIL + "\n" + "ann@example.com")
    page.click("#import")
    expect(page.locator("#contacts-list li")).to_have_count(2)
    page.click("#wte")
    expect(page.locator("#wte-summary")).to_contain_text("queued")
    page.fill("#emails", "not-an-address-" + "z" * 120)
    page.click("#import")
    page.wait_for_selector("#import-result[data-ok='false']")
    page.click("#coordinate")
    expect(page.locator("#error-box")).to_be_visible()
    page.evaluate("document.querySelectorAll('details').forEach((d) => { d.hidden = false; d.open = true; })")
    assert LONG_NAME in page.text_content("#status") and LONG_EMAIL in page.text_content("#contacts-list")
    shots(f"long-values-{width}px")

    report = page.evaluate(OVERFLOW_REPORT)
    assert report["scrollWidth"] <= width and report["bodyScrollWidth"] <= width, report
    assert report["out"] == [], report["out"][:10]


@pytest.mark.parametrize("width", [390, 1280])
def test_signed_out_and_ended_views_fit(page_factory, shots, dev_stack, width):
    stack = dev_stack
    page = page_factory(viewport=(width, 844))
    shots.use(page)
    page.goto(stack.spa_url)
    page.wait_for_selector("body[data-phase='signed-out']")
    # Before signing in: where sign-in goes, which API it calls, each scope explained.
    assert page.text_content("#welcome-issuer") == stack.issuer_url
    assert page.text_content("#welcome-api") == stack.api_url
    assert set(scope_names(page, "scopes-requested")) == DEMO_SCOPES
    assert all(page.locator("#scopes-requested .scope-what").all_text_contents())
    shots(f"signed-out-{width}px")
    report = page.evaluate(OVERFLOW_REPORT)
    assert report["scrollWidth"] <= width and report["out"] == [], report

    sign_in(page, shots, stack)
    _signed_in(page)
    shots(f"signed-in-{width}px")
    report = page.evaluate(OVERFLOW_REPORT)
    assert report["scrollWidth"] <= width and report["out"] == [], report

    _expire_session(page)
    page.reload()
    page.wait_for_selector("body[data-phase='expired']")
    assert page.locator("#welcome").is_visible()
    shots(f"ended-{width}px")
    report = page.evaluate(OVERFLOW_REPORT)
    assert report["scrollWidth"] <= width and report["out"] == [], report
