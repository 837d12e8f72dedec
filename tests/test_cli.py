"""The ``oidc-guard`` command line, run as users run it: the installed
console script in a subprocess, against a LocalIssuer on loopback.  Every
exit code of every command (0, 1, 2, 3 as docs/cli.md, "In scripts",
documents them), ``--json`` and ``-`` for standard input; the Flask commands
through the real ``flask --app`` script.  No output may contain a whole
token (nor its signature) or a secret."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Dict, List, Optional
from urllib.parse import parse_qs

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from oidc_guard import TokenValidator
from oidc_guard.cli import describe_time, relative

BIN = Path(sys.executable).parent
SCRIPT = BIN / "oidc-guard"
FLASK = BIN / "flask"


def run(*args: str, stdin: str = "", env: Optional[Dict[str, str]] = None, cwd: Optional[str] = None,
        command: Optional[List[str]] = None) -> subprocess.CompletedProcess:
    if not SCRIPT.exists():
        pytest.fail(f"{SCRIPT} is missing: reinstall the project (pip install -e .) to get the console script")
    full_env = dict(os.environ)
    for name in ("OIDC_GUARD_INTROSPECTION_CLIENT_ID", "OIDC_GUARD_INTROSPECTION_CLIENT_SECRET"):
        full_env.pop(name, None)
    full_env.update(env or {})
    return subprocess.run(command or [str(SCRIPT), *args], input=stdin, capture_output=True, text=True,
                          timeout=60, env=full_env, cwd=cwd)


def no_token_in(result: subprocess.CompletedProcess, token: str) -> None:
    text = result.stdout + result.stderr
    assert token not in text
    assert token.split(".")[-1] not in text  # not even the signature


def b64(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# --- discover ---------------------------------------------------------------------------


def test_discover_prints_metadata_and_keys(make_issuer):
    iss = make_issuer(algs=("RS256", "ES256"))
    result = run("discover", iss.issuer)
    assert result.returncode == 0, result.stdout + result.stderr
    for kid in iss.kids:
        assert kid in result.stdout
    assert "RSA" in result.stdout and "2048" in result.stdout and "EC" in result.stdout
    assert iss.jwks_uri in result.stdout
    assert "start-up check: ok" in result.stdout
    assert "max-age=3600" in result.stdout


def test_discover_json_is_one_object(issuer):
    result = run("discover", issuer.issuer, "--json")
    assert result.returncode == 0
    doc = json.loads(result.stdout)
    assert doc["usable"] is True and doc["library_check"] == {"checked": True, "ok": True}
    assert [(k["kid"], k["kty"], k["size"]) for k in doc["keys"]] == [(issuer.kids[0], "RSA", 2048)]
    assert doc["metadata"]["jwks_uri"] == issuer.jwks_uri
    assert doc["jwks_cache_control"] == "max-age=3600"


def test_discover_flags_what_a_reviewer_would(issuer):
    good = issuer.public_jwk(issuer.kids[0])
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key().public_numbers()
    issuer.extra_jwks = [
        {"kty": "RSA", "kid": "weak-1024", "alg": "RS256", "use": "sig", "n": b64(weak.n), "e": b64(weak.e)},
        {k: v for k, v in good.items() if k != "kid"},
        dict(good, kid="encryption-key", use="enc"),
    ]
    issuer.jwks_max_age = None  # no Cache-Control
    from oidc_guard.testing import OMIT

    # the dev provider names an introspection endpoint; this provider does not
    issuer.discovery_overrides = {"userinfo_endpoint": "http://idp.example.com/userinfo",
                                  "introspection_endpoint": OMIT}
    result = run("discover", issuer.issuer, "--json")
    assert result.returncode == 0, result.stdout  # warnings only: the good key still works
    doc = json.loads(result.stdout)
    text = "\n".join(f["message"] for f in doc["flags"])
    assert "RSA 1024 bits, under 2048" in text
    assert "key 2 (kid None) has no kid" in text
    assert "use: enc" in text and "encryption-key" in text
    assert "no Cache-Control" in text
    assert "userinfo_endpoint is plain http" in text
    assert "no introspection_endpoint" in text
    sizes = {k["kid"]: k["size"] for k in doc["keys"]}
    assert sizes["weak-1024"] == 1024
    assert {k["kid"]: k["usable"] for k in doc["keys"]}["encryption-key"] is False
    # the same flags in the text output
    plain = run("discover", issuer.issuer)
    assert "WARNING: key 1 (kid 'weak-1024') is RSA 1024 bits" in plain.stdout


def test_discover_published_private_key_is_unusable_exit_3(issuer):
    issuer.extra_jwks = [{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}]
    result = run("discover", issuer.issuer)
    assert result.returncode == 3
    assert "symmetric (oct) key published" in result.stdout
    assert "c2VjcmV0" not in result.stdout  # the leaked secret is not repeated


def test_discover_issuer_mismatch_exit_3(issuer):
    issuer.discovery_overrides = {"issuer": issuer.issuer + "/"}
    result = run("discover", issuer.issuer)
    assert result.returncode == 3
    assert f"names issuer '{issuer.issuer}/'" in result.stdout and "UNUSABLE" in result.stdout


def test_discover_provider_down_exit_3(issuer):
    url = issuer.issuer
    issuer.stop()
    result = run("discover", url, "--json")
    assert result.returncode == 3
    doc = json.loads(result.stdout)
    assert doc["usable"] is False and "discovery unusable" in doc["flags"][0]["message"]


def test_discover_jwks_failing_exit_3(issuer):
    issuer.set_fault("jwks", status=500)
    result = run("discover", issuer.issuer)
    assert result.returncode == 3 and "JWKS unusable" in result.stdout and "HTTP 500" in result.stdout


def test_discover_plain_http_jwks_uri_is_not_fetched_exit_3(issuer):
    issuer.discovery_overrides = {"jwks_uri": "http://idp.example.com/jwks"}
    result = run("discover", issuer.issuer)
    assert result.returncode == 3
    assert "jwks_uri is plain http" in result.stdout
    assert issuer.fetch_counts.get("jwks", 0) == 0


def test_discover_missing_introspection_endpoint_when_needed_exit_3(issuer):
    from oidc_guard.testing import OMIT

    issuer.discovery_overrides["introspection_endpoint"] = OMIT  # the dev provider has one
    assert run("discover", issuer.issuer).returncode == 0
    result = run("discover", issuer.issuer, "--introspection")
    assert result.returncode == 3 and "no introspection_endpoint" in result.stdout
    with_env = run("discover", issuer.issuer, env={"OIDC_GUARD_INTROSPECTION_CLIENT_ID": "contacts-api"})
    assert with_env.returncode == 3


@pytest.mark.parametrize("args", [("discover",), ("discover", "idp.example.com"),
                                  ("discover", "ftp://idp.example.com"), ("frobnicate",), ()])
def test_discover_usage_errors_exit_2(args):
    result = run(*args)
    assert result.returncode == 2
    assert "usage:" in result.stderr


# --- validate ---------------------------------------------------------------------------


def validate(iss, token: str, *extra: str, stdin: str = "", env=None) -> subprocess.CompletedProcess:
    result = run("validate", token, "--issuer", iss.issuer, "--audience", "api://contacts", *extra,
                 stdin=stdin, env=env)
    if token != "-":
        no_token_in(result, token)
    return result


def test_validate_valid_token_exit_0(issuer):
    token = issuer.mint(subject="bob", scope="contacts wte")
    result = validate(issuer, token, "--scope", "contacts", "--scope", "wte")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("VALID")
    assert "subject:    bob" in result.stdout and "contacts wte" in result.stdout
    assert "expires in 60 min" in result.stdout


def test_validate_reads_standard_input_and_json(issuer):
    token = issuer.mint(scope="contacts")
    result = validate(issuer, "-", "--json", stdin="Bearer " + token + "\n")
    assert result.returncode == 0
    no_token_in(result, token)
    doc = json.loads(result.stdout)
    assert doc["valid"] is True and doc["subject"] == "alice" and doc["scopes"] == ["contacts"]
    assert doc["claims"]["iss"] == issuer.issuer and doc["missing_scopes"] == []


def test_validate_missing_scope_exit_1(issuer):
    token = issuer.mint(scope="contacts")
    result = validate(issuer, token, "--scope", "admin", "--json")
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    assert doc["valid"] is False and doc["missing_scopes"] == ["admin"] and doc["signature_verified"] is True
    assert "INSUFFICIENT SCOPE" in validate(issuer, token, "--scope", "admin").stdout


@pytest.mark.parametrize("case, words", [
    ("expired", "expired"),
    ("audience", "audience"),
    ("signature", "signature"),
    ("issuer", "issuer"),
    ("garbage", "segment"),
    ("opaque", "an opaque (reference) token"),
])
def test_validate_invalid_token_exit_1(issuer, make_issuer, case, words):
    if case == "expired":
        token = issuer.mint(expires_in=-3600)
    elif case == "audience":
        token = issuer.mint(audience="api://other")
    elif case == "signature":
        token = issuer.mint()[:-6] + "AAAAAA"
    elif case == "issuer":
        token = make_issuer().mint()
    elif case == "garbage":
        token = "not.a-token"
    else:  # no introspection credentials: said plainly, not "1 segment(s); a JWS has 3"
        token = "not-a-token"
    result = validate(issuer, token)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith("INVALID (invalid_token)") and words in result.stdout.lower()


def test_validate_says_a_bound_token_needs_its_proof(issuer):
    bound = issuer.mint(claims={"cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}})
    result = validate(issuer, bound)
    assert result.returncode == 0
    assert "note:       DPoP-bound (cnf.jkt, RFC 9449)" in result.stdout
    doc = json.loads(validate(issuer, bound, "--json").stdout)
    assert doc["binding"].startswith("DPoP-bound")
    assert json.loads(validate(issuer, issuer.mint(), "--json").stdout)["binding"] is None


@pytest.mark.parametrize("cnf, note", [
    ({"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}, "certificate-bound (cnf x5t#S256, RFC 8705)"),
    ("not-an-object", "cnf is not a JSON object (RFC 7800 section 3.1): the middleware refuses this token"),
    ({"jkt": None}, None),  # absent for the middleware too: no proof is asked for
])
def test_validate_binding_note_is_the_middlewares_reading(issuer, cnf, note):
    doc = json.loads(validate(issuer, issuer.mint(claims={"cnf": cnf}), "--json").stdout)
    assert doc["binding"] == note if note is None else doc["binding"].startswith(note)


def test_inspect_notes_the_binding_as_the_middleware_reads_it(issuer):
    jkt, x5t = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I", "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"
    both = run("inspect", issuer.mint(claims={"cnf": {"jkt": jkt, "x5t#S256": x5t}})).stdout
    assert "cnf.jkt: a DPoP-bound token" in both and "cnf x5t#S256: a certificate-bound token" in both
    odd = run("inspect", issuer.mint(claims={"cnf": ["jkt"]})).stdout
    assert "cnf is not a JSON object: oidc_guard refuses this token" in odd and "DPoP-bound" not in odd
    null = run("inspect", issuer.mint(claims={"cnf": {"jkt": None}})).stdout
    assert "DPoP-bound" not in null and "refuses" not in null


def test_validate_id_token(issuer):
    id_token = issuer.mint_id_token("spa", nonce="n-1")
    ok = run("validate", id_token, "--issuer", issuer.issuer, "--id-token", "--client-id", "spa",
             "--nonce", "n-1", "--no-verify-audience")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = run("validate", id_token, "--issuer", issuer.issuer, "--id-token", "--client-id", "spa",
              "--nonce", "other", "--no-verify-audience")
    assert bad.returncode == 1 and "nonce" in bad.stdout


def test_validate_library_options_are_applied(issuer):
    token = issuer.mint(expires_in=-30)  # expired 30 s ago: inside the default 60 s leeway
    assert validate(issuer, token).returncode == 0
    assert validate(issuer, token, "--leeway", "0").returncode == 1
    es = validate(issuer, issuer.mint(), "--algorithm", "ES256")
    assert es.returncode == 1 and "RS256" in es.stdout


def test_validate_provider_unusable_exit_3(issuer):
    token = issuer.mint()
    issuer.set_fault("jwks", status=503)
    result = validate(issuer, token, "--json")
    assert result.returncode == 3
    doc = json.loads(result.stdout)
    assert doc["error"] == "temporarily_unavailable" and doc["valid"] is False
    issuer.clear_faults()
    issuer.stop()
    down = validate(issuer, token)
    assert down.returncode == 3 and down.stdout.startswith("PROVIDER UNUSABLE (not a verdict on the token)")
    assert down.stderr == ""  # the library's warning is not repeated without -v


@pytest.mark.parametrize("extra", [
    ("--algorithm", "HS256"),  # never allowed: ConfigurationError
    ("--leeway", "soon"),
])
def test_validate_usage_errors_exit_2(issuer, extra):
    result = validate(issuer, issuer.mint(), *extra)
    assert result.returncode == 2 and "error" in result.stderr


def test_validate_needs_issuer_audience_and_a_token(issuer):
    token = issuer.mint()
    assert run("validate", token, "--audience", "api://contacts").returncode == 2
    no_aud = run("validate", token, "--issuer", issuer.issuer)
    assert no_aud.returncode == 2 and "--audience is required" in no_aud.stderr
    empty = run("validate", "-", "--issuer", issuer.issuer, "--audience", "a", stdin="")
    assert empty.returncode == 2 and "empty" in empty.stderr
    assert run("validate", "--issuer", issuer.issuer, "--audience", "a").returncode == 2


def test_validate_help_says_credentials_come_from_the_environment_only():
    result = run("validate", "--help")
    assert result.returncode == 0
    help_text = " ".join(result.stdout.split())
    assert "OIDC_GUARD_INTROSPECTION_CLIENT_ID" in help_text and "OIDC_GUARD_INTROSPECTION_CLIENT_SECRET" in help_text
    assert "never from the command line" in help_text
    assert "example:" in help_text
    assert "--client-secret" not in help_text and "--secret" not in help_text


def test_introspection_credentials_from_the_environment(issuer):
    env = {"OIDC_GUARD_INTROSPECTION_CLIENT_ID": "contacts-api",
           "OIDC_GUARD_INTROSPECTION_CLIENT_SECRET": "s3cr3t-value"}
    result = validate(issuer, issuer.mint(), env=env)
    assert "s3cr3t-value" not in result.stdout + result.stderr
    if "introspection_client_id" in TokenValidator.__init__.__code__.co_varnames:
        assert result.returncode == 0  # a JWT is still validated locally in mode "both"
    else:  # this build cannot introspect: said plainly, as a usage error
        assert result.returncode == 2 and "cannot introspect" in result.stderr
    half = validate(issuer, issuer.mint(), env={"OIDC_GUARD_INTROSPECTION_CLIENT_ID": "contacts-api"})
    assert half.returncode == 2


def test_validate_opaque_token_by_introspection(issuer, loopback):
    if "introspection_client_id" not in TokenValidator.__init__.__code__.co_varnames:
        pytest.skip("this oidc_guard has no introspection")
    seen = []
    opaque = "2YotnFZFEjr1zCsicMWpAA-reference"

    def introspect(handler):
        form = parse_qs(handler.body.decode("ascii"))
        seen.append((form.get("token", [""])[0], handler.headers.get("Authorization")))
        doc = ({"active": True, "iss": issuer.issuer, "aud": "api://contacts", "scope": "contacts",
                "sub": "carol", "exp": int(time.time()) + 600}
               if form.get("token") == [opaque] else {"active": False})
        body = json.dumps(doc).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    loopback.routes["/introspect"] = introspect
    issuer.discovery_overrides["introspection_endpoint"] = loopback.url("/introspect")
    env = {"OIDC_GUARD_INTROSPECTION_CLIENT_ID": "contacts-api",
           "OIDC_GUARD_INTROSPECTION_CLIENT_SECRET": "s3cr3t-value"}
    ok = validate(issuer, opaque, "--scope", "contacts", "--json", env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["subject"] == "carol"
    assert seen and seen[0][0] == opaque and seen[0][1].startswith("Basic ")
    revoked = validate(issuer, "revoked-reference-token", env=env)
    assert revoked.returncode == 1 and revoked.stdout.startswith("INVALID")
    for result in (ok, revoked):
        assert "s3cr3t-value" not in result.stdout + result.stderr
    # without credentials an opaque token cannot be checked at all
    local = validate(issuer, opaque)
    assert local.returncode == 1
    assert len(seen) == 2
    # the endpoint failing is the provider's problem: 3, not 1
    loopback.routes["/introspect"] = (500, {"Content-Type": "application/json"}, b"{}")
    down = validate(issuer, opaque, env=env)
    assert down.returncode == 3, down.stdout


def test_every_command_has_help_with_an_example():
    for command in ("discover", "validate", "inspect"):
        result = run(command, "--help")
        assert result.returncode == 0 and "example:" in result.stdout and "exit:" in result.stdout
    top = run("--help")
    assert top.returncode == 0 and "examples:" in top.stdout and "exit codes" in top.stdout


def test_python_dash_m(issuer):
    result = run(command=[sys.executable, "-m", "oidc_guard", "discover", issuer.issuer, "--json"])
    assert result.returncode == 0 and json.loads(result.stdout)["usable"] is True


# --- inspect ------------------------------------------------------------------------------


def test_inspect_labels_everything_unverified(issuer):
    token = issuer.mint(expires_in=-3 * 3600 - 300, header={"kid": "k-1"}, kid=issuer.kids[0])
    result = run("inspect", token)
    assert result.returncode == 0
    no_token_in(result, token)
    out = result.stdout
    assert out.startswith("UNVERIFIED")
    assert "UNVERIFIED header" in out and "UNVERIFIED payload" in out and "UNVERIFIED times" in out
    assert "(expired 3 h ago)" in out
    assert f"the JWKS of issuer {issuer.issuer}" in out and "kid 'k-1'" in out
    assert "valid" not in out.lower().replace("validate", "").replace("validity", "").replace("valid since", "")


def test_inspect_json_and_stdin(issuer):
    token = issuer.mint(expires_in=1800)
    result = run("inspect", "-", "--json", stdin=token)
    assert result.returncode == 0
    doc = json.loads(result.stdout)
    assert doc["verified"] is False and doc["jws"] is True and "UNVERIFIED" in doc["warning"]
    assert doc["payload"]["sub"] == "alice" and doc["header"]["alg"] == "RS256"
    exp = [t for t in doc["times"] if t["claim"] == "exp"][0]
    assert exp["relative"] == "expires in 30 min" and exp["iso"].endswith("Z")
    assert doc["keys_needed"]["issuer"] == issuer.issuer
    no_token_in(result, token)


@pytest.mark.parametrize("token, words", [
    ("2YotnFZFEjr1zCsicMWpAA", "opaque (reference) token"),
    ("a.b.c.d.e", "encrypted JWT (JWE)"),
    ("e30.%%%.sig", "not base64url"),
    ("bm90IGpzb24.e30.c2ln", "header is not JSON"),
])
def test_inspect_not_a_jws_exit_1(token, words):
    result = run("inspect", token)
    assert result.returncode == 1 and words in result.stdout
    as_json = json.loads(run("inspect", token, "--json").stdout)
    assert as_json["jws"] is False and as_json["verified"] is False


def test_inspect_usage_errors_exit_2():
    assert run("inspect").returncode == 2
    empty = run("inspect", "-", stdin="   \n")
    assert empty.returncode == 2 and "empty" in empty.stderr
    assert run("inspect", "-", stdin="a.b.c d.e.f").returncode == 2


def test_relative_times():
    assert relative(-3 * 3600 - 600) == "3 h ago"
    assert relative(720) == "in 12 min"
    assert relative(-30) == "30 s ago"
    assert relative(5 * 86400) == "in 5 d"
    described = describe_time("exp", 0, 3 * 86400)
    assert described == {"claim": "exp", "value": 0, "iso": "1970-01-01T00:00:00Z", "relative": "expired 3 d ago"}
    assert describe_time("exp", "soon", 0) is None and describe_time("exp", True, 0) is None


# --- flask oidc-guard ...  ------------------------------------------------------------------------


@pytest.fixture
def flask_app_dir(tmp_path):
    (tmp_path / "guarded.py").write_text(textwrap.dedent("""
        import os
        from flask import Flask
        from oidc_guard.flask import OIDCGuard

        app = Flask(__name__)
        app.config["OIDC_GUARD_ISSUER"] = os.environ["TEST_ISSUER"]
        app.config["OIDC_GUARD_AUDIENCE"] = "api://contacts"
        if os.environ.get("TEST_ALGORITHMS"):
            app.config["OIDC_GUARD_ALGORITHMS"] = os.environ["TEST_ALGORITHMS"]
        OIDCGuard(app)
    """), encoding="utf-8")
    return str(tmp_path)


def flask_cli(directory: str, iss_url: str, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess:
    return run(command=[str(FLASK), "--app", "guarded", "oidc-guard", *args], cwd=directory, stdin=stdin,
               env={"TEST_ISSUER": iss_url, **env})


def test_flask_check(flask_app_dir, issuer):
    ok = flask_cli(flask_app_dir, issuer.issuer, "check")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith(f"ok: {issuer.issuer}") and ok.stdout.rstrip().endswith(", 1 usable key")
    config = flask_cli(flask_app_dir, issuer.issuer, "check", "--json", TEST_ALGORITHMS="ES256")
    assert config.returncode == 1
    assert json.loads(config.stdout)["result"] == "configuration error"
    issuer.stop()
    down = flask_cli(flask_app_dir, issuer.issuer, "check")
    assert down.returncode == 3 and down.stdout.startswith("PROVIDER UNUSABLE")


def test_flask_validate(flask_app_dir, issuer):
    token = issuer.mint(scope="contacts")
    ok = flask_cli(flask_app_dir, issuer.issuer, "validate", token, "--scope", "contacts")
    assert ok.returncode == 0 and ok.stdout.startswith("VALID")
    no_token_in(ok, token)
    missing = flask_cli(flask_app_dir, issuer.issuer, "validate", "-", "--scope", "admin", "--json", stdin=token)
    assert missing.returncode == 1 and json.loads(missing.stdout)["missing_scopes"] == ["admin"]
    expired = flask_cli(flask_app_dir, issuer.issuer, "validate", issuer.mint(expires_in=-3600))
    assert expired.returncode == 1 and "expired" in expired.stdout
    usage = flask_cli(flask_app_dir, issuer.issuer, "validate", "-", stdin="")
    assert usage.returncode == 2
    issuer.stop()
    down = flask_cli(flask_app_dir, issuer.issuer, "validate", token)
    assert down.returncode == 3


def test_every_option_the_docs_name_exists():
    """docs/cli.md and the parser agree: each --option the page names is one
    of the commands' real options (and each real option is documented)."""
    import argparse
    import re as _re

    from oidc_guard.cli import build_parser

    parser = build_parser()
    real = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                for sub_action in sub._actions:
                    real.update(o for o in sub_action.option_strings if o.startswith("--"))
    real.update(o for a in parser._actions for o in a.option_strings if o.startswith("--"))
    page = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text(encoding="utf-8")
    named = set(_re.findall(r"(?<![\w-])--[a-z][a-z-]+", page))
    flask_only = {"--app"}  # `flask --app ...`
    assert named - real - flask_only == set()
    assert real - named - {"--help", "--version"} == set(), "options missing from docs/cli.md"


