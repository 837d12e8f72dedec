"""``oidc-guard probe URL``: the API side (its 401 and its RFC 9728 metadata
document) is served by the loopback server of conftest, the authorization
server is the real LocalIssuer (its discovery document as served)."""

from __future__ import annotations

import io
import json
import socket
from typing import Any, Dict, List, Optional, Tuple

import pytest

from oidc_guard.cli import EXIT_INVALID, EXIT_OK, EXIT_PROVIDER, EXIT_USAGE, main
from oidc_guard.cli.probe import ChallengeError, parse_challenges, protected_resource_metadata_url
from oidc_guard.testing import OMIT

WELL_KNOWN = "/.well-known/oauth-protected-resource/contacts"


def probe(url: str, *extra: str) -> Tuple[int, str]:
    out = io.StringIO()
    code = main(["probe", url, "--timeout", "3", *extra], stdout=out)
    return code, out.getvalue()


def probe_json(url: str, *extra: str) -> Tuple[int, Dict[str, Any]]:
    code, text = probe(url, "--json", *extra)
    return code, json.loads(text)


def messages(result: Dict[str, Any], severity: Optional[str] = None) -> List[str]:
    return [f["message"] for f in result["flags"] if severity is None or f["severity"] == severity]


def serve_api(loopback, issuer, *, challenge: Optional[str] = None, metadata: Any = None,
              metadata_path: str = WELL_KNOWN, status: int = 401) -> str:
    """The API at /contacts: ``status`` with ``challenge`` (default: Bearer
    naming the metadata URL), and the metadata document at
    ``metadata_path`` (default members: this resource, the issuer,
    scopes contacts; a dict is merged, bytes are served as they are)."""
    url = loopback.url("/contacts")
    if challenge is None:
        challenge = f'Bearer realm="contacts", resource_metadata="{loopback.url(metadata_path)}"'
    headers = {"Content-Type": "application/json"}
    if challenge:
        headers["WWW-Authenticate"] = challenge
    loopback.routes["/contacts"] = (status, headers, b'{"error": "unauthorized"}')
    if isinstance(metadata, bytes):
        loopback.json(metadata_path, metadata)
    else:
        doc = {"resource": url, "authorization_servers": [issuer.issuer], "scopes_supported": ["contacts"],
               "bearer_methods_supported": ["header"]}
        for key, value in (metadata or {}).items():
            if value is OMIT:
                doc.pop(key, None)
            else:
                doc[key] = value
        loopback.json(metadata_path, json.dumps(doc))
    return url


# --- the challenge parser (RFC 9110 section 11.6.1) -------------------------------------------


def test_several_challenges_in_one_field_with_quoted_pairs_commas_and_token68():
    field = ('Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple", '
             'Negotiate YII=,  DPoP algs="ES256 PS256" , ,Bearer realm="x,y", '
             'resource_metadata="https://api.example/.well-known/oauth-protected-resource/a", scope="a b"')
    got = parse_challenges(field)
    assert [c["scheme"] for c in got] == ["Newauth", "Basic", "Negotiate", "DPoP", "Bearer"]
    assert got[0]["params"] == {"realm": "apps", "type": "1", "title": 'Login to "apps"'}
    assert got[2]["token68"] == "YII=" and got[2]["params"] == {}
    assert got[3]["params"] == {"algs": "ES256 PS256"}
    assert got[4]["params"] == {"realm": "x,y", "scope": "a b",
                                "resource_metadata": "https://api.example/.well-known/oauth-protected-resource/a"}
    # names are case-insensitive; BWS around "="; a scheme alone
    assert parse_challenges("Bearer") == [{"scheme": "Bearer", "params": {}, "token68": None}]
    assert parse_challenges('bearer Realm = "r", SCOPE=s')[0]["params"] == {"realm": "r", "scope": "s"}
    # "realm=" alone is a token68 by the grammar, not an empty parameter
    assert parse_challenges("Bearer realm=")[0]["token68"] == "realm="


