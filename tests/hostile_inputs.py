"""Hostile DPoP inputs shared by the hostile suites of every adapter
(tests/test_wsgi_hostile.py, tests/test_django_hostile.py): the same
Authorization values and proofs go through each stack, which must answer
each with 400/401 (never a 500)."""

from __future__ import annotations

from typing import Any, List, Optional


def dpop_authorizations(ref: str) -> List[str]:
    """Malformed or abusive ``Authorization: DPoP`` values for token ``ref``."""
    return ["DPoP", "DPoP ", "DPoP  x", "dpop " + "a" * 100000, "DPoP \u00e9", "DPoP \x00",
            "Bearer a, DPoP b", "DPoP a.b.c", "DPoP " + ref + "," + ref, "DPoP ..", "DPoP " + "a" * 20000]


def dpop_proofs(key: Any, url: str, ref: str) -> List[Optional[str]]:
    """Missing, malformed and lying DPoP proofs for a GET of ``url`` with
    token ``ref``, made with ``key`` (an oidc_guard.testing.DPoPKey)."""
    return [None, "", "x", "a.b.c", ",", "a,b", "\u00e9", "\x00" * 10, "a" * 100000,
            key.proof("GET", url, ref) + "," + key.proof("GET", url, ref),
            key.proof("GET", url, ref, header={"jwk": {"kty": "EC", "crv": "P-256", "x": "\u00e9", "y": 1}}),
            key.proof("GET", url, ref, header={"jwk": {"kty": "oct", "k": "AAAA"}}),
            key.proof("GET", url, ref, header={"jwk": "x"}), key.proof("GET", url, ref, iat=10 ** 30),
            key.proof("GET", url, ref, htu="http://[::1"), key.proof("GET", url, ref, htu=["x"]),
            key.proof("GET", url, ref, jti={"a": 1}), key.proof("GET", url, ref, jti="\u00e9" * 200),
            key.proof("GET", url, ref, ath=5), key.proof("GET", url, ref, htm=None)]
