"""Section "tokens": token validation, us per call, for RS256, ES256 and
EdDSA on the same IdentityServer-style token: bare ``cryptography`` verify
(the floor), PyJWT ``jwt.decode`` with a pre-loaded key, PyJWT +
``PyJWKClient``, Authlib ``authlib.jose``, oidc_guard cold
(``cache_size=0``), cache miss and cached."""

from __future__ import annotations

import time
import warnings
from typing import Any, Dict

from benchkit import ALGS, AUDIENCE
from benchkit.contenders import bare_verifier, rotating
from benchkit.issuer import kid_for, mint
from benchkit.timing import interleaved, med, paired_ratio, spread
from sections import Context, Section, register


def section_tokens(issuer: Any, rounds: int, target: float, new_pool: int = 10000) -> Dict[str, Any]:
    import jwt as pyjwt

    from oidc_guard import TokenValidator

    # authlib.jose announces its move to joserfc (forcing its warning filter
    # to "always"); record the warning instead of printing it.
    with warnings.catch_warnings(record=True):
        from authlib.jose import JsonWebKey, JsonWebToken

    now = int(time.time())
    cold = TokenValidator(issuer.issuer, audience=AUDIENCE, cache_size=0)
    cached = TokenValidator(issuer.issuer, audience=AUDIENCE)
    results: Dict[str, Any] = {}
    lengths: Dict[str, int] = {}
    for alg in ALGS:
        token = mint(issuer, alg, now)
        lengths[alg] = len(token)
        kid = kid_for(issuer, alg)
        pub = issuer.public_key(kid)
        bare = bare_verifier(pub, alg, token)

        def pyjwt_key(token=token, pub=pub, alg=alg):
            return pyjwt.decode(token, pub, algorithms=[alg], audience=AUDIENCE, issuer=issuer.issuer)

        # What tutorials do: a PyJWKClient per app, the key looked up per request.
        jwk_client = pyjwt.PyJWKClient(issuer.jwks_uri)

        def pyjwt_jwks(token=token, alg=alg, client=jwk_client):
            key = client.get_signing_key_from_jwt(token)
            return pyjwt.decode(token, key.key, algorithms=[alg], audience=AUDIENCE, issuer=issuer.issuer)

        jwk_dict = next(k for k in issuer.jwks()["keys"] if k.get("kid") == kid)
        a_key = JsonWebKey.import_key(jwk_dict)
        a_jwt = JsonWebToken([alg])
        a_opts = {"iss": {"essential": True, "value": issuer.issuer},
                  "aud": {"essential": True, "value": AUDIENCE},
                  "exp": {"essential": True}}

        def authlib_decode(token=token, key=a_key, jwt_=a_jwt, opts=a_opts):
            claims = jwt_.decode(token, key, claims_options=opts)
            claims.validate(leeway=60)
            return claims

        def og_cold(token=token):
            return cold.validate_access_token(token)

        # A server hands the validator a new str per request (sliced out of
        # the Authorization header), so str hashes are never cached: same here.
        padded = "." + token

        def og_cached(padded=padded):
            return cached.validate_access_token(padded[1:])

        # A cache miss with the cache on: two tokens alternating through a
        # one-entry cache, so every call verifies, stores and evicts.
        miss_tokens = [token, mint(issuer, alg, now, n=1)]
        miss_validator = TokenValidator(issuer.issuer, audience=AUDIENCE, cache_size=1)
        miss_state = [0]

        def og_miss(tokens=miss_tokens, validator=miss_validator, state=miss_state):
            state[0] ^= 1
            return validator.validate_access_token(tokens[state[0]])

        # A new token with the defaults (issue 9): a validator with the
        # default cache_size fed new_pool + 1 distinct tokens in turn, so
        # every call verifies a token it has not seen and stores it (the
        # least recently used entry goes: a full cache, as in a server that
        # has run for a while).  Each call passes a new str, as a server does.
        new_tokens = ["." + mint(issuer, alg, now, n=2 + i) for i in range(new_pool + 1)]
        og_new = rotating(TokenValidator(issuer.issuer, audience=AUDIENCE, cache_size=new_pool), new_tokens)

        cases = {"bare": bare, "pyjwt": pyjwt_key, "pyjwk": pyjwt_jwks, "authlib": authlib_decode,
                 "cold": og_cold, "miss": og_miss, "new": og_new, "cached": og_cached}
        # Every contender must accept the token before it is timed.
        for name, fn in cases.items():
            fn()
        expected = og_cold()
        if dict(og_cached()) != dict(expected) or pyjwt_key() != dict(expected):
            raise SystemExit(f"{alg}: contenders disagree on the claims")
        results[alg] = interleaved(cases, rounds, target)
    results["_lengths"] = lengths
    return results


ROWS = (
    ("bare", "bare cryptography verify (floor)"),
    ("pyjwt", "PyJWT jwt.decode, key object"),
    ("pyjwk", "PyJWT + PyJWKClient"),
    ("authlib", "Authlib jose jwt.decode+validate"),
    ("cold", "oidc_guard cold (cache_size=0)"),
    ("miss", "oidc_guard cache miss (verify+store)"),
    ("new", "oidc_guard new token, cache on"),
    ("cached", "oidc_guard cached"),
)


def print_tokens(res: Dict[str, Any]) -> None:
    lengths = res["_lengths"]
    print("Token validation, us/op (median; spread = (max-min)/median of the samples)")
    print("token lengths: " + ", ".join(f"{a} {lengths[a]} chars" for a in ALGS))
    head = f"{'':36}" + "".join(f"{a:>10} {'spread':>6}" for a in ALGS)
    print(head)
    for key, label in ROWS:
        line = f"{label:36}"
        for alg in ALGS:
            xs = res[alg][key]
            line += f"{med(xs) * 1e6:10.2f} {spread(xs):>6}"
        print(line)
    print()
    print("Ratios                               " + "".join(f"{a:>10}" for a in ALGS) + "   target")
    ratio_rows = (  # label, numerator, denominator, format, target
        ("cold / bare (medians)", "cold", "bare", "10.2f", "   RS256 <= 1.8, ES256/EdDSA <= 1.3"),
        ("new token, cache on / bare", "new", "bare", "10.2f", "   RS256 <= 1.6, ES256 <= 1.25"),
        ("PyJWT / oidc_guard cold", "pyjwt", "cold", "10.2f", ""),
        ("Authlib / oidc_guard cold", "authlib", "cold", "10.2f", ""),
        ("cold / cached (same alg)", "cold", "cached", "10.1f", ""),
    )
    for label, num, den, fmt, target in ratio_rows:
        cells = "".join(format(med(res[alg][num]) / med(res[alg][den]), fmt) for alg in ALGS)
        print(f"{label:36} {cells}{target}")
        if den == "bare":
            paired = "".join(f"{paired_ratio(res[alg][num], res[alg]['bare']):10.2f}" for alg in ALGS)
            print(f"{num + ' / bare (median per round)':36} {paired}")
    rs_ratio = med(res["RS256"]["cold"]) / med(res["RS256"]["cached"])
    print(f"{'cold RS256 / cached RS256':36} {rs_ratio:10.1f}   target >= 20")
    print()


def run(ctx: Context) -> None:
    rounds, target, pool = (5, 0.02, 1000) if ctx.quick else (15, 0.06, 10000)
    print_tokens(section_tokens(ctx.issuer, rounds, target, pool))


register(Section("tokens", run))
