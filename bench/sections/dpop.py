"""Section "dpop": what a DPoP proof check (RFC 9449) adds to a request whose
access token is already in the verified-token cache, per proof alg, next to
the bare signature verify of that alg.

Rows, per proof alg (ES256, EdDSA, RS256), us per request through
``BearerMiddleware`` (a WSGI call with a trivial app):

* bare verify: ``public_key.verify(...)`` of the proof's signature, prepared
  in advance (the floor of any proof check);
* bearer, cached token: ``Authorization: Bearer`` with a cached token;
* DPoP, cached token + proof: ``Authorization: DPoP`` with the same kind of
  token bound to the key (cached too) and a proof; the replay store here
  accepts every jti, so one proof can be timed repeatedly (the real store is
  the next row);
* added by DPoP = median of the per-round differences of the two; ratio =
  added / bare verify (target <= 1.3);
* in-process replay store add (a new key each call), for the record.

The cross-process figure (1,000 replays of one proof over 4 gunicorn workers
sharing Redis: exactly 1 accepted) is a count, in
tests/reliability/test_dpop_replay.py.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List

from benchkit import AUDIENCE
from benchkit.contenders import bare_verifier
from benchkit.timing import interleaved, med, spread
from sections import Context, Section, register

ALGS = ("ES256", "EdDSA", "RS256")
URL = "https://api.example.test/jobs"


class _AcceptAll:
    """A replay store that never refuses: lets one proof be timed repeatedly."""

    shared = False

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        return True


def section_dpop(issuer: Any, rounds: int, target: float) -> Dict[str, Any]:
    from oidc_guard import BearerMiddleware, TokenValidator
    from oidc_guard.dpop import MemoryReplayStore
    from oidc_guard.testing import DPoPKey

    def app(environ: Dict[str, Any], start_response: Any) -> List[bytes]:
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        if not status.startswith("200"):
            raise SystemExit(f"dpop bench: the request was refused ({status})")

    results: Dict[str, Any] = {}
    now = int(time.time())
    for alg in ALGS:
        key = DPoPKey(alg)
        validator = TokenValidator(issuer.issuer, audience=AUDIENCE)
        bearer_token = issuer.sign({"iss": issuer.issuer, "aud": AUDIENCE, "sub": "alice", "exp": now + 3600,
                                    "scope": "wte", "client_id": "wte-worker"}, alg="RS256")
        bound_token = issuer.sign({"iss": issuer.issuer, "aud": AUDIENCE, "sub": "alice", "exp": now + 3600,
                                   "scope": "wte", "client_id": "wte-worker", "cnf": key.cnf}, alg="RS256")
        proof = key.proof("GET", URL, bound_token)
        mw = BearerMiddleware(app, validator, public_url="https://api.example.test", dpop_replay_store=_AcceptAll())
        base_env = {"REQUEST_METHOD": "GET", "PATH_INFO": "/jobs", "SCRIPT_NAME": "", "wsgi.url_scheme": "http",
                    "HTTP_HOST": "internal:8000"}
        bearer_auth = "Bearer " + bearer_token
        dpop_auth = "DPoP " + bound_token

        def bearer(env=base_env, auth=bearer_auth, mw=mw):
            e = dict(env)
            e["HTTP_AUTHORIZATION"] = auth[:]
            return mw(e, start_response)

        def dpop(env=base_env, auth=dpop_auth, proof=proof, mw=mw):
            e = dict(env)
            e["HTTP_AUTHORIZATION"] = auth[:]
            e["HTTP_DPOP"] = proof[:]
            return mw(e, start_response)

        store = MemoryReplayStore(maxsize=10_000_000)
        counter = iter(range(1 << 62))

        def store_add(store=store, counter=counter):
            return store.add("dpop:jti:%064x" % next(counter), b"1", 330.0)

        bearer(), dpop()  # both accepted (start_response raises otherwise), tokens cached
        results[alg] = interleaved({"bare": bare_verifier(key.private_key.public_key(), key.alg, proof), "bearer": bearer, "dpop": dpop,
                                    "store": store_add}, rounds, target)
    return results


def print_dpop(res: Dict[str, Any]) -> None:
    print("DPoP: cost of a proof check on a request with a cached token, us/request (median; spread)")
    print(f"{'':34}" + "".join(f"{alg:>10} {'spread':>6}" for alg in ALGS))
    for key, label in (("bare", "bare verify of the proof alg"), ("bearer", "bearer, cached token"),
                       ("dpop", "DPoP, cached token + proof"), ("store", "in-process replay store add")):
        print(f"{label:34}" + "".join(f"{med(res[alg][key]) * 1e6:10.2f} {spread(res[alg][key]):>6}" for alg in ALGS))
    added = {alg: med([d - b for d, b in zip(res[alg]["dpop"], res[alg]["bearer"])]) for alg in ALGS}
    print(f"{'added by DPoP':34}" + "".join(f"{added[alg] * 1e6:10.2f} {'':>6}" for alg in ALGS))
    print(f"{'added / bare verify':34}" + "".join(f"{added[alg] / med(res[alg]['bare']):10.2f} {'':>6}" for alg in ALGS)
          + "   target <= 1.3")
    print()


def run(ctx: Context) -> None:
    rounds, target = (5, 0.02) if ctx.quick else (15, 0.06)
    print_dpop(section_dpop(ctx.issuer, rounds, target))


register(Section("dpop", run))