# --- terminal escapes (every text output is terminal-safe) ---------------------------------

# What a terminal acts on: C0 (ESC, CR, BS...), DEL, C1 (U+009B is a one-character CSI),
# bidirectional overrides. Newlines are the program's own.
_RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_FORGED = "\x1b[2J\x1b[H\r\x1b[32mVALID: signature and claims verified\x1b[0m\x9b2J\u202e"


def assert_terminal_safe(result: subprocess.CompletedProcess) -> None:
    for name, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        found = _RAW_CONTROL.search(text)
        assert found is None, f"raw {found.group()!r} in {name}: {text!r}"
    # the forged verdict never starts a line of its own: only the real one, first, can
    assert not any(line.startswith("VALID") for line in result.stdout.splitlines()[1:])


def test_inspect_escapes_everything_the_token_says(issuer):
    token = issuer.mint(claims={"iss": "https://idp.example.com" + _FORGED, "sub": _FORGED,
                                "exp": "\x1b[31msoon", "name": "\r" + _FORGED},
                        header={"kid": "k\x1b]0;owned\x07", "typ": "JWT\x9b1m", "alg": "RS256"})
    result = run("inspect", token)
    assert result.returncode == 0, result.stderr
    assert_terminal_safe(result)
    # shown, escaped, where the raw value was printed before
    assert "Keys needed to verify it: the JWKS of issuer https://idp.example.com\\x1b[2J\\x1b[H\\x0d" in result.stdout
    assert "To verify: oidc-guard validate - --issuer https://idp.example.com\\x1b[2J" in result.stdout
    assert "\\x9b" in result.stdout and "\\u202e" in result.stdout
    as_json = run("inspect", token, "--json")  # escaped by JSON already; the values intact
    assert_terminal_safe(as_json)
    assert json.loads(as_json.stdout)["payload"]["sub"] == _FORGED