@pytest.mark.parametrize("field, where", [
    ('Bearer realm="r", realm="s"', "appears twice"),
    ('Bearer REALM="r", realm="s"', "appears twice"),
    ('Bearer realm="unterminated', "not closed"),
    ('Bearer realm="a\x1bb"', "control"),
    ('Bearer a="b", realm=, c=d', "no value"),
    ('Bearer realm="r" scope="s"', "',' was expected"),
    ('Bearer, ="x"', "auth-scheme was expected"),
    ('Bearer realm "x"', "'=' was expected"),
    ('Negotiate YII=, scope=x', "space was expected"),
])
def test_a_field_off_the_grammar_is_refused_with_where(field, where):
    with pytest.raises(ChallengeError, match=where):
        parse_challenges(field)


def test_the_well_known_url_goes_before_the_path():
    assert protected_resource_metadata_url("https://api.example/contacts") == \
        "https://api.example/.well-known/oauth-protected-resource/contacts"
    assert protected_resource_metadata_url("https://api.example/") == \
        "https://api.example/.well-known/oauth-protected-resource"
    assert protected_resource_metadata_url("https://api.example:8443/a/b/?x=1") == \
        "https://api.example:8443/.well-known/oauth-protected-resource/a/b?x=1"


# --- the command -------------------------------------------------------------------------------


def test_happy_path_names_the_server_flow_resource_and_scopes(loopback, issuer):
    url = serve_api(loopback, issuer)
    code, text = probe(url)
    assert code == EXIT_OK, text
    assert f"get a token from {issuer.issuer}: authorization_code with PKCE (S256)" in text
    assert f"with resource={url} (RFC 8707)" in text
    assert 'and scope "contacts" (from scopes_supported)' in text
    # LocalIssuer has no RFC 8414 document: its OpenID one is used
    assert f"metadata: {issuer.discovery_url} (no RFC 8414 document" in text
    # RFC 8707 support cannot be known from LocalIssuer's metadata: said, not flagged
    assert "resource indicators (RFC 8707): cannot tell" in text
    assert text.rstrip().endswith("a client can get in")
    # only GETs without credentials were sent
    assert all("Authorization" not in headers for _path, headers in loopback.requests)

    code, result = probe_json(url)
    assert code == EXIT_OK and result["verdict"] == "ok"
    assert result["client"]["authorization_server"] == issuer.issuer
    assert result["client"]["resource"] == url and result["client"]["scopes"] == ["contacts"]
    assert result["client"]["token_endpoint"] == issuer.token_endpoint
    assert result["authorization_servers"][0]["resource_indicators"] is None
    assert result["challenges"][0]["params"]["realm"] == "contacts"


def test_the_challenge_scope_wins_over_scopes_supported(loopback, issuer):
    url = serve_api(loopback, issuer, challenge=f'Bearer scope="contacts wte", '
                                                f'resource_metadata="{loopback.url(WELL_KNOWN)}"')
    code, result = probe_json(url)
    assert code == EXIT_OK, result["flags"]
    assert result["client"]["scopes"] == ["contacts", "wte"]
    assert result["client"]["scopes_from"] == "the challenge's scope"


def test_a_metadata_resource_that_differs_from_the_url_is_refused(loopback, issuer):
    url = serve_api(loopback, issuer, metadata={"resource": loopback.url("/contacts/")})
    code, result = probe_json(url)
    assert code == EXIT_INVALID and result["verdict"] == "inconsistent"
    [error] = messages(result, "error")
    assert "MUST NOT use it (RFC 9728 section 3.3" in error and "remove the trailing slash" not in error
    assert "add the trailing slash" in error
    assert result["client"] is None  # a conforming client stops there


def test_an_authorization_server_without_pkce_is_flagged(loopback, issuer):
    issuer.discovery_overrides = {"code_challenge_methods_supported": OMIT}
    url = serve_api(loopback, issuer)
    code, text = probe(url)
    assert code == EXIT_INVALID
    assert f"ERROR: {issuer.issuer} does not advertise PKCE with S256 (code_challenge_methods_supported: None)" in text
    assert "a client (an MCP client, for one) would" not in text
    issuer.discovery_overrides = {"code_challenge_methods_supported": ["plain"]}
    code, result = probe_json(url)
    assert code == EXIT_INVALID and any("['plain']" in m for m in messages(result, "error"))


