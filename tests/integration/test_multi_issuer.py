"""Two real providers at once, as during a migration off IdentityServer v3:

* the old one: the development provider (``LocalIssuer``) in IdentityServer
  v3's token shape (``typ`` JWT, ``scope`` a JSON array, ``aud``
  ``<issuer>/resources``, no ``sub`` in client tokens), over real HTTP;
* the new one: npm ``oidc-provider`` 9.13.3 (RFC 9068 ``at+jwt``, ``scope`` a
  string, ``sub`` = client id), started by scripts/provider.py.

One :class:`~oidc_guard.MultiIssuerValidator` (and the contacts example in
its migration mode) accepts the tokens of both, each checked against its own
issuer's keys and audience, and refuses everything else without fetching
anything.  Every token here was minted by one of the two providers.
"""

import sys
from pathlib import Path

import pytest
import webtest

from oidc_guard import BearerMiddleware, InvalidToken, MultiIssuerValidator, TokenValidator
from oidc_guard.testing import LocalIssuer
from oidc_guard.wsgi import require_issuer, require_scope

from . import flows
from .conftest import ProviderProcess, free_port
from .flows import API, SERVER_APP, WORKER, cc_token, code_flow

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def new_op(provider_installed, tmp_path_factory):
    op = ProviderProcess(tmp_path_factory.mktemp("oidc-provider-multi"), free_port(), "9")
    op.start(new_port_if_taken=True)
    assert op.version == "oidc-provider 9.13.3"
    try:
        yield op
    finally:
        op.stop()


@pytest.fixture(scope="module")
def old_op():
    with LocalIssuer(token_shape="identityserver3") as old:
        yield old


@pytest.fixture
def multi(old_op, new_op):
    return MultiIssuerValidator([
        TokenValidator(old_op.issuer, audience=old_op.issuer + "/resources", http_timeout=5),
        TokenValidator(new_op.issuer, audience=API, http_timeout=5),
    ])


def old_client_token(old_op, scope="wte"):
    """Client credentials at the old provider's token endpoint (real HTTP)."""
    return flows.client_credentials(old_op.token_endpoint, WORKER[0], WORKER[1], scope)["access_token"]


def test_client_tokens_of_both_providers(multi, old_op, new_op):
    old = multi.validate_access_token(old_client_token(old_op))
    assert old.issuer == old_op.issuer
    assert old.header["typ"] == "JWT" and old["scope"] == ["wte"] and old.scopes == {"wte"}
    assert old.audiences == (old_op.issuer + "/resources",)
    assert old.subject is None and old.client_id == "wte-worker" and old.is_client_token

    new = multi.validate_access_token(cc_token(new_op, WORKER, "wte"))
    assert new.issuer == new_op.issuer
    assert new.header["typ"] == "at+jwt" and new["scope"] == "wte" and new.scopes == {"wte"}
    assert new.audiences == (API,)
    assert new.subject == "wte-worker" and new.is_client_token


def test_user_tokens_and_id_tokens_of_both_providers(multi, old_op, new_op):
    body, nonce, _code = code_flow(new_op, scope="openid contacts")
    access = multi.validate_access_token(body["access_token"])
    assert access.issuer == new_op.issuer and access.subject and "contacts" in access.scopes
    id_claims = multi.validate_id_token(body["id_token"], client_id=SERVER_APP[0], nonce=nonce)
    assert id_claims.issuer == new_op.issuer and id_claims.subject == access.subject

    old_access = old_op.mint({"idp": "idsrv", "amr": ["pwd"]}, subject="alice", scope=["openid", "contacts"])
    old_id = old_op.mint_id_token("spa", nonce="n-old", access_token=old_access)
    assert multi.validate_access_token(old_access).issuer == old_op.issuer
    assert multi.validate_id_token(old_id, client_id="spa", nonce="n-old", access_token=old_access).subject == "alice"


def test_each_token_is_held_to_its_own_issuer(multi, old_op, new_op):
    new_token = cc_token(new_op, WORKER, "wte")
    # an old-provider token claiming the new provider's iss: routed to the
    # new provider's validator, whose keys do not verify it
    forged = old_op.mint(issuer=new_op.issuer, audience=API, scope="wte", subject=None)
    with pytest.raises(InvalidToken):
        multi.validate_access_token(forged)
    # the old provider's token shape with the new API audience: old's audience rule
    with pytest.raises(InvalidToken, match="audience"):
        multi.validate_access_token(old_op.mint(audience=API))
    # the new provider's token edited to name the old issuer: signature fails there
    h, p, s = new_token.split(".")
    payload = flows.b64url_decode(p).replace(new_op.issuer.encode(), old_op.issuer.encode())
    with pytest.raises(InvalidToken):
        multi.validate_access_token(".".join((h, flows.b64url_encode(payload), s)))


def test_untrusted_issuers_cost_no_request(multi, old_op, new_op):
    multi.check()  # both providers' discovery and JWKS, now
    before = dict(old_op.fetch_counts)
    for iss in ("https://retired-idp.example", old_op.issuer + "/", new_op.issuer.replace("127.0.0.1", "localhost")):
        with pytest.raises(InvalidToken, match="not trusted"):
            multi.validate_access_token(old_op.mint(issuer=iss))
    assert old_op.fetch_counts == before


def test_contacts_example_in_migration_mode(old_op, new_op, tmp_path):
    examples = str(ROOT / "examples")
    if examples not in sys.path:
        sys.path.insert(0, examples)
    from contacts_api import create_app

    app = create_app({"OIDC_GUARD_ISSUER": new_op.issuer, "OIDC_GUARD_AUDIENCE": API,
                      "LEGACY_ISSUER": old_op.issuer, "CONTACTS_DB_PATH": str(tmp_path / "c.sqlite3")})
    api = app.test_client()
    for token in (old_client_token(old_op), cc_token(new_op, WORKER, "wte")):
        headers = {"Authorization": "Bearer " + token}
        job = api.post("/wte/jobs", json={"kind": "sync"}, headers=headers)
        assert job.status_code == 202 and job.get_json()["job"]["client_id"] == "wte-worker"
        refused = api.get("/contacts", headers=headers)
        assert refused.status_code == 403 and 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]


def test_require_issuer_with_real_tokens(multi, old_op, new_op):
    @require_issuer(new_op.issuer)
    @require_scope("wte")
    def new_only(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    api = webtest.TestApp(BearerMiddleware(new_only, multi, realm="contacts-api"))
    assert api.get("/", headers={"Authorization": "Bearer " + cc_token(new_op, WORKER, "wte")}).text == "ok"
    r = api.get("/", headers={"Authorization": "Bearer " + old_client_token(old_op)}, status=403)
    assert 'error="insufficient_claims"' in r.headers["WWW-Authenticate"]