def test_validate_escapes_the_claims_it_prints(issuer):
    token = issuer.mint(subject="alice" + _FORGED, scope="contacts wte",
                        claims={"client_id": "spa\r" + _FORGED, "name": _FORGED})
    result = validate(issuer, token, "--scope", "contacts")
    assert result.returncode == 0, result.stdout + result.stderr
    assert_terminal_safe(result)
    assert result.stdout.startswith("VALID: signature and claims verified against the issuer's keys\n")
    assert "  subject:    alice\\x1b[2J\\x1b[H\\x0d\\x1b[32mVALID" in result.stdout
    assert "  client_id:  spa\\x0d\\x1b[2J" in result.stdout
    missing = validate(issuer, token, "--scope", "admin")
    assert missing.stdout.startswith("INSUFFICIENT SCOPE") and missing.returncode == 1
    assert_terminal_safe(missing)
    # an invalid token's reason quotes the token too
    refused = validate(issuer, issuer.mint(audience="api://other" + _FORGED))
    assert refused.returncode == 1 and refused.stdout.startswith("INVALID")
    assert_terminal_safe(refused)


def test_discover_escapes_the_providers_metadata_and_kids(issuer):
    good = issuer.public_jwk(issuer.kids[0])
    issuer.extra_jwks = [dict(good, kid="kid" + _FORGED), dict(good, kid="enc\x1b[2J", use="enc\x9b")]
    issuer.discovery_overrides = {"token_endpoint": "https://idp.example.com/token" + _FORGED,
                                  "scopes_supported": ["openid", "contacts\r" + _FORGED],
                                  "id_token_signing_alg_values_supported": ["RS256", "none\x1b[2J"]}
    result = run("discover", issuer.issuer)
    assert_terminal_safe(result)
    assert "token_endpoint: https://idp.example.com/token\\x1b[2J" in result.stdout
    assert "kid\\x1b[2J\\x1b[H\\x0d" in result.stdout and "enc\\x9b" in result.stdout
    # the JSON output carries the real values, JSON-escaped
    as_json = run("discover", issuer.issuer, "--json")
    assert_terminal_safe(as_json)
    assert "kid" + _FORGED in [k["kid"] for k in json.loads(as_json.stdout)["keys"]]
    # a mismatching issuer (quoted in the error flags and the start-up check)
    issuer.discovery_overrides = {"issuer": issuer.issuer + _FORGED}
    mismatch = run("discover", issuer.issuer)
    assert mismatch.returncode == 3
    assert_terminal_safe(mismatch)


