"""The error hierarchy and its RFC 6750 section 3 mapping (oidc_guard.errors)."""

from __future__ import annotations

import json

import pytest

import oidc_guard
from oidc_guard.errors import (
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    OIDCGuardError,
    ProviderError,
    error_response,
    www_authenticate,
)
from oidc_guard.errors import ConfigurationError


def _headers(headers):
    out = {}
    for name, value in headers:
        assert name.lower() not in out, f"header {name} sent twice"
        out[name.lower()] = value
    return out


# --- the hierarchy --------------------------------------------------------


@pytest.mark.parametrize(
    "cls, code, status",
    [
        (InvalidToken, "invalid_token", 401),
        (InsufficientScope, "insufficient_scope", 403),
        (InvalidRequest, "invalid_request", 400),
        (ProviderError, "temporarily_unavailable", 503),
    ],
)
def test_error_codes_and_statuses(cls, code, status):
    exc = cls("something was wrong")
    assert isinstance(exc, OIDCGuardError)
    assert isinstance(exc, Exception)
    assert exc.error == code
    assert exc.status == status
    assert exc.description == "something was wrong"
    assert str(exc) == "something was wrong"
    assert repr(exc) == f"{cls.__name__}('something was wrong')"


def test_public_names_are_the_same_classes():
    assert oidc_guard.InvalidToken is InvalidToken
    assert oidc_guard.InsufficientScope is InsufficientScope
    assert oidc_guard.InvalidRequest is InvalidRequest
    assert oidc_guard.ProviderError is ProviderError
    assert oidc_guard.OIDCGuardError is OIDCGuardError


def test_configuration_error_is_a_value_error_and_a_guard_error():
    import oidc_guard.validator

    assert oidc_guard.ConfigurationError is ConfigurationError
    assert oidc_guard.validator.ConfigurationError is ConfigurationError
    assert issubclass(ConfigurationError, OIDCGuardError)
    assert issubclass(ConfigurationError, ValueError)
    # Not a token problem: it must never be mistaken for one.
    assert not issubclass(ConfigurationError, InvalidToken)
    assert ConfigurationError("x").status == 500


def test_token_errors_are_distinct_from_provider_errors():
    # A 503 must never be caught as a 401 (an outage is not a bad token).
    assert not issubclass(ProviderError, InvalidToken)
    assert not issubclass(InvalidToken, ProviderError)
    assert not issubclass(InsufficientScope, InvalidToken)


def test_insufficient_scope_keeps_required_scopes():
    exc = InsufficientScope("needs more", ["contacts", "wte"])
    assert exc.scopes == ("contacts", "wte")
    assert InsufficientScope("needs more").scopes == ()


@pytest.mark.parametrize(
    "given, expected",
    [(30.0, 30), (0.2, 1), (0, 1), (-5, 1), (4.01, 5), (5, 5), (29.5, 30)],
)
def test_provider_error_retry_after_is_a_positive_whole_number(given, expected):
    assert ProviderError("down", retry_after=given).retry_after == expected


def test_provider_error_default_retry_after():
    assert ProviderError("down").retry_after == 30


# --- WWW-Authenticate (RFC 6750 section 3) ----------------------------------


def test_challenge_without_anything_is_bare_bearer():
    assert www_authenticate() == "Bearer"


def test_challenge_with_realm_only_has_no_error_attribute():
    value = www_authenticate("contacts-api")
    assert value == 'Bearer realm="contacts-api"'
    assert "error" not in value


def test_challenge_with_error_and_description():
    value = www_authenticate("api", "invalid_token", "token expired at 2026-11-22T10:00:00Z")
    assert value == ('Bearer realm="api", error="invalid_token", '
                     'error_description="token expired at 2026-11-22T10:00:00Z"')


def test_challenge_description_needs_an_error():
    # error_description without error would be meaningless (RFC 6750 3).
    assert www_authenticate("api", None, "ignored") == 'Bearer realm="api"'


def test_challenge_scope_is_space_delimited():
    value = www_authenticate("api", "insufficient_scope", "need more", ["contacts", "wte"])
    assert value.endswith('scope="contacts wte"')


def test_challenge_escapes_quotes_and_backslashes():
    value = www_authenticate("api", "invalid_token", 'kid "a\\b" unknown')
    assert 'error_description="kid \\"a\\\\b\\" unknown"' in value


