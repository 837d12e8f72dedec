"""Section "routing": what ``MultiIssuerValidator`` adds to a validation,
and what a flood of tokens with random ``iss`` values costs.

Rows (RS256 and ES256, the IdentityServer-shaped token of the other
sections; the multi validator has two members, the token's issuer second):

* single cached / multi cached: a repeated token (verified-token cache hit),
  a new ``str`` per call as a server makes it; the difference is what
  routing adds to a repeated token (the front table: one str hash + dict
  look-up);
* single cold / multi cold: every call as the first sight of a token
  (members with ``cache_size=0``, the multi validator's token table off): the
  difference is what routing adds to a new token (the header guess: a
  slice and a dict look-up; the member refuses a foreign iss itself);
* multi, first-sight routing, cached member: the same first-sight routing
  in front of a member whose cache answers, so the routing cost is measured
  against the ~1 us single cached row instead of inside the noise of a
  signature check;
* choose() by iss: the fallback when the header is not known yet (decode
  the payload segment, find ``iss``, look it up), for scale.

Flood: 10,000 tokens, each with a random ``iss``, through a static
two-member validator and through one with a resolver that trusts only its
directory (``max_resolved=100``): requests the issuer received, validators
created, resolver calls, and us per refused token.
"""

from __future__ import annotations

import random
import time
from typing import Any, Dict, List

from benchkit import AUDIENCE
from benchkit.issuer import mint
from benchkit.timing import CLOCK, interleaved, med, spread
from sections import Context, Section, register

FLOOD = 10_000


def _requests(issuer: Any) -> Any:
    counts = getattr(issuer, "fetch_counts", None)
    return sum(counts.values()) if counts is not None else None


def section_routing(issuer: Any, rounds: int, target: float) -> Dict[str, Any]:
    from oidc_guard import MultiIssuerValidator, TokenValidator

    other = "https://other-idp.example"  # never fetched: no token names it
    now = int(time.time())
    results: Dict[str, Any] = {}
    for alg in ("RS256", "ES256"):
        token = mint(issuer, alg, now)
        single_cached = TokenValidator(issuer.issuer, audience=AUDIENCE)
        single_cold = TokenValidator(issuer.issuer, audience=AUDIENCE, cache_size=0)
        # First sight of every token: members without a cache and the
        # multi validator's token-to-member table off, so each call is
        # routed as a never-seen token is (the header guess).
        multi_cold = MultiIssuerValidator([TokenValidator(other, audience=AUDIENCE, cache_size=0),
                                           TokenValidator(issuer.issuer, audience=AUDIENCE, cache_size=0)])
        multi_cold._front.maxsize = 0
        # The same routing with a caching member: the member's part is then
        # a ~1 us cache hit instead of a ~50 us verify, so the routing cost
        # is not lost in the noise of the signature check.
        multi_guess = MultiIssuerValidator([TokenValidator(other, audience=AUDIENCE),
                                            TokenValidator(issuer.issuer, audience=AUDIENCE)])
        multi_guess._front.maxsize = 0
        multi = MultiIssuerValidator([TokenValidator(other, audience=AUDIENCE),
                                      TokenValidator(issuer.issuer, audience=AUDIENCE)])
        padded = "." + token

        def s_cached(p=padded, v=single_cached):
            return v.validate_access_token(p[1:])

        def m_cached(p=padded, v=multi):
            return v.validate_access_token(p[1:])

        def choose(p=padded, v=multi):
            return v.choose(p[1:])

        def s_cold(p=padded, v=single_cold):
            return v.validate_access_token(p[1:])

        def m_cold(p=padded, v=multi_cold):
            return v.validate_access_token(p[1:])

        def m_guess(p=padded, v=multi_guess):
            return v.validate_access_token(p[1:])

        cases = {"s_cached": s_cached, "m_cached": m_cached, "m_guess": m_guess, "s_cold": s_cold,
                 "m_cold": m_cold, "choose": choose}
        if dict(m_cached()) != dict(s_cold()) or choose() is not multi.validators[1]:
            raise SystemExit(f"routing {alg}: the multi validator disagrees with the single one")
        results[alg] = interleaved(cases, rounds, target)

    # The flood: random iss values, none trusted.
    rng = random.Random(12)
    base = mint(issuer, "RS256", now).split(".")
    import base64
    import json

    def with_iss(iss: str) -> str:
        payload = json.loads(base64.urlsafe_b64decode(base[1] + "=" * (-len(base[1]) % 4)))
        payload["iss"] = iss
        seg = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).rstrip(b"=").decode()
        return ".".join((base[0], seg, base[2]))

    tokens = [with_iss("https://%08x.example/%04x" % (rng.getrandbits(32), rng.getrandbits(16))) for _ in range(FLOOD)]
    created: List[Any] = []
    directory = {issuer.issuer: AUDIENCE}
    calls = [0]

    def resolver(iss: str) -> Any:
        calls[0] += 1
        audience = directory.get(iss)
        if audience is None:
            return None
        created.append(TokenValidator(iss, audience=audience))
        return created[-1]

    static = MultiIssuerValidator([TokenValidator(other, audience=AUDIENCE),
                                   TokenValidator(issuer.issuer, audience=AUDIENCE)])
    resolving = MultiIssuerValidator([], resolver=resolver, max_resolved=100, negative_cache_size=FLOOD)
    flood: Dict[str, Any] = {}
    for name, validator in (("static list", static), ("resolver", resolving)):
        before = _requests(issuer)
        members_before = len(validator.validators)
        refused = 0
        started = CLOCK()
        for tok in tokens:
            try:
                validator.validate_access_token(tok)
            except Exception as exc:  # InvalidToken expected; anything else is reported
                if type(exc).__name__ != "InvalidToken":
                    raise
                refused += 1
        elapsed = CLOCK() - started
        after = _requests(issuer)
        flood[name] = {
            "refused": refused,
            "requests": None if before is None else after - before,
            "validators_created": len(validator.validators) - members_before,
            "us_per_token": elapsed / len(tokens) * 1e6,
        }
    flood["resolver"]["resolver_calls"] = calls[0]
    results["_flood"] = flood
    return results


