"""oidc_guard._checks: the claim checks (iss, aud, exp/nbf/iat with leeway)
written once.  Every refusal with its reason, in the JWT wording and in the
introspection wording (the texts RFC 7662 answers are refused with)."""

import math

import pytest

from oidc_guard import _checks
from oidc_guard._checks import INTROSPECTION, JWT, audience_list, check_audience, check_issuer, check_times
from oidc_guard.errors import InvalidToken

ISSUER = "https://idp.example.com"
NOW = 1_700_000_000.0
LEEWAY = 60.0


def refused(fn, *args, reason, match=None, **kwargs) -> InvalidToken:
    with pytest.raises(InvalidToken) as info:
        fn(*args, **kwargs)
    assert info.value.reason == reason, info.value.description
    if match is not None:
        assert info.value.description == match
    return info.value


# --- iss ----------------------------------------------------------------------------


def test_check_issuer():
    check_issuer(ISSUER, ISSUER)
    refused(check_issuer, None, ISSUER, reason="issuer", match="token has no iss claim")
    check_issuer(None, ISSUER, required=False)  # introspection: iss is optional (RFC 7662 2.2)
    refused(check_issuer, ISSUER + "/", ISSUER, reason="issuer",
            match="issuer 'https://idp.example.com/' is not the expected 'https://idp.example.com'")
    refused(check_issuer, ISSUER.upper(), ISSUER, reason="issuer")  # exact, no normalisation
    refused(check_issuer, ["https://idp.example.com"], ISSUER, reason="issuer", required=False)
    error = refused(check_issuer, "x" * 5000, ISSUER, reason="issuer")
    assert len(error.description) < 200  # the value is bounded in the message


# --- aud ----------------------------------------------------------------------------


def test_audience_list():
    assert audience_list("api") == ("api",)
    assert audience_list(["a", "b"]) == ("a", "b")
    assert audience_list([]) == ()
    assert audience_list(None) == ()


@pytest.mark.parametrize("aud", [5, True, {"a": 1}, ["a", 5], [["a"]], ("a",)])
def test_audience_list_refuses_other_types(aud):
    refused(audience_list, aud, reason="claims", match="token aud is neither a string nor an array of strings")
    refused(audience_list, aud, INTROSPECTION, reason="claims",
            match="introspection response aud is neither a string nor an array of strings")


def test_check_audience():
    accepted, expected = frozenset({"api", "other"}), ("api", "other")
    check_audience(("x", "api"), accepted, expected)
    refused(check_audience, (), accepted, expected, reason="audience",
            match="token has no aud claim; expected one of ['api', 'other']")
    refused(check_audience, ("x",), accepted, expected, reason="audience",
            match="audience 'x' not accepted; expected one of ['api', 'other']")
    refused(check_audience, ("x", "y"), accepted, expected, reason="audience",
            match="audience ['x', 'y'] not accepted; expected one of ['api', 'other']")
    # an introspection answer names the empty list it sent
    refused(check_audience, (), accepted, expected, reason="audience", empty_is_missing=False,
            match="audience [] not accepted; expected one of ['api', 'other']")


# --- exp / nbf / iat ------------------------------------------------------------------


def test_check_times_accepts_within_leeway_and_returns_exp_nbf():
    assert check_times({"exp": NOW + 10, "nbf": NOW - 10}, NOW, LEEWAY) == (NOW + 10, NOW - 10)
    assert check_times({"exp": NOW - LEEWAY}, NOW, LEEWAY) == (NOW - LEEWAY, None)  # the edge itself
    assert check_times({"exp": NOW, "nbf": NOW + LEEWAY, "iat": NOW + LEEWAY}, NOW, LEEWAY) == (NOW, NOW + LEEWAY)
    assert check_times({}, NOW, LEEWAY, exp_required=False) == (None, None)


@pytest.mark.parametrize("payload, kwargs, reason, message", [
    ({}, {}, "claims", "token has no exp claim"),
    ({"exp": "1"}, {}, "claims", "token exp is not a number in the NumericDate range (RFC 7519 section 2)"),
    ({"exp": True}, {}, "claims", "token exp is not a number in the NumericDate range (RFC 7519 section 2)"),
    ({"exp": math.nan}, {}, "claims", "token exp is not a number in the NumericDate range (RFC 7519 section 2)"),
    ({"exp": math.inf}, {}, "claims", "token exp is not a number in the NumericDate range (RFC 7519 section 2)"),
    ({"exp": NOW - LEEWAY - 1}, {}, "expired", "token expired at 2023-11-14T22:12:19Z"),
    ({"exp": NOW + 99, "nbf": "x"}, {}, "claims",
     "token nbf is not a number in the NumericDate range (RFC 7519 section 2)"),
    ({"exp": NOW + 99, "nbf": NOW + LEEWAY + 1}, {}, "not_yet_valid", "token not valid before 2023-11-14T22:14:21Z"),
    ({"exp": NOW + 99, "iat": None}, {"iat_required": True}, "claims", "token has no iat claim"),
    ({"exp": NOW + 99, "iat": [1]}, {}, "claims",
     "token iat is not a number in the NumericDate range (RFC 7519 section 2)"),
    ({"exp": NOW + 99, "iat": NOW + LEEWAY + 1}, {}, "not_yet_valid",
     "token issued in the future (2023-11-14T22:14:21Z)"),
])
def test_check_times_refusals(payload, kwargs, reason, message):
    refused(check_times, payload, NOW, LEEWAY, reason=reason, match=message, **kwargs)


def test_check_times_order_exp_before_nbf_before_iat():
    both = {"exp": NOW - 1000, "nbf": NOW + 1000, "iat": NOW + 1000}
    refused(check_times, both, NOW, LEEWAY, reason="expired")
    refused(check_times, dict(both, exp=NOW + 2000), NOW, LEEWAY, reason="not_yet_valid",
            match="token not valid before 2023-11-14T22:30:00Z")


# The words RFC 7662 answers are refused with today (oidc_guard.introspection):
# calling check_times with INTROSPECTION gives exactly these, so the
# introspection path can switch to it without changing a message or reason.
@pytest.mark.parametrize("doc, reason, message", [
    ({"exp": "soon"}, "claims", "introspection exp is not a number in the NumericDate range (RFC 7519 section 2)"),
    ({"exp": NOW - LEEWAY - 1}, "expired", "token expired (introspection exp)"),
    ({"nbf": math.nan}, "claims", "introspection nbf is not a number in the NumericDate range (RFC 7519 section 2)"),
    ({"nbf": NOW + LEEWAY + 1}, "not_yet_valid", "token not valid yet (introspection nbf)"),
    ({"iat": "x"}, "claims", "introspection iat is not a number in the NumericDate range (RFC 7519 section 2)"),
])
def test_check_times_in_the_introspection_wording(doc, reason, message):
    refused(check_times, doc, NOW, LEEWAY, exp_required=False, iat_in_future=False, words=INTROSPECTION,
            reason=reason, match=message)


def test_introspection_wording_accepts_what_rfc_7662_leaves_optional():
    # no exp, no nbf, an iat in the future (not checked against the clock there)
    assert check_times({"iat": NOW + 10_000}, NOW, LEEWAY, exp_required=False, iat_in_future=False,
                       words=INTROSPECTION) == (None, None)


def test_the_validator_uses_these_checks():
    from oidc_guard import validator

    assert validator.check_times is _checks.check_times
    assert validator.check_issuer is _checks.check_issuer
    assert validator.check_audience is _checks.check_audience
    assert JWT.subject == "token"