@pytest.mark.parametrize("evil", ["a\r\nSet-Cookie: x=1", "a\nb", "tab\there", "caf\u00e9", "\x00", "\u2028"])
def test_challenge_cannot_be_broken_by_control_or_non_ascii_characters(evil):
    value = www_authenticate("api", "invalid_token", evil)
    assert "\r" not in value and "\n" not in value
    assert all(0x20 <= ord(ch) <= 0x7E for ch in value), value
    # The description is still there, with the bad characters replaced.
    assert 'error_description="' in value


def test_challenge_realm_is_quoted_safely():
    value = www_authenticate('re"alm\r\n')
    assert value == 'Bearer realm="re\\"alm??"'


# --- error_response ------------------------------------------------------------


def test_no_token_response_has_no_error_attribute():
    status, headers, body = error_response(None, "contacts-api")
    h = _headers(headers)
    assert status == "401 Unauthorized"
    assert h["www-authenticate"] == 'Bearer realm="contacts-api"'
    assert h["content-type"] == "application/json"
    assert h["cache-control"] == "no-store"
    assert int(h["content-length"]) == len(body)
    doc = json.loads(body)
    assert set(doc) == {"error", "error_description"}


def test_invalid_token_response():
    status, headers, body = error_response(InvalidToken("token expired at 2026-11-22T10:00:00Z"), "api")
    h = _headers(headers)
    assert status == "401 Unauthorized"
    assert h["www-authenticate"] == ('Bearer realm="api", error="invalid_token", '
                                      'error_description="token expired at 2026-11-22T10:00:00Z"')
    assert json.loads(body) == {"error": "invalid_token",
                                "error_description": "token expired at 2026-11-22T10:00:00Z"}
    assert "retry-after" not in h
    assert int(h["content-length"]) == len(body)


def test_insufficient_scope_response_names_the_scopes():
    status, headers, body = error_response(InsufficientScope("scope wte required", ["wte"]), "api")
    h = _headers(headers)
    assert status == "403 Forbidden"
    assert 'error="insufficient_scope"' in h["www-authenticate"]
    assert 'scope="wte"' in h["www-authenticate"]
    assert json.loads(body)["error"] == "insufficient_scope"


def test_invalid_request_response():
    status, headers, body = error_response(InvalidRequest("token sent twice"), "api")
    h = _headers(headers)
    assert status == "400 Bad Request"
    assert 'error="invalid_request"' in h["www-authenticate"]
    assert json.loads(body) == {"error": "invalid_request", "error_description": "token sent twice"}


def test_provider_error_is_503_with_retry_after_and_never_looks_like_a_bad_token():
    status, headers, body = error_response(ProviderError("JWKS unreachable", retry_after=7), "api")
    h = _headers(headers)
    assert status == "503 Service Unavailable"
    assert h["retry-after"] == "7"
    # A client seeing invalid_token would throw a good token away; a 503 is
    # not an RFC 6750 challenge at all, so no WWW-Authenticate is sent.
    assert "www-authenticate" not in h
    assert "invalid_token" not in body.decode()
    # the description names internal URLs: clients get a fixed sentence
    assert json.loads(body) == {"error": "temporarily_unavailable",
                                "error_description": "identity provider temporarily unavailable"}


def test_provider_error_body_never_carries_its_description():
    exc = ProviderError("discovery document http://10.0.0.5:8443/.well-known/openid-configuration: Connection refused")
    status, headers, body = error_response(exc, "api")
    text = body.decode() + repr(headers)
    assert "10.0.0.5" not in text and "8443" not in text and "refused" not in text
    assert exc.description.startswith("discovery document http://10.0.0.5")  # the log keeps it


def test_status_override():
    status, _headers_, _body = error_response(InvalidToken("x"), "api", status=400)
    assert status == "400 Bad Request"
    status, _headers_, _body = error_response(InvalidToken("x"), "api", status=418)
    assert status.startswith("418 ")


def test_response_body_is_json_even_for_hostile_descriptions():
    desc = 'quote " backslash \\ newline \n unicode \u00e9'
    _status, headers, body = error_response(InvalidToken(desc), "api")
    assert json.loads(body)["error_description"] == desc
    h = _headers(headers)
    assert "\n" not in h["www-authenticate"]
