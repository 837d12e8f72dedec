"""``python -m oidc_guard.testing token``: a user's access token from a
running development provider, for curl and the CLI (the client-credentials
worker cannot ask for ``contacts``).  Run as users run it (a subprocess of
``python -m``) against a real LocalIssuer and against the demo's stack."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import List

import pytest

from oidc_guard import TokenValidator
from oidc_guard.testing import LocalIssuer
from oidc_guard.testing.devtoken import DevTokenError, user_token

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))


def run(args: List[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "oidc_guard.testing", *args],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def issuer():
    with LocalIssuer() as iss:
        yield iss


def test_prints_an_access_token_for_the_user_with_the_scope(issuer):
    result = run(["token", "--issuer", issuer.issuer, "--user", "alice", "--password", "alice", "--scope", "contacts"])
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    token = result.stdout.strip()
    assert result.stdout == token + "\n"  # one line, nothing else: TOKEN=$(...) works
    claims = TokenValidator(issuer.issuer, audience="api://contacts").validate_access_token(token)
    assert claims.subject == "alice" and {"openid", "contacts"} <= claims.scopes


def test_several_scopes_the_id_token_and_the_whole_response(issuer):
    result = run(["token", "--issuer", issuer.issuer, "--user", "bob", "--password", "bob",
                  "--scope", "contacts wte", "--scope", "profile", "--json"])
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    assert set(response["scope"].split()) == {"openid", "contacts", "wte", "profile"}
    assert response["token_type"] == "Bearer"
    validator = TokenValidator(issuer.issuer, audience="api://contacts")
    assert validator.validate_access_token(response["access_token"]).subject == "bob"
    id_token = run(["token", "--issuer", issuer.issuer, "--user", "bob", "--password", "bob", "--id-token"])
    assert id_token.returncode == 0, id_token.stderr
    assert validator.validate_id_token(id_token.stdout.strip(), client_id="dev-cli").subject == "bob"


def test_refusals_say_why_with_their_exit_codes(issuer):
    wrong = run(["token", "--issuer", issuer.issuer, "--user", "alice", "--password", "bob"])
    assert wrong.returncode == 1 and wrong.stdout == ""
    assert "wrong username or password for 'alice'" in wrong.stderr
    assert "bob" not in wrong.stderr.replace("'alice'", "")  # the password is not echoed
    unknown_scope = run(["token", "--issuer", issuer.issuer, "--user", "alice", "--password", "alice",
                         "--scope", "admin"])
    assert unknown_scope.returncode == 1 and "scope not granted to 'dev-cli': admin" in unknown_scope.stderr
    # a real provider's address: never sent a password
    remote = run(["token", "--issuer", "https://idp.example.com", "--user", "alice", "--password", "alice"])
    assert remote.returncode == 2 and "not a loopback address" in remote.stderr
    assert run(["token", "--user", "alice"]).returncode == 2  # --issuer is required
    assert run([]).returncode == 2


def test_a_token_for_a_resource_at_a_sign_in_level(issuer):
    result = run(["token", "--issuer", issuer.issuer, "--user", "alice", "--password", "alice",
                  "--resource", "https://api.example.test/contacts", "--acr-values", "urn:oidc-guard:loa:2", "--json"])
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    validator = TokenValidator(issuer.issuer, audience="https://api.example.test/contacts")
    claims = validator.validate_access_token(response["access_token"])
    assert claims["acr"] == "urn:oidc-guard:loa:2" and isinstance(claims["auth_time"], int)
    assert validator.validate_id_token(response["id_token"], client_id="dev-cli")["acr"] == "urn:oidc-guard:loa:2"
    # bob cannot reach level 2; a malformed resource is refused: exit 1 with the provider's reason
    bob = run(["token", "--issuer", issuer.issuer, "--user", "bob", "--password", "bob",
               "--acr-values", "urn:oidc-guard:loa:2"])
    assert bob.returncode == 1 and "unmet_authentication_requirements" in bob.stderr and bob.stdout == ""
    bad = run(["token", "--issuer", issuer.issuer, "--user", "alice", "--password", "alice", "--resource", "contacts"])
    assert bad.returncode == 1 and "invalid_target" in bad.stderr


def test_an_unreachable_or_foreign_provider_is_exit_3():
    with LocalIssuer() as gone:
        url = gone.issuer
    down = run(["token", "--issuer", url, "--user", "alice", "--password", "alice"])
    assert down.returncode == 3 and "cannot reach" in down.stderr and "demo.sh" in down.stderr
    # a LocalIssuer without the default clients is not the demo's provider
    with LocalIssuer(clients={"spa": {"redirect_uris": ["http://127.0.0.1:8080/"]}}) as bare:
        with pytest.raises(DevTokenError) as info:
            user_token(bare.issuer, "alice", "alice")
    assert info.value.exit_code == 3 and "default clients" in str(info.value)


def test_the_token_is_accepted_by_the_demo_api_with_curl_s_request(tmp_path):
    """The documented use: the demo runs, the command gets alice a token with
    scope contacts, and a plain HTTP request with it reads the contacts
    (what the client-credentials worker cannot do: it only gets wte)."""
    import demo

    with demo.Stack(ports={"provider": 0, "api": 0, "spa": 0}, db_path=str(tmp_path / "c.sqlite3")) as stack:
        result = run(["token", "--issuer", stack.issuer_url, "--user", "alice", "--password", "alice",
                      "--scope", "contacts"])
        assert result.returncode == 0, result.stderr
        request = urllib.request.Request(stack.api_url + "/contacts",
                                         headers={"Authorization": f"Bearer {result.stdout.strip()}"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=10) as response:
            assert response.status == 200
            body = json.loads(response.read())
    assert isinstance(body, (list, dict))