def test_the_flask_commands_escape_too(flask_app_dir, issuer):
    token = issuer.mint(subject=_FORGED, scope="contacts")
    result = flask_cli(flask_app_dir, issuer.issuer, "validate", token)
    assert result.returncode == 0 and result.stdout.startswith("VALID")
    assert_terminal_safe(result)
    issuer.discovery_overrides = {"issuer": _FORGED}
    check = flask_cli(flask_app_dir, issuer.issuer, "check")
    assert check.returncode == 1
    assert_terminal_safe(check)


def test_terminal_safe_escapes_c0_del_c1_and_keeps_text():
    from oidc_guard.cli import terminal_safe

    assert terminal_safe("a\x1b[2Jb\rc\x7fd\x9be\u202ef\x00\t\n") == "a\\x1b[2Jb\\x0dc\\x7fd\\x9be\\u202ef\\x00\\x09\\x0a"
    assert terminal_safe("line\nnext\x1b", keep_newlines=True) == "line\nnext\\x1b"
    assert terminal_safe("Zoë ✓ 日本 \x80\xa0") == "Zoë ✓ 日本 \\x80\xa0"  # printable text is kept
    assert terminal_safe("\ud800") == "\\ud800"  # a lone surrogate could not even be written
    assert terminal_safe(None) == "None"
    every = "".join(map(chr, range(0x00, 0xA0)))
    assert _RAW_CONTROL.search(terminal_safe(every)) is None and "\n" not in terminal_safe(every)