def test_an_authorization_server_naming_another_issuer_is_not_used(loopback, issuer):
    issuer.discovery_overrides = {"issuer": issuer.issuer + "/"}
    url = serve_api(loopback, issuer)
    code, result = probe_json(url)
    assert code == EXIT_INVALID and result["client"] is None
    assert any("names issuer" in m and "add the trailing slash" in m for m in messages(result, "error"))


def test_protected_resources_of_the_server_tell_about_resource_indicators(loopback, issuer):
    url = serve_api(loopback, issuer)
    issuer.discovery_overrides = {"protected_resources": [url]}
    code, result = probe_json(url)
    assert code == EXIT_OK and result["authorization_servers"][0]["resource_indicators"] is True
    issuer.discovery_overrides = {"protected_resources": ["https://other.example/api"]}
    code, result = probe_json(url)
    assert code == EXIT_INVALID and result["authorization_servers"][0]["resource_indicators"] is False
    assert any("does not list" in m for m in messages(result, "warning"))


def test_missing_scopes_and_missing_authorization_servers(loopback, issuer):
    url = serve_api(loopback, issuer, metadata={"scopes_supported": OMIT})
    code, result = probe_json(url)
    assert code == EXIT_INVALID and any("no scope is named" in m for m in messages(result, "warning"))
    url = serve_api(loopback, issuer, metadata={"authorization_servers": OMIT})
    code, result = probe_json(url)
    assert code == EXIT_INVALID and any("no authorization_servers" in m for m in messages(result, "error"))


def test_dpop_required_needs_a_common_algorithm(loopback, issuer):
    challenge = (f'DPoP algs="ES256", resource_metadata="{loopback.url(WELL_KNOWN)}", '
                 f'Bearer resource_metadata="{loopback.url(WELL_KNOWN)}"')
    url = serve_api(loopback, issuer, challenge=challenge, metadata={"dpop_bound_access_tokens_required": True})
    code, result = probe_json(url)  # LocalIssuer advertises no DPoP
    assert code == EXIT_INVALID and any("shares no DPoP algorithm" in m for m in messages(result, "error"))
    issuer.discovery_overrides = {"dpop_signing_alg_values_supported": ["RS256", "ES256"]}
    code, result = probe_json(url)
    assert code == EXIT_OK, result["flags"]
    assert result["client"]["token_type"] == "DPoP" and result["client"]["dpop_algs"] == ["ES256"]


def test_challenges_naming_different_metadata_urls_are_inconsistent(loopback, issuer):
    url = serve_api(loopback, issuer, challenge=f'Bearer resource_metadata="{loopback.url(WELL_KNOWN)}", '
                                                f'DPoP resource_metadata="{loopback.url("/elsewhere")}"')
    code, result = probe_json(url)
    assert code == EXIT_INVALID and any("different resource_metadata" in m for m in messages(result, "error"))


def test_without_resource_metadata_the_well_known_url_is_used(loopback, issuer):
    url = serve_api(loopback, issuer, challenge='Bearer realm="contacts"')
    code, result = probe_json(url)
    assert code == EXIT_OK, result["flags"]
    assert result["metadata_url"] == loopback.url(WELL_KNOWN)
    assert result["metadata_source"] == "the RFC 9728 section 3.1 well-known URL"
    assert loopback.counts[WELL_KNOWN] == 1
    assert any("no resource_metadata" in m for m in messages(result, "info"))


def test_without_resource_metadata_and_without_the_well_known_document(loopback, issuer):
    url = serve_api(loopback, issuer, challenge='Bearer realm="contacts"', metadata_path="/somewhere-else")
    code, text = probe(url)
    assert code == EXIT_INVALID
    assert (f"ERROR: no protected resource metadata: the challenge names no resource_metadata and "
            f"{loopback.url(WELL_KNOWN)} answers HTTP 404") in text


