"""RFC 8707 resource indicators against the real npm oidc-provider (both
pinned releases): a token requested with ``resource=`` is accepted by the
API configured with that resource (``OIDC_GUARD_RESOURCE`` and no audience:
the resource is the accepted audience) and refused, with reason
``audience`` and a description naming both, by the API for another
resource, whose challenge points to its RFC 9728 metadata; for client
credentials and for the authorization code flow. The development provider
(oidc_guard.testing.LocalIssuer) is held to the same client-credentials
behaviour, so tests written against it hold against a real provider.
"""

import pytest
from flask import Flask, request

from oidc_guard.flask import OIDCGuard, current_claims
from oidc_guard.testing import LocalIssuer

from . import flows
from .flows import API, SERVER_APP, WORKER, code_flow

pytestmark = pytest.mark.integration

# Registered in scripts/oidc-provider/interop.mjs (RESOURCE_SERVERS).
CONTACTS = "https://api.example.test/contacts"


def api_for(issuer, resource):
    """The API of ``resource``: Flask with OIDC_GUARD_RESOURCE and no
    audience (an https resource), else with OIDC_GUARD_AUDIENCE (a name
    such as api://other: no RFC 9728 resource identifier); /whoami answers
    the claims, or the refusal's reason."""
    app = Flask(__name__)
    key = "OIDC_GUARD_RESOURCE" if resource.startswith("https://") else "OIDC_GUARD_AUDIENCE"
    app.config.update({"OIDC_GUARD_ISSUER": issuer, key: resource})
    OIDCGuard(app)

    @app.get("/whoami")
    def whoami():
        error = request.environ["oidc_guard.error"]
        if error is not None:
            return {"reason": error.reason, "description": error.description}, 401
        return {"sub": current_claims.subject, "client_id": current_claims.client_id,
                "aud": list(current_claims.audiences)}

    return app.test_client()


def assert_for_resource_only(issuer, token, resource, others=(API, "api://other")):
    """Accepted by the API for ``resource``, refused (reason "audience",
    naming both) by the APIs for the ``others``."""
    answer = api_for(issuer, resource).get("/whoami", headers={"Authorization": "Bearer " + token})
    assert answer.status_code == 200, answer.json
    assert answer.json["aud"] == [resource]
    for other in others:
        refused = api_for(issuer, other).get("/whoami", headers={"Authorization": "Bearer " + token})
        assert refused.status_code == 401 and refused.json["reason"] == "audience", refused.json
        # names the token's audience and the resource of this API
        assert resource in refused.json["description"] and other in refused.json["description"]
    return answer.json


def test_client_credentials_token_is_for_the_requested_resource(real_op):
    token = flows.cc_token(real_op, WORKER, "wte", resource=CONTACTS)
    assert flows.jose_parts(token)[1]["aud"] == CONTACTS
    claims = assert_for_resource_only(real_op.issuer, token, CONTACTS)
    assert claims["client_id"] == "wte-worker"
    # The same client, the other resource: the reverse holds.
    other = flows.cc_token(real_op, WORKER, "wte", resource="api://other")
    assert_for_resource_only(real_op.issuer, other, "api://other", others=(CONTACTS, API))


def test_authorization_code_token_is_for_the_requested_resource(real_op):
    # resource at /authorize and at /token (RFC 8707 sections 2.1 and 2.2).
    body, _nonce, _code = code_flow(real_op, resource=CONTACTS, client=SERVER_APP)
    claims = assert_for_resource_only(real_op.issuer, body["access_token"], CONTACTS)
    assert claims["sub"] == "alice"


def test_authorization_code_resource_granted_at_authorize_only(real_op):
    # resource only at /authorize: the code carries it to /token.
    body, _nonce, _code = code_flow(real_op, resource=None, extra={"resource": CONTACTS})
    assert_for_resource_only(real_op.issuer, body["access_token"], CONTACTS)


def test_unknown_or_malformed_resource_is_invalid_target(real_op):
    for resource in ("https://api.example.test/unknown", "contacts", CONTACTS + "#fragment"):
        status, body = flows.token_request(real_op.token_endpoint, {
            "grant_type": "client_credentials", "scope": "wte", "resource": resource}, *WORKER)
        assert (status, body.get("error")) == (400, "invalid_target"), (resource, body)


@pytest.fixture(scope="module")
def local_issuer():
    with LocalIssuer() as issuer:
        yield issuer


def test_development_provider_behaves_the_same(real_op, local_issuer):
    # wte-worker / wte-secret is a client of both providers.
    for provider in (real_op, local_issuer):
        token = flows.cc_token(provider, WORKER, "wte", resource=CONTACTS)
        assert_for_resource_only(provider.issuer, token, CONTACTS)
        for resource in ("contacts", CONTACTS + "#fragment"):
            status, body = flows.token_request(provider.token_endpoint, {
                "grant_type": "client_credentials", "scope": "wte", "resource": resource}, *WORKER)
            assert (status, body.get("error")) == (400, "invalid_target"), (provider.issuer, resource, body)
