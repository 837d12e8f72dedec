"""RFC 8707 resource indicators against the real npm oidc-provider (both
pinned releases): a token requested with ``resource=`` is accepted by a
TokenValidator whose audience is that resource and refused, with reason
``audience``, by one for another resource; for client credentials and for
the authorization code flow. The development provider
(oidc_guard.testing.LocalIssuer) is held to the same client-credentials
behaviour, so tests written against it hold against a real provider.
"""

import pytest

from oidc_guard import InvalidToken, TokenValidator
from oidc_guard.testing import LocalIssuer

from . import flows
from .flows import API, SERVER_APP, WORKER, code_flow

pytestmark = pytest.mark.integration

# Registered in scripts/oidc-provider/interop.mjs (RESOURCE_SERVERS).
CONTACTS = "https://api.example.test/contacts"


def assert_for_resource_only(issuer, token, resource, others=(API, "api://other")):
    """Accepted by the API for ``resource``, refused (reason "audience") by
    the APIs for the ``others``."""
    claims = TokenValidator(issuer, audience=resource).validate_access_token(token)
    assert claims.audiences == (resource,)
    for other in others:
        with pytest.raises(InvalidToken) as refused:
            TokenValidator(issuer, audience=other).validate_access_token(token)
        assert refused.value.reason == "audience", refused.value
        assert resource in refused.value.description  # names the token's audience
    return claims


def test_client_credentials_token_is_for_the_requested_resource(real_op):
    token = flows.cc_token(real_op, WORKER, "wte", resource=CONTACTS)
    assert flows.jose_parts(token)[1]["aud"] == CONTACTS
    claims = assert_for_resource_only(real_op.issuer, token, CONTACTS)
    assert claims.client_id == "wte-worker"
    # The same client, the other resource: the reverse holds.
    other = flows.cc_token(real_op, WORKER, "wte", resource="api://other")
    assert_for_resource_only(real_op.issuer, other, "api://other", others=(CONTACTS, API))


def test_authorization_code_token_is_for_the_requested_resource(real_op):
    # resource at /authorize and at /token (RFC 8707 sections 2.1 and 2.2).
    body, _nonce, _code = code_flow(real_op, resource=CONTACTS, client=SERVER_APP)
    claims = assert_for_resource_only(real_op.issuer, body["access_token"], CONTACTS)
    assert claims.subject == "alice"


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