def test_a_401_without_any_challenge_still_looks_for_the_well_known_document(loopback, issuer):
    url = serve_api(loopback, issuer, challenge="")
    code, result = probe_json(url)
    assert code == EXIT_INVALID and result["client"] is not None
    assert any("without WWW-Authenticate" in m for m in messages(result, "error"))


def test_an_api_answering_200_without_a_token_is_not_protected(loopback, issuer):
    loopback.json("/open", '{"contacts": []}')
    code, text = probe(loopback.url("/open"))
    assert code == EXIT_INVALID
    assert "ERROR: the API answered HTTP 200 without a token: it is not protected" in text
    assert loopback.total == 1  # nothing else is fetched


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_or_failing_documents_exit_3(loopback, issuer):
    gone = f"http://127.0.0.1:{_closed_port()}"
    code, result = probe_json(gone + "/contacts")
    assert code == EXIT_PROVIDER and result["verdict"] == "unusable"
    assert messages(result, "unusable")[0].startswith("the API cannot be reached")
    url = serve_api(loopback, issuer, challenge=f'Bearer resource_metadata="{gone}/metadata"')
    code, result = probe_json(url)
    assert code == EXIT_PROVIDER
    assert messages(result, "unusable")[0].startswith("the protected resource metadata is unusable")
    # a named document that is missing is unusable too (not "absent": the API named it)
    url = serve_api(loopback, issuer, challenge=f'Bearer resource_metadata="{loopback.url("/nothing")}"')
    code, result = probe_json(url)
    assert code == EXIT_PROVIDER and "HTTP 404" in messages(result, "unusable")[0]
    # the authorization server's metadata failing
    url = serve_api(loopback, issuer)
    issuer.set_fault("discovery", status=503)
    code, result = probe_json(url)
    assert code == EXIT_PROVIDER and issuer.issuer in messages(result, "unusable")[0]


@pytest.mark.parametrize("body, reason", [
    (b'{"resource": "a", "resource": "b", "authorization_servers": []}', "duplicate member 'resource'"),
    (b'[1, 2]', "not an object"),
    (b'{"resource": ' + b'"' + b"x" * (600 * 1024) + b'"}', "limit"),
    (b'{"resource": NaN}', "not valid JSON"),
])
def test_a_hostile_metadata_document_is_refused(loopback, issuer, body, reason):
    url = serve_api(loopback, issuer, metadata=body)
    code, result = probe_json(url)
    assert code == EXIT_PROVIDER, result["flags"]
    assert reason in messages(result, "unusable")[0]


def test_control_characters_from_the_api_and_its_documents_reach_the_terminal_escaped(loopback, issuer):
    # ESC / CSI in the document's values, a C1 CSI (obs-text) in the challenge
    url = serve_api(loopback, issuer, challenge=f'Bearer realm="x\x9b2Jy", resource_metadata="{loopback.url(WELL_KNOWN)}"',
                    metadata={"resource": "\x1b[2J\x1b[32mVALID\u202e", "scopes_supported": ["a\rb"]})
    code, text = probe(url)
    assert code == EXIT_INVALID
    for raw in ("\x1b", "\x9b", "\r", "\u202e"):
        assert raw not in text
    assert "\\x1b[2J\\x1b[32mVALID\\u202e" in text and 'realm="x\\x9b2Jy"' in text and "a\\x0db" in text
    code, as_json = probe(url, "--json")
    assert "\x1b" not in as_json and json.loads(as_json)["metadata"]["resource"].startswith("\x1b[2J")


@pytest.mark.parametrize("argv, message", [
    (["ftp://api.example/contacts"], "must be an https URL"),
    (["http://api.example.com/contacts"], "plain http"),
    (["https://api.example.com/contacts#x"], "fragment"),
    (["https://api.example.com:99999/"], "not a valid URL"),
])
def test_usage_errors_exit_2(argv, message, capsys):
    assert main(["probe", *argv], stdout=io.StringIO()) == EXIT_USAGE
    assert message in capsys.readouterr().err
