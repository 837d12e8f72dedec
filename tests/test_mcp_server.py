"""The contacts MCP example (examples/mcp_contacts) under uvicorn on a
loopback port, with the loopback LocalIssuer as its provider: the SDK's own
client calls the tools with a token for this server; without one, with one
for another resource or without the scope it is refused with the SDK's
RFC 9728 challenge; an outage is a 503, not a 401; and ``oidc-guard probe``
finds the authorization server from the server's metadata."""

from __future__ import annotations

import io
import json

import pytest

pytest.importorskip("mcp", reason="the MCP Python SDK (extra 'mcp', Python 3.10+)")
pytest.importorskip("flask", reason="the example shares the contacts API's store and e-mail rules")

from mcp_helpers import call_tools, get_json, post, serve, tool_json  # noqa: E402

from examples.mcp_contacts import create_app, create_server  # noqa: E402
from oidc_guard.cli import EXIT_OK, main  # noqa: E402

@pytest.fixture
def mcp_server(issuer, tmp_path):
    def make(url):
        return create_app({"ISSUER": issuer.issuer, "RESOURCE": url,
                           "CONTACTS_DB_PATH": str(tmp_path / "contacts.sqlite3")})

    with serve(make) as url:
        yield url


def test_the_sdk_client_calls_the_tools_with_a_token_for_this_server(issuer, mcp_server):
    alice = issuer.mint(audience=mcp_server, scope="contacts", subject="alice")
    (init, tools), (before, added, again, after) = call_tools(mcp_server, alice, [
        ("list_contacts", {}), ("add_contact", {"email": "Ann@Example.COM"}),
        ("add_contact", {"email": "ann@example.com"}), ("list_contacts", {})])
    assert init.server_info.name == "contacts"
    assert sorted(tool.name for tool in tools.tools) == ["add_contact", "list_contacts"]
    assert tool_json(before) == {"sub": "alice", "count": 0, "contacts": []}
    assert tool_json(added)["email"] == "Ann@example.com" and tool_json(added)["added"] == 1
    assert tool_json(again)["duplicates"] == 1  # the same address, another case
    listed = tool_json(after)
    assert listed["count"] == 1 and listed["contacts"][0]["email"] == "Ann@example.com"
    # Bob sees his own contacts only.
    bob = issuer.mint(audience=mcp_server, scope="contacts", subject="bob")
    _, (his,) = call_tools(mcp_server, bob, [("list_contacts", {})])
    assert tool_json(his) == {"sub": "bob", "count": 0, "contacts": []}


def test_a_bad_address_and_a_client_token_are_tool_errors(issuer, mcp_server):
    alice = issuer.mint(audience=mcp_server, scope="contacts")
    _, (bad,) = call_tools(mcp_server, alice, [("add_contact", {"email": "not an address"})])
    assert bad.is_error
    client = issuer.mint(audience=mcp_server, scope="contacts", subject=None, client_id="worker")
    _, (refused,) = call_tools(mcp_server, client, [("list_contacts", {})])
    assert refused.is_error and "user's token" in refused.content[0].text


def test_without_a_token_the_challenge_names_the_metadata_that_names_the_issuer(issuer, mcp_server):
    status, headers, body = post(mcp_server)
    assert status == 401 and body["error"] == "invalid_token"
    challenge = headers["WWW-Authenticate"]
    metadata_url = mcp_server.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
    assert challenge.startswith("Bearer ") and f'resource_metadata="{metadata_url}"' in challenge
    status, _headers, doc = get_json(metadata_url)
    assert status == 200
    assert doc["resource"] == mcp_server
    assert doc["authorization_servers"] == [issuer.issuer]
    assert doc["scopes_supported"] == ["contacts"]


@pytest.mark.parametrize("kind", ["other_resource", "expired", "forged"])
def test_a_token_not_for_this_server_is_401(issuer, mcp_server, kind):
    token = {
        "other_resource": lambda: issuer.mint(audience="api://contacts", scope="contacts"),
        "expired": lambda: issuer.mint(audience=mcp_server, expires_in=-600),
        "forged": lambda: issuer.mint(audience=mcp_server)[:-6] + "AAAAAA",
    }[kind]()
    status, headers, body = post(mcp_server, token)
    assert status == 401 and body["error"] == "invalid_token"
    assert "resource_metadata=" in headers["WWW-Authenticate"]


def test_a_token_without_the_scope_is_403(issuer, mcp_server):
    status, headers, body = post(mcp_server, issuer.mint(audience=mcp_server, scope="wte"))
    assert status == 403 and body["error"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in headers["WWW-Authenticate"]


def test_a_provider_outage_is_503_not_401(issuer, mcp_server):
    token = issuer.mint(audience=mcp_server)  # never validated: its keys must be fetched
    issuer.stop()
    status, headers, body = post(mcp_server, token)
    assert status == 503, body
    assert body["error"] == "temporarily_unavailable"
    assert int(headers["Retry-After"]) >= 1
    assert headers.get("WWW-Authenticate") is None  # not a token problem


def test_without_the_outage_middleware_the_sdk_answers_an_outage_401(issuer, tmp_path):
    # What ProviderOutageMiddleware is for: the SDK turns a verifier's None
    # into 401 invalid_token, whatever the cause.
    def make(url):
        server = create_server({"ISSUER": issuer.issuer, "RESOURCE": url,
                                "CONTACTS_DB_PATH": str(tmp_path / "contacts.sqlite3")})
        return server.streamable_http_app()

    with serve(make) as url:
        token = issuer.mint(audience=url)
        issuer.stop()
        status, _headers, body = post(url, token)
    assert (status, body["error"]) == (401, "invalid_token")


def test_probe_finds_the_authorization_server_through_the_metadata(issuer, mcp_server):
    out = io.StringIO()
    code = main(["probe", mcp_server, "--json", "--timeout", "5"], stdout=out)
    result = json.loads(out.getvalue())
    assert code == EXIT_OK, result["flags"]
    assert result["metadata_source"].startswith("named by the challenge's resource_metadata")
    client = result["client"]
    assert client["authorization_server"] == issuer.issuer
    assert client["resource"] == mcp_server and client["scopes"] == ["contacts"]
    assert client["flow"] == "authorization_code with PKCE (S256)"
