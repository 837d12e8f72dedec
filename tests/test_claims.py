"""Claims: the read-only view of a verified payload (oidc_guard.claims).

The IdentityServer v3 payloads below have the shapes of the real tokens in
../shared/seeds next to the repository (client credentials, resource owner, implicit), with
fresh times; the RFC 9068 ones have the shape oidc-provider sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone

import pytest

from oidc_guard import Claims, InvalidToken

IDSRV3 = "https://idsrv3.com"

# IdentityServer v3, client credentials: no sub, scope array, aud <issuer>/resources.
IDSRV3_CLIENT = {
    "client_id": "chw",
    "client_chw:delete": "access",
    "scope": ["profile", "special_access"],
    "iss": IDSRV3,
    "aud": IDSRV3 + "/resources",
    "exp": 1441977033,
    "nbf": 1441976673,
}

# IdentityServer v3, resource owner: sub, amr as a string, idp, auth_time.
IDSRV3_USER = {
    "client_id": "chw_resource",
    "scope": ["profile", "special_access"],
    "sub": "12345",
    "amr": "password",
    "auth_time": 1442415837,
    "idp": "idsrv",
    "special101": "admin",
    "iss": IDSRV3,
    "aud": IDSRV3 + "/resources",
    "exp": 1442416197,
    "nbf": 1442415837,
}

# IdentityServer v3, implicit "id_token token" access token: aud is an array
# (resources + the scope names), amr an array.
IDSRV3_IMPLICIT = {
    "nbf": 1506529807,
    "exp": 1506533407,
    "iss": "https://pocsidsvr.azurewebsites.net",
    "aud": ["https://pocsidsvr.azurewebsites.net/resources", "contacts", "wte", "coordinate"],
    "client_id": "Coordinate",
    "sub": "10",
    "auth_time": 1506529807,
    "idp": "local",
    "scope": ["profile", "openid", "contacts", "wte", "coordinate"],
    "amr": ["pwd"],
}

# RFC 9068 / oidc-provider client credentials: scope string, sub == client_id.
RFC9068_CLIENT = {
    "iss": "https://op.example.com",
    "sub": "wte-worker",
    "client_id": "wte-worker",
    "aud": "api://contacts",
    "scope": "wte contacts",
    "exp": 1900000000,
    "iat": 1899996400,
    "jti": "abc",
}


# --- scopes ---------------------------------------------------------------------


def test_scopes_from_identityserver3_json_array():
    assert Claims(IDSRV3_CLIENT).scopes == frozenset({"profile", "special_access"})
    assert Claims(IDSRV3_IMPLICIT).scopes == frozenset({"profile", "openid", "contacts", "wte", "coordinate"})


def test_scopes_from_rfc9068_space_delimited_string():
    assert Claims(RFC9068_CLIENT).scopes == frozenset({"wte", "contacts"})


def test_scopes_string_splits_on_space_only_and_ignores_empty_entries():
    assert Claims({"scope": "  a  b c "}).scopes == frozenset({"a", "b", "c"})
    assert Claims({"scope": ""}).scopes == frozenset()
    assert Claims({"scope": ["a", "", "b"]}).scopes == frozenset({"a", "b"})


# Every separator str.split() knows besides SP (the hostile-input run of issue 9
# found each one granting a scope), plus the other characters outside
# RFC 6749 scope-token (%x21 / %x23-5B / %x5D-7E): '"', '\\', DEL, NUL.
OTHER_SEPARATORS = (["\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\xa0", "\u1680"]
                    + [chr(c) for c in range(0x2000, 0x200B)]
                    + ["\u2028", "\u2029", "\u202f", "\u205f", "\u3000"])
OUTSIDE_SCOPE_TOKEN = OTHER_SEPARATORS + ['"', "\\", "\x7f", "\x00", "\u00e9", "\ud800"]


@pytest.mark.parametrize("sep", OUTSIDE_SCOPE_TOKEN, ids=[f"U+{ord(c):04X}" for c in OUTSIDE_SCOPE_TOKEN])
@pytest.mark.parametrize("claim", ["scope", "scp"])
def test_a_character_outside_scope_token_refuses_the_token(sep, claim):
    for value in (f"wte{sep}contacts", f"contacts{sep}", f"a {sep}contacts", [f"wte{sep}contacts"],
                  ["a", f"{sep}contacts"]):
        with pytest.raises(InvalidToken) as info:
            Claims({claim: value})
        assert f"the {claim} claim" in info.value.description
        assert "RFC 6749" in info.value.description


def test_an_array_item_with_a_space_is_not_one_scope_token():
    with pytest.raises(InvalidToken, match="array item that is not one RFC 6749 scope-token"):
        Claims({"scope": ["a", "c d"]})


def test_every_scope_token_character_is_accepted():
    allowed = "".join(chr(c) for c in range(0x21, 0x7F) if c not in (0x22, 0x5C))
    assert Claims({"scope": allowed + " x"}).scopes == frozenset({allowed, "x"})
    assert Claims({"scp": [allowed]}).scopes == frozenset({allowed})


@pytest.mark.parametrize("scp, expected", [("a b", {"a", "b"}), (["a", "b"], {"a", "b"}), ([], set())])
def test_scopes_from_scp(scp, expected):
    assert Claims({"scp": scp}).scopes == frozenset(expected)


def test_scope_and_scp_are_merged():
    assert Claims({"scope": "a", "scp": ["b"]}).scopes == frozenset({"a", "b"})


@pytest.mark.parametrize("bad", [5, True, {"a": 1}, 1.5])
def test_scope_of_a_wrong_type_refuses_the_token(bad):
    with pytest.raises(InvalidToken, match="neither a string nor an array of strings"):
        Claims({"scope": bad})


@pytest.mark.parametrize("item", [1, None, ["b"], {"b": 1}, True])
def test_non_string_items_of_a_scope_array_refuse_the_token(item):
    with pytest.raises(InvalidToken, match="item that is not a string"):
        Claims({"scope": ["a", item]})


def test_scopes_is_a_frozenset_and_empty_when_absent():
    scopes = Claims({}).scopes
    assert isinstance(scopes, frozenset)
    assert scopes == frozenset()


# --- client / subject -------------------------------------------------------------


def test_client_id_prefers_client_id_over_azp():
    assert Claims({"client_id": "a", "azp": "b"}).client_id == "a"


def test_client_id_falls_back_to_azp():
    assert Claims({"azp": "spa"}).client_id == "spa"


@pytest.mark.parametrize("payload", [{}, {"client_id": 5}, {"client_id": None, "azp": ["x"]}])
def test_client_id_none_when_absent_or_not_a_string(payload):
    assert Claims(payload).client_id is None


def test_non_string_client_id_falls_back_to_azp():
    assert Claims({"client_id": 5, "azp": "spa"}).client_id == "spa"


def test_subject():
    assert Claims(IDSRV3_USER).subject == "12345"
    assert Claims(IDSRV3_CLIENT).subject is None
    assert Claims({"sub": 12345}).subject is None  # not a string: not a subject


def test_is_client_token_identityserver3_shape_without_sub():
    assert Claims(IDSRV3_CLIENT).is_client_token is True


def test_is_client_token_rfc9068_shape_sub_equals_client_id():
    assert Claims(RFC9068_CLIENT).is_client_token is True


def test_is_client_token_false_for_user_tokens():
    assert Claims(IDSRV3_USER).is_client_token is False
    assert Claims(IDSRV3_IMPLICIT).is_client_token is False
    assert Claims({"sub": "alice", "client_id": "spa"}).is_client_token is False
    # a user token without any client identifier is still a user token
    assert Claims({"sub": "alice"}).is_client_token is False


def test_is_client_token_with_azp_equal_to_sub():
    assert Claims({"sub": "svc", "azp": "svc"}).is_client_token is True


# --- other accessors --------------------------------------------------------------


def test_issuer():
    assert Claims(IDSRV3_CLIENT).issuer == IDSRV3
    assert Claims({}).issuer is None
    assert Claims({"iss": 1}).issuer is None


def test_audiences_from_string_and_array():
    assert Claims(IDSRV3_CLIENT).audiences == (IDSRV3 + "/resources",)
    assert Claims(IDSRV3_IMPLICIT).audiences == (
        "https://pocsidsvr.azurewebsites.net/resources", "contacts", "wte", "coordinate")


@pytest.mark.parametrize("aud, expected", [(None, ()), (5, ()), ({"a": 1}, ()), (["a", 5, "b"], ("a", "b"))])
def test_audiences_of_odd_shapes(aud, expected):
    assert Claims({"aud": aud}).audiences == expected


def test_audiences_is_a_tuple():
    assert isinstance(Claims({"aud": ["a"]}).audiences, tuple)


def test_expires_at_is_timezone_aware_utc():
    expires = Claims(IDSRV3_CLIENT).expires_at
    assert expires == datetime(2015, 9, 11, 13, 10, 33, tzinfo=timezone.utc)
    assert expires.tzinfo is not None
    assert expires.utcoffset().total_seconds() == 0


def test_expires_at_accepts_fractional_seconds():
    assert Claims({"exp": 1900000000.5}).expires_at.timestamp() == 1900000000.5


@pytest.mark.parametrize("exp", [None, "1900000000", True, [1], 1e20, float("inf"), float("nan"), -1e20])
def test_expires_at_none_when_absent_or_not_a_number(exp):
    assert Claims({"exp": exp}).expires_at is None


def test_identityserver3_extra_claims_are_available():
    claims = Claims(IDSRV3_USER)
    assert claims["amr"] == "password"
    assert claims["idp"] == "idsrv"
    assert claims["auth_time"] == 1442415837
    assert claims["client_id"] == "chw_resource"
    assert Claims(IDSRV3_IMPLICIT)["amr"] == ["pwd"]


# --- read-only mapping ------------------------------------------------------------


def test_is_a_mapping():
    claims = Claims(IDSRV3_USER)
    assert isinstance(claims, Mapping)
    assert len(claims) == len(IDSRV3_USER)
    assert set(claims) == set(IDSRV3_USER)
    assert "sub" in claims and "nope" not in claims
    assert claims.get("nope") is None
    assert claims.get("sub") == "12345"
    assert dict(claims) == IDSRV3_USER
    assert claims == IDSRV3_USER
    with pytest.raises(KeyError):
        claims["nope"]


def test_item_assignment_and_deletion_are_refused():
    claims = Claims({"sub": "alice", "scope": "a"})
    with pytest.raises(TypeError):
        claims["sub"] = "mallory"  # type: ignore[index]
    with pytest.raises(TypeError):
        del claims["sub"]  # type: ignore[attr-defined]
    assert not hasattr(claims, "update")
    assert not hasattr(claims, "pop")
    assert not hasattr(claims, "setdefault")
    assert claims["sub"] == "alice"


def test_claims_copy_the_payload():
    payload = {"sub": "alice", "scope": "a"}
    claims = Claims(payload)
    payload["sub"] = "mallory"
    payload["scope"] = "admin"
    assert claims["sub"] == "alice"
    assert claims.scopes == frozenset({"a"})


def test_to_dict_is_a_copy():
    claims = Claims({"sub": "alice"})
    out = claims.to_dict()
    assert out == {"sub": "alice"} and type(out) is dict
    out["sub"] = "mallory"
    assert claims["sub"] == "alice"


def test_no_instance_dict_to_smuggle_attributes():
    claims = Claims({"sub": "alice"})
    with pytest.raises(AttributeError):
        claims.subject = "mallory"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        claims.anything = 1  # type: ignore[attr-defined]


def test_header_is_kept():
    claims = Claims({"sub": "a"}, {"alg": "RS256", "kid": "k1"})
    assert claims.header["kid"] == "k1"
    assert Claims({"sub": "a"}).header == {}


def test_repr_names_subject_client_and_scopes():
    text = repr(Claims(RFC9068_CLIENT))
    assert "wte-worker" in text and "contacts" in text
