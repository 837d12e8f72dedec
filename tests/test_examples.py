"""The examples: the contacts API (Flask test client, tokens minted by
LocalIssuer), ``demo.py --check`` as a user runs it, and the wte worker
against the development provider.  No browser; a few seconds in all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from oidc_guard.testing import LocalIssuer

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))

from contacts_api import create_app  # noqa: E402
from contacts_api.app import normalise_email  # noqa: E402

SPA_ORIGIN = "http://127.0.0.1:5002"


@pytest.fixture
def db_path(tmp_path):
    return str(tmp_path / "contacts.sqlite3")


@pytest.fixture
def make_api(issuer, db_path):
    def make(**config):
        settings = {
            "OIDC_GUARD_ISSUER": issuer.issuer,
            "OIDC_GUARD_AUDIENCE": "api://contacts",
            "CONTACTS_DB_PATH": db_path,
            "CORS_ALLOWED_ORIGINS": [SPA_ORIGIN],
        }
        settings.update(config)
        return create_app(settings).test_client()

    return make


@pytest.fixture
def api(make_api):
    return make_api()


def bearer(token, **extra):
    headers = {"Authorization": "Bearer " + token}
    headers.update(extra)
    return headers


def import_emails(api, token, emails):
    return api.post("/contacts/import", json={"emails": emails}, headers=bearer(token))


# --- public route, no token ---------------------------------------------------


def test_health_is_public(api):
    response = api.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_protected_routes_without_token_get_a_bare_challenge(api):
    for method, path in (("GET", "/contacts"), ("POST", "/contacts/import"), ("POST", "/wte/jobs"),
                         ("GET", "/coordinate"), ("POST", "/session/handoff")):
        response = api.open(path, method=method)
        assert response.status_code == 401, path
        # RFC 6750 3.1: no error attribute when no token was sent
        # the Bearer challenge first, then the DPoP one (RFC 9449 7.1: both
        # schemes accepted), in one field
        assert response.headers.getlist("WWW-Authenticate") == [response.headers["WWW-Authenticate"]], path
        assert response.headers["WWW-Authenticate"].startswith(
            'Bearer realm="contacts-api", DPoP realm="contacts-api", algs="'), path


def test_token_from_another_issuer_is_rejected(api):
    with LocalIssuer() as other:
        token = other.mint(scope="contacts")
    response = api.get("/contacts", headers=bearer(token))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="contacts-api", error="invalid_token"')


# --- contacts -------------------------------------------------------------------


def test_import_then_list_own_contacts(api, issuer):
    token = issuer.mint(scope="contacts", subject="alice")
    response = import_emails(api, token, ["Ann@Example.COM", "bob@example.org", "ann@example.com"])
    assert response.status_code == 200
    assert response.get_json() == {"sub": "alice", "added": 2, "duplicates": 1, "total": 2}

    again = import_emails(api, token, ["BOB@example.org", "carol@example.net"])
    assert again.get_json() == {"sub": "alice", "added": 1, "duplicates": 1, "total": 3}

    listed = api.get("/contacts", headers=bearer(token)).get_json()
    assert listed["sub"] == "alice" and listed["count"] == 3
    # The domain is normalised to lower case; the local part is kept as sent.
    assert [c["email"] for c in listed["contacts"]] == ["Ann@example.com", "bob@example.org", "carol@example.net"]
    assert all(isinstance(c["added_at"], int) for c in listed["contacts"])


def test_each_user_sees_only_their_own_contacts(api, issuer):
    alice = issuer.mint(scope="contacts", subject="alice")
    bob = issuer.mint(scope="contacts", subject="bob")
    import_emails(api, alice, ["secret-friend@example.com"])
    assert api.get("/contacts", headers=bearer(bob)).get_json() == {"sub": "bob", "count": 0, "contacts": []}
    assert api.get("/contacts", headers=bearer(alice)).get_json()["count"] == 1


def test_same_sub_from_another_issuer_is_another_owner(db_path, issuer):
    """OIDC Core 2: sub is unique only within an issuer."""
    with LocalIssuer() as other:
        first = create_app({"OIDC_GUARD_ISSUER": issuer.issuer, "CONTACTS_DB_PATH": db_path}).test_client()
        second = create_app({"OIDC_GUARD_ISSUER": other.issuer, "CONTACTS_DB_PATH": db_path}).test_client()
        import_emails(first, issuer.mint(subject="alice"), ["a@example.com"])
        listed = second.get("/contacts", headers=bearer(other.mint(subject="alice"))).get_json()
    assert listed["count"] == 0


def test_contacts_persist_across_app_restarts(make_api, issuer, db_path):
    token = issuer.mint(scope="contacts")
    assert import_emails(make_api(), token, ["kept@example.com"]).status_code == 200
    restarted = make_api()  # a new app (new connections) on the same file
    assert [c["email"] for c in restarted.get("/contacts", headers=bearer(token)).get_json()["contacts"]] == [
        "kept@example.com"
    ]
    assert os.path.getsize(db_path) > 0


def test_contacts_routes_need_the_contacts_scope(api, issuer):
    token = issuer.mint(scope="wte coordinate")
    for response in (api.get("/contacts", headers=bearer(token)), import_emails(api, token, ["a@example.com"])):
        assert response.status_code == 403
        challenge = response.headers["WWW-Authenticate"]
        assert 'error="insufficient_scope"' in challenge and 'scope="contacts"' in challenge
        assert response.get_json()["error"] == "insufficient_scope"


def test_scope_as_json_array_like_identityserver_v3(api, issuer):
    token = issuer.mint(scope=["openid", "contacts"])
    assert api.get("/contacts", headers=bearer(token)).status_code == 200


def test_client_credentials_token_cannot_act_as_a_user(api, issuer):
    # RFC 9068 style: sub == client_id, no end-user.
    token = issuer.mint(scope="contacts", subject="contacts-sync", client_id="contacts-sync")
    response = api.get("/contacts", headers=bearer(token))
    assert response.status_code == 403
    assert response.get_json()["error"] == "access_denied"


@pytest.mark.parametrize(
    "body, content_type, expected",
    [
        (b'{"emails": ["a@example.com"]', "application/json", "send a JSON object"),
        (b'{"emails": ["a@example.com"]}', "text/plain", "Content-Type: application/json"),
        (b'["a@example.com"]', "application/json", "send a JSON object"),
        (b'{"emails": "a@example.com"}', "application/json", '"emails" must be a list'),
        (b'{"emails": []}', "application/json", '"emails" is empty'),
        (b'{"addresses": ["a@example.com"]}', "application/json", '"emails" must be a list'),
    ],
)
def test_import_rejects_malformed_bodies(api, issuer, body, content_type, expected):
    token = issuer.mint(scope="contacts")
    response = api.post("/contacts/import", data=body, headers=bearer(token, **{"Content-Type": content_type}))
    assert response.status_code == 400
    answer = response.get_json()
    assert answer["error"] == "invalid_request"
    assert expected in answer["error_description"]


def test_import_lists_invalid_entries_and_imports_nothing(api, issuer):
    token = issuer.mint(scope="contacts")
    response = import_emails(api, token, ["ok@example.com", "no-at-sign", 42, "x@localhost"])
    assert response.status_code == 400
    answer = response.get_json()
    assert answer["error_description"] == "3 of 4 entries are not valid e-mail addresses; nothing was imported"
    assert [(p["index"], p["value"]) for p in answer["invalid"]] == [(1, "no-at-sign"), (2, None), (3, "x@localhost")]
    assert answer["invalid"][1]["reason"] == "must be a string"
    assert api.get("/contacts", headers=bearer(token)).get_json()["count"] == 0


def test_import_size_limits(make_api, issuer):
    api = make_api(MAX_IMPORT_EMAILS=3, MAX_CONTACTS_PER_OWNER=4)
    token = issuer.mint(scope="contacts")
    too_many = import_emails(api, token, [f"u{i}@example.com" for i in range(4)])
    assert too_many.status_code == 400 and "at most 3 per request" in too_many.get_json()["error_description"]

    assert import_emails(api, token, ["a@example.com", "b@example.com", "c@example.com"]).status_code == 200
    over = import_emails(api, token, ["d@example.com", "e@example.com"])
    assert over.status_code == 400 and "at most 4 contacts" in over.get_json()["error_description"]
    # atomic: neither d nor e was stored
    assert api.get("/contacts", headers=bearer(token)).get_json()["count"] == 3

    huge = api.post(
        "/contacts/import",
        data=json.dumps({"emails": ["a" * 100 + "@example.com"] * 1000}),
        headers=bearer(token, **{"Content-Type": "application/json"}),
    )
    assert huge.status_code == 413
    assert huge.get_json()["error"] == "request_too_large"


@pytest.mark.parametrize(
    "value, expected",
    [
        ("ann@example.com", "ann@example.com"),
        ("  Ann.Lee+tag@Mail.Example.COM ", "Ann.Lee+tag@mail.example.com"),
        ("o'brien@example.ie", "o'brien@example.ie"),
    ],
)
def test_normalise_email_accepts(value, expected):
    assert normalise_email(value) == expected


@pytest.mark.parametrize(
    "value, reason",
    [
        ("", "is empty"),
        ("plainaddress", "is not an e-mail address"),
        ("@example.com", "is not an e-mail address"),
        ("a..b@example.com", "characters not allowed before"),
        ("a b@example.com", "characters not allowed before"),
        ('"quoted"@example.com', "characters not allowed before"),
        ("ann@example", "invalid domain"),
        ("ann@-example.com", "invalid domain"),
        ("ann@example..com", "invalid domain"),
        ("ann@1.2.3.4", "numeric top-level domain"),
        ("ann@[127.0.0.1]", "invalid domain"),
        ("jöhn@example.com", "non-ASCII"),
        ("a" * 65 + "@example.com", "longer than 64"),
        ("a@" + "b" * 250 + ".com", "longer than 254"),
        ("ann@example.com\r\nBcc: x@example.com", "characters not allowed before"),
        (None, "must be a string"),
    ],
)
def test_normalise_email_rejects(value, reason):
    with pytest.raises(ValueError) as info:
        normalise_email(value)
    assert reason in str(info.value)


# --- wte and coordinate ---------------------------------------------------------


def test_wte_job_with_client_credentials_token_without_sub(make_api, issuer):
    client = make_api()
    token = issuer.mint(scope=["wte"], subject=None, client_id="wte-worker")  # IdentityServer v3 shape
    response = client.post("/wte/jobs", json={"kind": "nightly-sync", "payload": {"n": 1}}, headers=bearer(token))
    assert response.status_code == 202
    answer = response.get_json()
    assert answer["client_token"] is True
    assert answer["job"]["client_id"] == "wte-worker" and answer["job"]["subject"] is None
    assert answer["job"]["kind"] == "nightly-sync"
    store = client.application.extensions["contacts_store"]
    assert store.count_jobs("wte-worker") == 1

    empty = client.post("/wte/jobs", headers=bearer(token))  # no body: default kind
    assert empty.status_code == 202 and empty.get_json()["job"]["kind"] == "sync"
    bad = client.post("/wte/jobs", json={"kind": "DROP TABLE"}, headers=bearer(token))
    assert bad.status_code == 400
    assert store.count_jobs("wte-worker") == 2


def test_wte_needs_the_wte_scope(api, issuer):
    response = api.post("/wte/jobs", json={}, headers=bearer(issuer.mint(scope="contacts")))
    assert response.status_code == 403 and 'scope="wte"' in response.headers["WWW-Authenticate"]


def test_coordinate_needs_the_coordinate_scope(api, issuer):
    ok = api.get("/coordinate", headers=bearer(issuer.mint(scope="coordinate")))
    assert ok.status_code == 200 and ok.get_json()["sub"] == "alice"
    refused = api.get("/coordinate", headers=bearer(issuer.mint(scope="contacts")))
    assert refused.status_code == 403 and 'scope="coordinate"' in refused.headers["WWW-Authenticate"]


# --- the id_token handoff ----------------------------------------------------------


def handoff(api, access_token, id_token, nonce):
    return api.post("/session/handoff", json={"id_token": id_token, "nonce": nonce}, headers=bearer(access_token))


def test_handoff_accepts_a_matching_id_token(api, issuer):
    access = issuer.mint(scope="openid profile contacts")
    id_token = issuer.mint_id_token("spa", nonce="n-123", access_token=access, extra={"name": "Alice Example"})
    response = handoff(api, access, id_token, "n-123")
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert answer["user"] == {"sub": "alice", "name": "Alice Example"}
    assert answer["issuer"] == issuer.issuer and answer["client_id"] == "spa"
    assert answer["scopes"] == ["contacts", "openid", "profile"]


def test_handoff_rejects_a_wrong_nonce(api, issuer):
    access = issuer.mint()
    id_token = issuer.mint_id_token("spa", nonce="n-123", access_token=access)
    response = handoff(api, access, id_token, "n-999")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_id_token"
    assert "nonce" in response.get_json()["error_description"]
    assert "WWW-Authenticate" not in response.headers  # the access token itself was fine


def test_handoff_rejects_an_at_hash_for_another_access_token(api, issuer):
    access = issuer.mint()
    other_access = issuer.mint()
    id_token = issuer.mint_id_token("spa", nonce="n", access_token=other_access)
    response = handoff(api, access, id_token, "n")
    assert response.status_code == 400
    assert "at_hash" in response.get_json()["error_description"]


def test_handoff_rejects_an_id_token_for_another_user(api, issuer):
    access = issuer.mint(subject="alice")
    id_token = issuer.mint_id_token("spa", nonce="n", access_token=access, subject="mallory")
    response = handoff(api, access, id_token, "n")
    assert response.status_code == 400
    assert "sub" in response.get_json()["error_description"]


def test_handoff_rejects_an_id_token_for_another_client(api, issuer):
    access = issuer.mint()
    id_token = issuer.mint_id_token("other-app", nonce="n", access_token=access)
    response = handoff(api, access, id_token, "n")
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_id_token"


def test_handoff_rejects_an_expired_id_token(api, issuer):
    access = issuer.mint()
    id_token = issuer.mint_id_token("spa", nonce="n", access_token=access, expires_in=-3600)
    response = handoff(api, access, id_token, "n")
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_id_token"


def test_handoff_needs_a_nonce_and_an_id_token(api, issuer):
    access = issuer.mint()
    id_token = issuer.mint_id_token("spa", nonce="n", access_token=access)
    no_nonce = api.post("/session/handoff", json={"id_token": id_token}, headers=bearer(access))
    assert no_nonce.status_code == 400 and '"nonce" is missing' in no_nonce.get_json()["error_description"]
    no_token = api.post("/session/handoff", json={"nonce": "n"}, headers=bearer(access))
    assert no_token.status_code == 400 and '"id_token" is missing' in no_token.get_json()["error_description"]


def test_handoff_refuses_client_credentials_tokens(api, issuer):
    access = issuer.mint(scope="wte", subject=None, client_id="wte-worker")
    id_token = issuer.mint_id_token("spa", nonce="n", access_token=access)
    assert handoff(api, access, id_token, "n").status_code == 403


# --- CORS -----------------------------------------------------------------------------


def test_cors_preflight_for_the_spa_origin_only(api):
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}
    ok = api.options("/contacts/import", headers=dict(preflight, Origin=SPA_ORIGIN))
    assert ok.status_code == 204
    assert ok.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN
    assert "Authorization" in ok.headers["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in ok.headers

    evil = api.options("/contacts/import", headers=dict(preflight, Origin="http://evil.example"))
    assert "Access-Control-Allow-Origin" not in evil.headers


def test_cors_headers_also_on_the_guards_own_errors(api):
    response = api.get("/contacts", headers={"Authorization": "Bearer not.a.jwt", "Origin": SPA_ORIGIN})
    assert response.status_code == 401
    assert response.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN
    assert "WWW-Authenticate" in response.headers["Access-Control-Expose-Headers"]


# --- demo.py --check and the worker ----------------------------------------------------


def test_demo_check_passes():
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "demo.py"), "--check", "--timeout", "60"],
        cwd=str(ROOT), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=90,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "FAIL" not in proc.stdout
    assert "demo --check: all steps passed" in proc.stdout
    assert proc.stdout.count("PASS") >= 15


@pytest.fixture
def dev_stack(tmp_path):
    import demo

    with demo.Stack(ports={"provider": 0, "api": 0, "spa": 0}, db_path=str(tmp_path / "c.sqlite3")) as stack:
        yield stack


def test_worker_against_the_dev_provider(dev_stack, capsys):
    import wte_worker

    assert wte_worker.main(["--issuer", dev_stack.issuer_url, "--api", dev_stack.api_url]) == 0
    out = capsys.readouterr().out
    assert "PASS  POST /wte/jobs -> 202" in out
    assert 'PASS  GET /contacts -> 403 as expected; WWW-Authenticate: Bearer realm="contacts-api", error="insufficient_scope"' in out
    assert "wte-secret" not in out  # the secret is never printed
    store = dev_stack.api_app.extensions["contacts_store"]
    assert store.count_jobs("wte-worker") == 1

    assert wte_worker.main(
        ["--issuer", dev_stack.issuer_url, "--api", dev_stack.api_url, "--auth-method", "client_secret_post"]
    ) == 0


def test_worker_fails_with_a_wrong_secret(dev_stack, capsys):
    import wte_worker

    code = wte_worker.main(["--issuer", dev_stack.issuer_url, "--api", dev_stack.api_url, "--client-secret", "nope"])
    assert code == 1
    assert "FAIL  could not get a client-credentials token" in capsys.readouterr().out


def test_worker_fails_when_contacts_is_not_refused(dev_stack, capsys):
    """The worker's exit code is not hard-wired: a client that also holds
    the contacts scope gets no 403, and the worker says so."""
    import wte_worker

    dev_stack.issuer.register_client(
        "wte-worker", secret="wte-secret", scopes="wte contacts", grant_types=("client_credentials",)
    )
    code = wte_worker.main(["--issuer", dev_stack.issuer_url, "--api", dev_stack.api_url, "--scope", "wte contacts"])
    assert code == 1
    out = capsys.readouterr().out
    assert "PASS  POST /wte/jobs" in out
    assert "FAIL  GET /contacts ->" in out and "expected 403 insufficient_scope" in out


# --- GET /me: the profile from UserInfo ---------------------------------------------


def test_me_returns_the_userinfo_profile(api, issuer):
    token = issuer.mint(subject=issuer.users["alice"]["sub"], scope="openid profile email contacts")
    response = api.get("/me", headers=bearer(token))
    assert response.status_code == 200, response.get_json()
    profile = response.get_json()["profile"]
    assert profile["sub"] == issuer.users["alice"]["sub"]
    assert profile.get("name") == issuer.users["alice"].get("name")
    api.get("/me", headers=bearer(token))
    assert issuer.fetch_counts["userinfo"] == 1  # cached per token


def test_me_answers_503_when_userinfo_is_down(api, issuer):
    token = issuer.mint(subject="alice", scope="openid")
    issuer.discovery_overrides["userinfo_endpoint"] = "http://127.0.0.1:9/userinfo"
    response = api.get("/me", headers=bearer(token))
    assert response.status_code == 503 and response.headers.get("Retry-After")
    assert response.get_json()["error"] == "temporarily_unavailable"


def test_me_refuses_client_tokens_and_anonymous(api, issuer):
    assert api.get("/me").status_code == 401
    token = issuer.mint(subject=None, claims={"client_id": "wte"}, scope="wte")
    assert api.get("/me", headers=bearer(token)).status_code == 403

# --- migration mode: two issuers at once --------------------------------------


@pytest.fixture
def old_idp():
    with LocalIssuer(token_shape="identityserver3") as old:
        yield old


def test_migration_mode_accepts_both_token_shapes(make_api, issuer, old_idp):
    api = make_api(LEGACY_ISSUER=old_idp.issuer)
    # the new provider (RFC 9068: typ at+jwt, scope a string)
    new_token = issuer.mint(scope="contacts wte", subject="alice")
    assert import_emails(api, new_token, ["a@example.com"]).status_code == 200
    # the old provider, IdentityServer v3 shaped: typ JWT, scope a JSON
    # array, aud <issuer>/resources
    old_token = old_idp.mint(subject="alice", scope=["contacts", "wte"])
    assert old_idp.audience == old_idp.issuer + "/resources"
    response = api.get("/contacts", headers=bearer(old_token))
    assert response.status_code == 200
    assert response.get_json()["contacts"] == []  # another issuer: another owner
    assert api.get("/contacts", headers=bearer(new_token)).get_json()["contacts"][0]["email"] == "a@example.com"
    # an old client token (no sub) is a client token for /wte/jobs
    client = old_idp.mint(subject=None, scope=["wte"], client_id="wte-worker")
    job = api.post("/wte/jobs", json={"kind": "sync"}, headers=bearer(client))
    assert job.status_code == 202 and job.get_json()["client_token"] is True
    # each issuer keeps its own audience
    wrong = old_idp.mint(subject="alice", scope=["contacts"], audience="api://contacts")
    assert api.get("/contacts", headers=bearer(wrong)).status_code == 401
    # a third issuer is refused by name
    stranger = old_idp.mint(issuer="https://retired.example", scope=["contacts"])
    refused = api.get("/contacts", headers=bearer(stranger))
    assert refused.status_code == 401 and "retired.example" in refused.get_json()["error_description"]


def test_migration_mode_from_the_environment(monkeypatch, issuer, old_idp, db_path):
    monkeypatch.setenv("CONTACTS_API_ISSUER", issuer.issuer)
    monkeypatch.setenv("CONTACTS_API_LEGACY_ISSUER", old_idp.issuer)
    monkeypatch.setenv("CONTACTS_API_LEGACY_AUDIENCE", "urn:old-contacts")
    app = create_app({"CONTACTS_DB_PATH": db_path})
    members = app.extensions["oidc_guard"].validators
    assert [(v.issuer, v.audiences) for v in members] == [
        (issuer.issuer, ("api://contacts",)), (old_idp.issuer, ("urn:old-contacts",))]
    api = app.test_client()
    token = old_idp.mint(audience="urn:old-contacts", scope=["contacts"])
    assert api.get("/contacts", headers=bearer(token)).status_code == 200


def test_migration_mode_handoff_checks_the_new_providers_id_token(make_api, issuer, old_idp):
    api = make_api(LEGACY_ISSUER=old_idp.issuer)
    access = issuer.mint(scope="openid contacts", subject="alice")
    id_token = issuer.mint_id_token("spa", nonce="n-1", access_token=access, subject="alice")
    response = handoff(api, access, id_token, "n-1")
    assert response.status_code == 200 and response.get_json()["issuer"] == issuer.issuer


def test_wte_worker_reference_flag_against_the_dev_provider(tmp_path, capsys):
    import demo
    import wte_worker

    with demo.Stack(ports={"provider": 0, "api": 0, "spa": 0}, db_path=str(tmp_path / "c.sqlite3")) as stack:
        assert wte_worker.main(["--issuer", stack.issuer.issuer, "--api", stack.api_url, "--reference"]) == 0
        out = capsys.readouterr().out
        assert "reference token: opaque" in out and "wte-worker-ref" in out
        assert stack.issuer.fetch_counts["introspection"] >= 1
        # a client with JWTs is not what --reference asks for
        assert wte_worker.main(["--issuer", stack.issuer.issuer, "--api", stack.api_url, "--reference",
                                "--client-id", "wte-worker"]) == 1


# --- step-up (RFC 9470) and the resource metadata (RFC 9728) ---------------------


def test_deleting_a_contact_needs_a_level_2_sign_in(api, issuer):
    plain = issuer.mint(claims={"acr": "urn:oidc-guard:loa:1"})
    strong = issuer.mint(claims={"acr": "urn:oidc-guard:loa:2"})
    import_emails(api, plain, ["ann@example.com", "bob@example.org"])
    r = api.delete("/contacts/ann@example.com", headers=bearer(plain, Origin=SPA_ORIGIN))
    assert r.status_code == 401 and r.json["error"] == "insufficient_user_authentication"
    assert 'acr_values="urn:oidc-guard:loa:2"' in r.headers["WWW-Authenticate"]
    assert r.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN  # the SPA can read the challenge
    r = api.delete("/contacts/ANN@example.com", headers=bearer(strong))
    assert r.status_code == 200 and r.json == {"deleted": "ANN@example.com", "acr": "urn:oidc-guard:loa:2"}
    assert [c["email"] for c in api.get("/contacts", headers=bearer(strong)).json["contacts"]] == ["bob@example.org"]
    assert api.delete("/contacts/ann@example.com", headers=bearer(strong)).status_code == 404
    preflight = api.options("/contacts/x@example.com", headers={"Origin": SPA_ORIGIN,
                                                                "Access-Control-Request-Method": "DELETE"})
    assert "DELETE" in preflight.headers["Access-Control-Allow-Methods"]


def test_with_a_resource_the_metadata_is_readable_from_any_origin(make_api, issuer):
    api = make_api(OIDC_GUARD_RESOURCE="http://127.0.0.1:5001")
    r = api.get("/.well-known/oauth-protected-resource", headers={"Origin": "https://mcp-client.example"})
    assert r.status_code == 200 and r.json["resource"] == "http://127.0.0.1:5001"
    assert r.json["authorization_servers"] == [issuer.issuer]
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    r = api.get("/contacts", headers={"Origin": SPA_ORIGIN})
    assert r.status_code == 401 and r.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN
    assert 'resource_metadata="http://127.0.0.1:5001/.well-known/oauth-protected-resource"' in \
        r.headers["WWW-Authenticate"]
