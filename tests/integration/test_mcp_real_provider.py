"""The contacts MCP example (examples/mcp_contacts) under uvicorn on a
loopback port, trusting the real npm oidc-provider (both pinned releases):

* the MCP SDK's own client calls the tools with a token the provider
  issued for this server (RFC 8707 ``resource`` = the server's URL) and is
  refused without one (401 whose challenge names the RFC 9728 metadata) or
  with one issued for another resource;
* the SDK's own OAuth client, knowing nothing but the server's URL, finds
  the authorization server as the MCP authorization spec's client does
  (the 401's ``resource_metadata``, then the provider's metadata), signs in
  with the authorization code flow + PKCE asking for this resource, and
  calls the tool;
* ``oidc-guard probe`` reports the same path, exit 0.

The provider accepts any ``http://127.0.0.1:<port>/mcp`` as a resource
(scripts/oidc-provider/interop.mjs)."""

from __future__ import annotations

import asyncio
import io
import json
import urllib.parse

import pytest

pytest.importorskip("mcp", reason="the MCP Python SDK (extra 'mcp', Python 3.10+)")
pytest.importorskip("flask", reason="the example shares the contacts API's store and e-mail rules")

from mcp.client.auth import OAuthClientProvider  # noqa: E402
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata  # noqa: E402
from mcp_helpers import call_tools, post, serve, tool_json  # noqa: E402

from examples.mcp_contacts import create_app  # noqa: E402
from oidc_guard.cli import EXIT_OK, main  # noqa: E402

from . import flows  # noqa: E402
from .flows import API, SERVER_APP, SERVER_APP_REDIRECT, WORKER, code_flow  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.fixture
def mcp_server(real_op, tmp_path):
    def make(url):
        return create_app({"ISSUER": real_op.issuer, "RESOURCE": url,
                           "CONTACTS_DB_PATH": str(tmp_path / "contacts.sqlite3")})

    with serve(make) as url:
        yield url


def test_the_sdk_client_calls_a_tool_with_a_token_for_this_server(real_op, mcp_server):
    body, _nonce, _code = code_flow(real_op, scope="openid contacts", resource=mcp_server, client=SERVER_APP)
    token = body["access_token"]
    assert flows.jose_parts(token)[1]["aud"] == mcp_server
    _, (added, listed) = call_tools(mcp_server, token, [("add_contact", {"email": "ann@example.com"}),
                                                        ("list_contacts", {})])
    assert tool_json(added)["added"] == 1
    assert tool_json(listed) == {"sub": "alice", "count": 1, "contacts": tool_json(listed)["contacts"]}
    assert [c["email"] for c in tool_json(listed)["contacts"]] == ["ann@example.com"]


def test_without_a_token_or_with_one_for_another_resource_it_is_refused(real_op, mcp_server):
    status, headers, body = post(mcp_server)
    assert (status, body["error"]) == (401, "invalid_token")
    metadata_url = mcp_server.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
    assert f'resource_metadata="{metadata_url}"' in headers["WWW-Authenticate"]
    # The provider's token for the contacts API (aud api://contacts): not for this server.
    body, _nonce, _code = code_flow(real_op, scope="openid contacts", resource=API, client=SERVER_APP)
    status, headers, body = post(mcp_server, body["access_token"])
    assert (status, body["error"]) == (401, "invalid_token")
    assert "resource_metadata=" in headers["WWW-Authenticate"]
    # A client's own token for this server: the SDK lets it in (scope
    # contacts is not the worker's, so 403); the tools want a user anyway.
    worker = flows.cc_token(real_op, WORKER, "wte", resource=mcp_server)
    status, _headers, body = post(mcp_server, worker)
    assert (status, body["error"]) == (403, "insufficient_scope")


class _Memory:
    """The SDK's TokenStorage: the client registered beforehand (the
    provider has no dynamic registration), the tokens it gets."""

    def __init__(self, client):
        self.client = client
        self.tokens = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client

    async def set_client_info(self, client_info):
        self.client = client_info


def test_the_sdks_oauth_client_discovers_the_provider_from_the_metadata(real_op, mcp_server):
    client_id, secret = SERVER_APP
    storage = _Memory(OAuthClientInformationFull(
        client_id=client_id, client_secret=secret, token_endpoint_auth_method="client_secret_basic",
        redirect_uris=[SERVER_APP_REDIRECT], grant_types=["authorization_code"], response_types=["code"]))
    asked = []
    answers = []

    async def redirect_handler(authorization_url):
        # The person signing in: the provider's login and consent pages.
        asked.append(authorization_url)
        browser = flows.DevLoginBrowser(login="alice")
        answers.append(await asyncio.to_thread(browser.authorize, authorization_url, SERVER_APP_REDIRECT))

    async def callback_handler():
        params = flows.response_params(answers[-1], "query")
        return AuthorizationCodeResult(code=params["code"], state=params.get("state"), iss=params.get("iss"))

    auth = OAuthClientProvider(
        server_url=mcp_server,
        client_metadata=OAuthClientMetadata(redirect_uris=[SERVER_APP_REDIRECT], client_name="mcp test"),
        storage=storage, redirect_handler=redirect_handler, callback_handler=callback_handler)
    _, (listed,) = call_tools(mcp_server, None, [("list_contacts", {})], auth=auth)
    assert tool_json(listed)["sub"] == "alice"
    # It went to the provider the metadata named, for this server, with PKCE
    # and the scope of the metadata.
    [url] = asked
    assert url.startswith(real_op.authorization_endpoint + "?")
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    assert query["resource"] == mcp_server
    assert query["code_challenge_method"] == "S256" and query["scope"] == "contacts"
    assert flows.jose_parts(storage.tokens.access_token)[1]["aud"] == mcp_server


def test_probe_finds_the_provider_through_the_metadata(real_op, mcp_server):
    out = io.StringIO()
    code = main(["probe", mcp_server, "--json", "--timeout", "5"], stdout=out)
    result = json.loads(out.getvalue())
    assert code == EXIT_OK, result["flags"]
    client = result["client"]
    assert client["authorization_server"] == real_op.issuer
    assert client["resource"] == mcp_server and client["scopes"] == ["contacts"]
    assert client["authorization_endpoint"] == real_op.authorization_endpoint
