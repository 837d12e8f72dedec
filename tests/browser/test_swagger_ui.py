"""Swagger UI of the FastAPI contacts example, in chromium: the Authorize
button signs in with the development provider (authorization code + PKCE,
a public client whose redirect URI is /docs/oauth2-redirect), and "Try it
out" on a guarded route then succeeds; without signing in it is refused
with 401.  Swagger UI's files are the pinned npm swagger-ui-dist, served by
the app itself (no CDN)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from oidc_guard import TokenValidator
from oidc_guard.testing import LocalIssuer

from uvicorn_server import UvicornServer

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "examples") not in sys.path:
    sys.path.insert(0, str(ROOT / "examples"))

from contacts_fastapi import create_app  # noqa: E402
from contacts_fastapi.app import DEFAULT_SWAGGER_UI_DIR  # noqa: E402


@pytest.fixture
def docs_stack(tmp_path):
    if not os.path.isfile(os.path.join(DEFAULT_SWAGGER_UI_DIR, "swagger-ui-bundle.js")):
        message = "swagger-ui-dist is not installed: bash scripts/install_swagger_ui.sh"
        if os.environ.get("OIDC_GUARD_BROWSER_REQUIRED") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    issuer = LocalIssuer().start()
    app = create_app({"OIDC_GUARD_ISSUER": issuer.issuer, "CONTACTS_DB_PATH": str(tmp_path / "c.sqlite3")},
                     validator=TokenValidator(issuer.issuer, audience="api://contacts"))
    server = UvicornServer(app).start()
    issuer.register_client("swagger-ui", redirect_uris=[server.url + "/docs/oauth2-redirect"],
                           scopes="openid contacts wte coordinate", grant_types=("authorization_code",))
    try:
        yield issuer, server
    finally:
        server.stop()
        issuer.stop()


def _try_list_contacts(page) -> str:
    """Expand GET /contacts, Try it out, Execute: the live response's status."""
    block = page.locator(".opblock-get", has=page.locator(".opblock-summary-path", has_text=re.compile(r"^/contacts$")))
    if not block.locator("button.execute").is_visible():
        if not block.locator("button.try-out__btn").is_visible():
            block.locator(".opblock-summary").first.click()  # expand it
        block.locator("button.try-out__btn").click()
    block.locator("button.execute").click()
    status = block.locator(".live-responses-table .response .response-col_status").first
    status.wait_for()
    return status.inner_text().strip()


def test_authorize_then_try_it_out(page, shots, docs_stack):
    issuer, server = docs_stack
    page.goto(server.url + "/docs")
    page.locator("button.authorize").first.wait_for()
    shots("docs")
    # Not signed in: the guarded route answers 401.
    assert _try_list_contacts(page).startswith("401")
    page.reload()

    page.locator("button.authorize").first.click()
    dialog = page.locator(".modal-ux")
    dialog.wait_for()
    assert dialog.locator("input#client_id_authorizationCode").input_value() == "swagger-ui"  # init_oauth
    # the scopes init_oauth asks for are ticked, the others not
    assert dialog.locator("input[data-value=contacts]").is_checked()
    assert not dialog.locator("input[data-value=wte]").is_checked()
    shots("authorize-dialog")
    with page.expect_popup() as popup_info:
        dialog.locator("button.authorize").click()
    login = popup_info.value
    login.wait_for_selector("#username")
    shots.use(login)("provider-login")
    login.fill("#username", "alice")
    login.fill("#password", "alice")
    # The redirect page hands the code back to Swagger UI and closes; Swagger
    # UI exchanges it (with the PKCE verifier) at the provider's /token.
    # (Waited for from before the click: the popup may close at once.)
    with login.expect_event("close"):
        login.click("#sign-in")
    shots.use(page)
    dialog.locator("button", has_text="Logout").wait_for()  # signed in
    assert "Authorized" in dialog.inner_text()
    shots("signed-in")
    dialog.locator("button", has_text="Close").click()

    assert _try_list_contacts(page).startswith("200")
    body = page.locator(".live-responses-table .response-col_description pre").first.inner_text()
    assert '"sub": "alice"' in body
    shots("try-it-out")
    requests = [path for method, path in issuer.requests if path.startswith("/token") or path.startswith("/authorize")]
    assert any(p.startswith("/authorize") for p in requests) and any(p == "/token" for p in requests)