# --- inspect: nesting ------------------------------------------------------------------------


def _unsigned(header: object, payload_json: str) -> str:
    def seg(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{seg(json.dumps(header).encode())}.{seg(payload_json.encode())}.{seg(b'signature')}"


@pytest.mark.parametrize("depth", [1000, 990, 5000])
def test_inspect_deeply_nested_payload_is_one_line_exit_1(depth):
    token = _unsigned({"alg": "RS256"}, "[" * depth + "]" * depth)
    result = run("inspect", token)
    assert "Traceback" not in result.stderr and "RecursionError" not in result.stderr + result.stdout
    if depth == 990 and result.returncode == 0:  # within what this Python's json follows: shown
        assert result.stdout.startswith("UNVERIFIED")
        return
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.count("\n") == 1 and "too deeply" in result.stdout, result.stdout
    as_json = run("inspect", token, "--json")
    assert as_json.returncode == 1 and "too deeply" in json.loads(as_json.stdout)["reason"]
    nested_object = _unsigned({"alg": "RS256"}, '{"a":' * depth + "1" + "}" * depth)
    assert run("inspect", nested_object).returncode == 1
    header_too = _unsigned({"alg": "RS256"}, "{}").split(".")
    header_too[0] = base64.urlsafe_b64encode(("[" * depth + "]" * depth).encode()).rstrip(b"=").decode()
    deep_header = run("inspect", ".".join(header_too))
    assert deep_header.returncode == 1 and "Traceback" not in deep_header.stderr
    # validate says the same kind of thing (the library refuses it)
    assert run("validate", token, "--issuer", "http://127.0.0.1:9", "--audience", "a").returncode in (1, 3)


def test_inspect_depth_500_still_decodes():
    token = _unsigned({"alg": "RS256"}, '{"a":' + "[" * 500 + "]" * 500 + "}")
    result = run("inspect", token)
    assert result.returncode == 0 and result.stdout.startswith("UNVERIFIED")


# --- validate: ID Tokens, hints, wording, header lines -------------------------------------


def test_validate_id_token_takes_client_id_as_its_audience(issuer):
    id_token = issuer.mint_id_token("spa", nonce="n-1")
    ok = run("validate", id_token, "--issuer", issuer.issuer, "--id-token", "--client-id", "spa", "--nonce", "n-1")
    assert ok.returncode == 0, ok.stdout + ok.stderr  # no --audience demanded
    assert ok.stdout.startswith("VALID") and "audiences:  spa" in ok.stdout
    same = run("validate", id_token, "--issuer", issuer.issuer, "--id-token", "--client-id", "spa",
               "--audience", "spa")
    assert same.returncode == 0
    other_client = run("validate", id_token, "--issuer", issuer.issuer, "--id-token", "--client-id", "web")
    assert other_client.returncode == 1 and "does not contain client_id 'web'" in other_client.stdout
    # an --audience that is not the client would be silently ignored: refused instead
    api = run("validate", id_token, "--issuer", issuer.issuer, "--id-token", "--client-id", "spa",
              "--audience", "api://contacts")
    assert api.returncode == 2 and "--client-id" in api.stderr
    stray = run("validate", issuer.mint(), "--issuer", issuer.issuer, "--audience", "api://contacts",
                "--client-id", "spa")
    assert stray.returncode == 2 and "only with --id-token" in stray.stderr


def test_validate_provider_down_adds_the_unverified_exp(issuer):
    old = issuer.mint(expires_in=-4101 * 86400)
    fresh = issuer.mint(expires_in=600)
    recent = issuer.mint(expires_in=-3 * 3600)
    issuer.stop()
    down = validate(issuer, old)
    assert down.returncode == 3
    assert down.stdout.startswith("PROVIDER UNUSABLE (not a verdict on the token)")
    assert "  hint: the token's unverified exp is 4101 days past" in down.stdout
    assert json.loads(validate(issuer, old, "--json").stdout)["hint"].startswith(
        "the token's unverified exp is 4101 days past")
    assert "unverified exp is 3 h past" in validate(issuer, recent).stdout
    not_expired = validate(issuer, fresh)
    assert not_expired.returncode == 3 and "hint" not in not_expired.stdout
    assert "hint" not in json.loads(validate(issuer, fresh, "--json").stdout)


def test_validate_opaque_token_without_credentials_is_named_a_reference_token(issuer):
    result = validate(issuer, "2YotnFZFEjr1zCsicMWpAA")
    assert result.returncode == 1
    assert "an opaque (reference) token" in result.stdout and "segment" not in result.stdout
    assert "OIDC_GUARD_INTROSPECTION_CLIENT_ID" in result.stdout
    doc = json.loads(validate(issuer, "2YotnFZFEjr1zCsicMWpAA", "--json").stdout)
    assert "reference" in doc["hint"] and doc["error"] == "invalid_token"


def test_validate_without_sub_says_none(issuer):
    from oidc_guard.testing import OMIT

    result = validate(issuer, issuer.mint(claims={"sub": OMIT, "client_id": "worker"}))
    assert result.returncode == 0, result.stdout
    assert "  subject:    (none)" in result.stdout and "None" not in result.stdout.split("claims:")[0]
    assert json.loads(validate(issuer, issuer.mint(claims={"sub": OMIT}), "--json").stdout)["subject"] is None


@pytest.mark.parametrize("line", [
    "Authorization: Bearer {t}\r\n",
    "authorization:bearer {t}",
    "AUTHORIZATION:   Bearer   {t}  \n",
    "Bearer {t}",
    "Authorization: DPoP {t}\n",
    "DPoP {t}",
])
def test_a_whole_authorization_header_line_on_stdin(issuer, line):
    token = issuer.mint(scope="contacts")
    result = validate(issuer, "-", stdin=line.format(t=token))
    assert result.returncode == 0, result.stdout + result.stderr
    no_token_in(result, token)
    assert run("inspect", "-", stdin=line.format(t=token)).returncode == 0


@pytest.mark.parametrize("line, words", [
    ("DPoP: {t}", "DPoP proof header"),
    ("Authorization: Basic {t}", "not Bearer or DPoP"),
    ("Authorization: Bearer", "empty"),
    ("Authorization: Bearer {t} {t}", "whitespace"),
])
def test_header_lines_that_carry_no_token_are_usage_errors(issuer, line, words):
    token = issuer.mint()
    result = validate(issuer, "-", stdin=line.format(t=token))
    assert result.returncode == 2 and words in result.stderr, result.stderr
    no_token_in(result, token)


# --- discover: the issuer as typed -----------------------------------------------------------


def test_discover_trailing_slash_gets_the_advice_check_gives(issuer):
    result = run("discover", issuer.issuer + "/")
    assert result.returncode == 3
    assert "remove the trailing slash" in result.stdout
    with pytest.raises(Exception) as check:
        TokenValidator(issuer.issuer + "/", audience="a").check()
    assert "remove the trailing slash" in str(check.value)


@pytest.mark.parametrize("suffix", ["/.well-known/openid-configuration", "/.well-known/openid-configuration/",
                                    "/.well-known"])
def test_discover_given_a_discovery_url_says_so_once(issuer, suffix):
    result = run("discover", issuer.issuer + suffix)
    assert result.returncode == 3
    assert "ISSUER is a discovery URL" in result.stdout
    assert f"oidc-guard discover {issuer.issuer}\n" in result.stdout  # the issuer it meant
    assert "404" not in result.stdout and "discovery unusable" not in result.stdout
    assert result.stdout.count("ERROR:") == 1
    assert issuer.fetch_counts.get("discovery", 0) == 0


# --- discover: introspection settings and the RFC 8414 document --------------------------------


def test_discover_honours_the_introspection_endpoint_setting(issuer):
    from oidc_guard.testing import OMIT

    issuer.discovery_overrides["introspection_endpoint"] = OMIT  # as django-oauth-toolkit's OpenID document
    env = {"OIDC_GUARD_INTROSPECTION_CLIENT_ID": "contacts-api",
           "OIDC_GUARD_INTROSPECTION_ENDPOINT": issuer.introspection_endpoint}
    result = run("discover", issuer.issuer, env=env)
    assert result.returncode == 0, result.stdout  # was: UNUSABLE, exit 3
    assert "given by OIDC_GUARD_INTROSPECTION_ENDPOINT" in result.stdout and "UNUSABLE" not in result.stdout
    # with the secret as well the start-up check runs with introspection, as validate would
    full = dict(env, OIDC_GUARD_INTROSPECTION_CLIENT_SECRET="s3cr3t-value")
    checked = run("discover", issuer.issuer, "--json", env=full)
    assert checked.returncode == 0 and json.loads(checked.stdout)["library_check"]["ok"] is True
    assert json.loads(checked.stdout)["introspection"]["source"] == "OIDC_GUARD_INTROSPECTION_ENDPOINT"
    assert "s3cr3t-value" not in checked.stdout + checked.stderr
    # validate agrees with the same environment
    assert validate(issuer, issuer.mint(), env=full).returncode == 0
    # an unusable explicit endpoint is said
    bad = run("discover", issuer.issuer, env=dict(env, OIDC_GUARD_INTROSPECTION_ENDPOINT="ftp://x/introspect"))
    assert bad.returncode == 3 and "OIDC_GUARD_INTROSPECTION_ENDPOINT" in bad.stdout
    # without the setting: still the error (introspection is configured, no endpoint anywhere)
    assert run("discover", issuer.issuer, env={"OIDC_GUARD_INTROSPECTION_CLIENT_ID": "contacts-api"}).returncode == 3


@pytest.fixture
def rfc8414_provider(issuer, loopback):
    """The loopback server as a provider that names its introspection endpoint
    only in its RFC 8414 document (django-oauth-toolkit), answering for
    ``opaque`` as active."""
    from test_discovery import serve_rfc8414_only

    url = serve_rfc8414_only(loopback, issuer)
    opaque = "mF_9B5f-4_1JqM-reference"

    def introspect(handler):
        form = parse_qs(handler.body.decode("ascii"))
        doc = ({"active": True, "iss": url, "aud": "api://contacts", "scope": "contacts", "sub": "dana",
                "exp": int(time.time()) + 600} if form.get("token") == [opaque] else {"active": False})
        body = json.dumps(doc).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    loopback.routes["/o/introspect/"] = introspect
    return url, opaque


def test_discover_and_validate_find_the_endpoint_in_the_rfc8414_document(rfc8414_provider, loopback):
    url, opaque = rfc8414_provider
    env = {"OIDC_GUARD_INTROSPECTION_CLIENT_ID": "contacts-api",
           "OIDC_GUARD_INTROSPECTION_CLIENT_SECRET": "s3cr3t-value"}
    result = run("discover", url, env=env)
    assert result.returncode == 0, result.stdout
    oauth_url = loopback.base + "/.well-known/oauth-authorization-server"
    assert f"introspection_endpoint: {url}/o/introspect/ (from {oauth_url})" in result.stdout
    assert f"found in the RFC 8414 document {oauth_url}" in result.stdout
    assert "start-up check: ok" in result.stdout
    doc = json.loads(run("discover", url, "--json", env=env).stdout)
    assert doc["introspection"] == {"endpoint": url + "/o/introspect/", "source": oauth_url}
    # the library finds it at request time too
    ok = run("validate", opaque, "--issuer", url, "--audience", "api://contacts", "--json", env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["subject"] == "dana"


def test_discover_without_any_introspection_endpoint(issuer, loopback):
    from test_discovery import serve_rfc8414_only

    url = serve_rfc8414_only(loopback, issuer, rfc8414=None)
    info = run("discover", url)
    assert info.returncode == 0 and "INFO: no introspection_endpoint (nor in the RFC 8414 document" in info.stdout
    needed = run("discover", url, "--introspection")
    assert needed.returncode == 3 and "neither the discovery document nor the RFC 8414 document" in needed.stdout
    other = serve_rfc8414_only(loopback, issuer, path="/t", rfc8414={"issuer": "https://evil.example",
                                                                      "introspection_endpoint": "https://evil.example/i"})
    refused = run("discover", other, "--introspection")
    assert refused.returncode == 3 and "must be identical (RFC 8414 section 3.3)" in refused.stdout
    assert "evil.example/i" not in refused.stdout.split("ERROR")[0]  # never shown as the endpoint


# --- docs/cli.md shows what the commands print ---------------------------------------------------

DOCS_CLI = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
EXAMPLE_ISSUER = "https://idp.example.com"
# The parts of an output that differ from run to run, on both sides alike.
_VARIABLE = [
    (re.compile(r"\b\d+ chars, sha256 [0-9a-f]{16}\b"), "<token>"),
    (re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\b"), "<date>"),
    (re.compile(r"\b((?:rs|es|ps)(?:256|384|512))-[0-9a-f]{12}\b"), r"\1-<kid>"),
    (re.compile(r"\b\d+ s ago\b"), "<n> s ago"),
    (re.compile(r'"(iat|nbf|exp)": \d+'), r'"\1": <time>'),
    (re.compile(r'"jti": "[0-9a-f]+"'), '"jti": <jti>'),
]


def _normalized(text: str) -> str:
    for pattern, placeholder in _VARIABLE:
        text = pattern.sub(placeholder, text)
    return text


def console_samples(page: Path):
    """(command, expected output lines, where) for each ``$`` line of the
    page's ```console blocks."""
    import docs_site

    samples = []
    for block in docs_site.code_blocks(page):
        if block.info != "console":
            continue
        current = None
        for offset, line in enumerate(block.code.splitlines()):
            if line.startswith("$ "):
                current = (line[2:], [], f"{block.where}+{offset}")
                samples.append(current)
            elif current is not None:
                current[1].append(line)
    for _command, lines, _where in samples:
        while lines and not lines[-1].strip():
            lines.pop()
    return samples


def _matches(expected, actual) -> bool:
    """Line by line after _normalized; a line ``...`` stands for any number of lines."""
    pattern = "".join("(?:.*\n)*?" if line.strip() == "..." else re.escape(_normalized(line)) + "\n"
                      for line in expected)
    return re.fullmatch(pattern, _normalized(actual)) is not None


def test_console_sample_matching_is_strict():
    assert _matches(["a", "...", "z"], "a\nb\nc\nz\n") and _matches(["a", "...", "z"], "a\nz\n")
    assert not _matches(["a", "z"], "a\nb\nz\n") and not _matches(["a", "b"], "a\nc\n")
    assert _matches(["token: 690 chars, sha256 86325e076aa74cb5 2026-12-01T09:59:45Z"],
                    "token: 12 chars, sha256 0123456789abcdef 2030-01-01T00:00:00Z\n")


def test_the_documented_console_samples_are_what_the_commands_print(make_issuer, tmp_path):
    """Every ``$`` line of docs/cli.md runs (through bash, as written) against
    a development provider set up as the page describes; its output must be
    the documented one, variable parts aside."""
    samples = console_samples(DOCS_CLI)
    assert len(samples) >= 8, "docs/cli.md should show the commands at work"
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key().public_numbers()
    iss = make_issuer(algs=("RS256", "ES256"), audience="api://contacts")
    iss.extra_jwks = [{"kty": "RSA", "kid": "weak-1024", "alg": "RS256", "use": "sig",
                       "n": b64(weak.n), "e": b64(weak.e)}]
    (tmp_path / "token.txt").write_text(iss.mint(subject="alice", scope="contacts wte",
                                                 claims={"client_id": "spa"}), encoding="utf-8")
    (tmp_path / "contacts_api.py").write_text(textwrap.dedent("""
        import os
        from flask import Flask
        from oidc_guard.flask import OIDCGuard

        app = Flask(__name__)
        app.config["OIDC_GUARD_ISSUER"] = os.environ["DOCS_ISSUER"]
        app.config["OIDC_GUARD_AUDIENCE"] = "api://contacts"
        OIDCGuard(app)
    """), encoding="utf-8")
    env = {"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "DOCS_ISSUER": iss.issuer,
           "TOKEN": iss.mint(subject="alice", scope="contacts"),
           "OLD": iss.mint(subject="alice", scope="contacts", expires_in=-(3 * 3600 + 600))}
    wrong = []
    for command, expected, where in samples:
        assert command.startswith(("oidc-guard ", "flask ")), f"{where}: not a command of this package"
        result = run(command=["bash", "-c", command.replace(EXAMPLE_ISSUER, iss.issuer)], cwd=str(tmp_path),
                     env=env)
        shown = result.stdout.replace(iss.issuer, EXAMPLE_ISSUER)
        if not command.startswith("flask "):  # flask's own log may add a line on stderr
            assert result.stderr == "", f"{where}: {command}\n{result.stderr}"
        if not _matches(expected, shown):
            wrong.append(f"{where}: $ {command}\n--- documented\n" + "\n".join(expected) + "\n--- printed\n" + shown)
    assert not wrong, "docs/cli.md shows output the command does not print:\n\n" + "\n\n".join(wrong)


# --- the package: one module per command, shared helpers once ------------------------------------

CLI_PACKAGE = Path(__file__).resolve().parents[1] / "oidc_guard" / "cli"
# The names oidc_guard.cli offered when it was one module: still importable from it.
_CLI_NAMES = ("main", "console_main", "build_parser", "EXIT_OK", "EXIT_INVALID", "EXIT_USAGE", "EXIT_PROVIDER",
              "UsageError", "TooDeep", "read_token", "decode_unverified", "terminal_safe", "human", "token_label",
              "relative", "iso", "describe_time", "introspection_settings", "claims_summary", "write_validation",
              "cmd_discover", "cmd_validate", "cmd_inspect", "ENV_CLIENT_ID", "ENV_CLIENT_SECRET", "ENV_ENDPOINT",
              "ENV_AUTH_METHOD")


def test_the_cli_is_a_package_with_one_module_per_command_each_under_600_lines():
    import importlib

    import oidc_guard.cli as cli

    modules = sorted(p.name for p in CLI_PACKAGE.glob("*.py"))
    assert {"__init__.py", "discover.py", "validate.py", "inspect.py", "_output.py"} <= set(modules), modules
    package_dir = CLI_PACKAGE.parent
    for path in [*CLI_PACKAGE.glob("*.py"), package_dir / "flask_cli.py", package_dir / "__main__.py"]:
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= 600, f"{path.name}: {lines} lines"
    for name in _CLI_NAMES:
        assert hasattr(cli, name), f"oidc_guard.cli.{name} is gone"
    # each command's function lives in its own module, and the parser dispatches to it
    parser = cli.build_parser()
    for command in ("discover", "validate", "inspect"):
        module = importlib.import_module(f"oidc_guard.cli.{command}")
        func = getattr(module, f"cmd_{command}")
        argv = [command, "x"] + (["--issuer", "https://idp.example.com"] if command == "validate" else [])
        assert parser.parse_args(argv).func is func is getattr(cli, f"cmd_{command}")


def test_the_cli_modules_import_no_private_names_and_form_no_circle():
    """Shared helpers are public names of underscore modules; every module of
    the package imports on its own, first, in a fresh interpreter (a circle
    would leave a name half-defined for one of the orders)."""
    import ast

    sources = [*CLI_PACKAGE.glob("*.py"), CLI_PACKAGE.parent / "flask_cli.py", CLI_PACKAGE.parent / "__main__.py"]
    private = []
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                private += [f"{path.name}: from {'.' * node.level}{node.module or ''} import {alias.name}"
                            for alias in node.names if alias.name.startswith("_") and not alias.name.startswith("__")]
    assert private == []
    names = [f"oidc_guard.cli.{p.stem}" for p in CLI_PACKAGE.glob("*.py") if p.stem != "__init__"]
    for name in [*names, "oidc_guard.flask_cli", "oidc_guard.cli", "oidc_guard.__main__"]:
        done = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"import {name}:\n{done.stderr}"


def test_the_flask_commands_reuse_the_cli_output_helpers():
    """One terminal escaping, one plural: flask_cli has no copy of its own."""
    import oidc_guard.flask_cli as flask_cli
    from oidc_guard.cli import _output

    assert flask_cli.terminal_safe is _output.terminal_safe
    assert flask_cli.plural is _output.plural
    source = (CLI_PACKAGE.parent / "flask_cli.py").read_text(encoding="utf-8")
    assert "re.compile" not in source and "def terminal_safe" not in source and "def plural" not in source
    assert _output.plural(1, "usable key") == "1 usable key" and _output.plural(2, "usable key") == "2 usable keys"
    assert _output.plural(3, "entry", "entries") == "3 entries"
