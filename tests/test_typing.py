"""The package is ``mypy --strict`` clean, and its public API is typed
precisely enough that mypy catches a user's mistakes (``current_claims.subjcet``
once type-checked as Any)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("mypy", reason="mypy is in the test extra: pip install -e '.[test]'")


def _mypy(args, cwd, cache_dir):
    env = dict(os.environ, MYPYPATH=str(ROOT))
    env.pop("MYPY_CONFIG_FILE_DIR", None)
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-color-output", "--cache-dir", str(cache_dir), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_package_is_mypy_strict_clean(tmp_path):
    """The whole package, oidc_guard.testing included."""
    result = _mypy(["oidc_guard"], ROOT, tmp_path / "cache")
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert not errors, "\n".join(errors)
    assert result.returncode == 0, result.stdout + result.stderr  # no crash, no usage error


# Each line marked "# error" must be reported by mypy, and no other line.
USER_FILE = '''
from typing import Dict, FrozenSet, Optional

from flask import Flask

import oidc_guard
from oidc_guard import AccessTokenValidator, BearerMiddleware, Claims, MultiIssuerValidator, TokenValidator
from oidc_guard.flask import OIDCGuard, current_claims, get_claims, require_scope, require_token

app = Flask(__name__)
validator = TokenValidator("https://idp.example.com", audience="api://contacts")
several: AccessTokenValidator = MultiIssuerValidator([validator])
guard = OIDCGuard(app, validator=several)


@app.get("/contacts")
@require_scope("contacts")
def contacts() -> Dict[str, Optional[str]]:
    return {"owner": current_claims.subject}


@app.get("/typo")
@require_token
def typo() -> str:
    return str(current_claims.subjcet)  # error


def scopes() -> FrozenSet[str]:
    claims: Optional[Claims] = get_claims()
    return claims.scopes if claims is not None else frozenset()


contacts(1)  # error
guard.validator.validate_acess_token("t")  # error
claims: Claims = guard.validator.validate_access_token("t")
app.wsgi_app = BearerMiddleware(app.wsgi_app, validator, realm="contacts-api")  # type: ignore[method-assign]
BearerMiddleware(app.wsgi_app, validator, relm="contacts-api")  # error
BearerMiddleware(app.wsgi_app, "not a validator")  # error
oidc_guard.TokenValidatr  # error
print(dir(oidc_guard), scopes(), typo(), claims)
'''


def test_mypy_catches_a_users_mistakes(tmp_path):
    user = tmp_path / "user_app.py"
    user.write_text(textwrap.dedent(USER_FILE).lstrip(), encoding="utf-8")
    expected = {n for n, line in enumerate(user.read_text().splitlines(), 1) if line.rstrip().endswith("# error")}
    result = _mypy(["user_app.py"], tmp_path, tmp_path / "cache")
    reported = {}
    for line in result.stdout.splitlines():
        m = re.match(r"user_app\.py:(\d+): error: (.*)", line)
        if m:
            reported.setdefault(int(m.group(1)), []).append(m.group(2))
    assert set(reported) == expected, result.stdout + result.stderr
    assert any('"Claims" has no attribute "subjcet"' in e for e in reported[min(expected)]), reported


def test_lazy_names_are_discoverable_and_stay_lazy():
    code = (
        "import sys, oidc_guard\n"
        "assert 'BearerMiddleware' in dir(oidc_guard), dir(oidc_guard)\n"
        "assert 'oidc_guard.wsgi' not in sys.modules and 'flask' not in sys.modules\n"
        "from oidc_guard import BearerMiddleware\n"
        "assert BearerMiddleware.__module__ == 'oidc_guard.wsgi'\n"
        "try:\n"
        "    oidc_guard.TokenValidatr\n"
        "except AttributeError:\n"
        "    pass\n"
        "else:\n"
        "    raise SystemExit('a misspelt name must be an AttributeError')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


def test_both_validators_are_access_token_validators():
    from oidc_guard import AccessTokenValidator, MultiIssuerValidator, TokenValidator

    v = TokenValidator("https://idp.example.com", audience="api://contacts")
    assert isinstance(v, AccessTokenValidator)
    assert isinstance(MultiIssuerValidator([v]), AccessTokenValidator)
    assert not isinstance(object(), AccessTokenValidator)