def paired_diff(a: List[float], b: List[float]) -> float:
    """Median of the per-round differences a - b (robust to load drift)."""
    return med([x - y for x, y in zip(a, b)])


def print_routing(res: Dict[str, Any]) -> None:
    print("Routing (MultiIssuerValidator, 2 members), us/op (median; spread)")
    print(f"{'':40}{'RS256':>10} {'spread':>6}{'ES256':>10} {'spread':>6}")
    rows = (("s_cached", "single TokenValidator, cached"), ("m_cached", "MultiIssuerValidator, cached"),
            ("m_guess", "Multi, first-sight routing, cached member"),
            ("s_cold", "single TokenValidator, cold"), ("m_cold", "MultiIssuerValidator, cold (first sight)"),
            ("choose", "choose() by iss (header not yet known)"))
    for key, label in rows:
        line = f"{label:40}"
        for alg in ("RS256", "ES256"):
            xs = res[alg][key]
            line += f"{med(xs) * 1e6:10.2f} {spread(xs):>6}"
        print(line)
    line = f"{'routing added, repeated token':40}"
    for alg in ("RS256", "ES256"):
        line += f"{paired_diff(res[alg]['m_cached'], res[alg]['s_cached']) * 1e6:10.2f} {'':>6}"
    print(line + "   target <= 1 us")
    line = f"{'routing added, first sight':40}"
    for alg in ("RS256", "ES256"):
        line += f"{paired_diff(res[alg]['m_guess'], res[alg]['s_cached']) * 1e6:10.2f} {'':>6}"
    print(line + "   target <= 1 us")
    line = f"{'  same, from the cold rows (noisy)':40}"
    for alg in ("RS256", "ES256"):
        line += f"{paired_diff(res[alg]['m_cold'], res[alg]['s_cold']) * 1e6:10.2f} {'':>6}"
    print(line)
    print("(routing added = median of the per-round differences)")
    print()
    print(f"Flood: {FLOOD:,} tokens with random iss values")
    print(f"{'':16}{'refused':>9}{'requests':>10}{'validators':>12}{'resolver calls':>16}{'us/token':>10}")
    for name, row in res["_flood"].items():
        requests = "n/a" if row["requests"] is None else str(row["requests"])
        calls = str(row.get("resolver_calls", "-"))
        print(f"{name:16}{row['refused']:>9}{requests:>10}{row['validators_created']:>12}{calls:>16}"
              f"{row['us_per_token']:>10.2f}")
    print("targets: 0 requests, 0 validators created beyond the bound (here: none trusted, so 0)")
    print()


def run(ctx: Context) -> None:
    rounds, target = (5, 0.02) if ctx.quick else (15, 0.06)
    print_routing(section_routing(ctx.issuer, rounds, target))


register(Section("routing", run))
