"""The development provider's login page (``oidc_guard.testing``) as the
example SPA's users meet it (issue 17, item 18): a wrong password keeps the
username typed (never the password), and the form is usable on a phone
390 px wide: text in the inputs of at least 16 px (below that iOS Safari
zooms into the field), inputs and button across the column, touch targets
at least 44 px high (WCAG 2.5.5).

Measured in Debian's chromium emulating a phone (mobile viewport, touch),
so the page's viewport meta counts as it would on a device.
"""

from __future__ import annotations

import re

import pytest

expect = pytest.importorskip("playwright.sync_api", reason="pip install playwright (PyPI package only)").expect

pytestmark = pytest.mark.browser

PHONE = dict(viewport=(390, 844), is_mobile=True, has_touch=True, device_scale_factor=3)

# On-screen sizes (CSS px of the device, after the page's zoom) of the
# form's controls, and whether the page scrolls sideways.
MEASURE = """() => {
  const scale = window.visualViewport ? window.visualViewport.scale : 1;
  const controls = {};
  for (const id of ["username", "password", "sign-in"]) {
    const node = document.getElementById(id);
    const box = node.getBoundingClientRect();
    controls[id] = {
      width: box.width * scale,
      height: box.height * scale,
      fontSize: parseFloat(getComputedStyle(node).fontSize) * scale,
      left: box.left * scale,
    };
  }
  return {controls: controls, viewport: window.innerWidth * scale, scale: scale,
          scrollWidth: document.documentElement.scrollWidth, layoutWidth: window.innerWidth};
}"""


def _open_login_page(page, stack):
    page.goto(stack.spa_url)
    page.wait_for_selector("body[data-phase='signed-out']")
    page.click("#signin")
    page.wait_for_url(re.compile("^" + re.escape(stack.authorization_endpoint) + r"\?"))


def _assert_fits_a_phone(page):
    m = page.evaluate(MEASURE)
    assert m["scrollWidth"] <= m["layoutWidth"], m  # no sideways scrolling
    assert m["viewport"] == pytest.approx(390, abs=1), m  # laid out for the phone, not shrunk from 980 px
    for name, c in m["controls"].items():
        assert c["fontSize"] >= 16, (name, m)
        assert c["height"] >= 44, (name, m)
        assert c["width"] >= 0.85 * 390, (name, m)  # the column's width (page padding aside)
        assert c["left"] >= 0 and c["left"] + c["width"] <= 390 + 0.5, (name, m)
    return m


def test_login_page_is_usable_on_a_phone(page_factory, shots, dev_stack):
    stack = dev_stack
    page = page_factory(**PHONE)
    shots.use(page)
    _open_login_page(page, stack)
    shots("login-390px")
    _assert_fits_a_phone(page)
    # Phones must not capitalise or "correct" the user name.
    assert page.get_attribute("#username", "autocapitalize") == "none"
    assert page.get_attribute("#username", "autocorrect") == "off"

    # After a wrong password the page is still phone-sized.
    page.fill("#username", "alice")
    page.fill("#password", "wrong")
    page.tap("#sign-in")
    expect(page.locator("#error")).to_have_text("Wrong username or password.")
    shots("wrong-password-390px")
    _assert_fits_a_phone(page)


def test_wrong_password_keeps_the_username_never_the_password(page, shots, dev_stack):
    stack = dev_stack
    shots.use(page)
    _open_login_page(page, stack)
    secret = "not-alices-password-7f3a"
    page.fill("#username", "alice")
    page.fill("#password", secret)
    page.click("#sign-in")
    expect(page.locator("#error")).to_have_text("Wrong username or password.")
    shots("wrong-password")

    assert page.input_value("#username") == "alice"
    assert page.input_value("#password") == ""
    assert secret not in page.content()  # not in any field, hidden or not
    # The cursor waits in the password field, the one left to type.
    assert page.evaluate("document.activeElement.id") == "password"

    # The user types only the right password: signed in as alice.
    page.fill("#password", "alice")
    page.click("#sign-in")
    page.wait_for_selector("body[data-phase='signed-in']")
    assert page.text_content("#status") == "Signed in as Alice Example"


def test_the_username_is_kept_as_text_not_markup(page, shots, dev_stack):
    """A username with markup in it comes back as the field's value only."""
    stack = dev_stack
    _open_login_page(page, stack)
    typed = '"><b id="injected">x</b>'
    page.fill("#username", typed)
    page.fill("#password", "whatever")
    page.click("#sign-in")
    expect(page.locator("#error")).to_be_visible()
    assert page.input_value("#username") == typed
    assert page.locator("#injected").count() == 0

