#!/usr/bin/env python
"""Where the time of a DPoP proof check goes (RFC 9449 section 4.3), piece by piece.

    python bench/dpop_pieces.py            # every alg
    python bench/dpop_pieces.py RS256      # one alg

Prints microseconds per call of CPU time (``time.process_time``), the
minimum over repeats of a timeit loop (min, not median: each piece is a few
us, and on a shared machine the minimum is the figure least disturbed by
other processes).  No assertions:
figures for the next person who wants to make the check cheaper.

Rows:

* ``verify()``: ``DPoPVerifier.verify`` on one accepted proof (a replay
  store that accepts every jti, so one proof can be repeated; the proof key
  is in the verifier's header memo, as for any client after its first proof);
* ``verify(), signature no-op``: the same with the memoised key's verify
  replaced by ``lambda alg, data, sig: True``: what the check costs beyond
  the signature (the part the 1.3x target of issue 11 is about);
* ``bare verify``: the memoised ``VerifyKey.verify`` alone;
* ``middleware DPoP - Bearer``: ``BearerMiddleware`` DPoP request minus
  Bearer request, both with a cached token, signature no-op: what the
  middleware adds around ``verify()`` plus ``verify()`` itself;
* then the pieces of ``verify()`` and of the middleware in isolation.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
import timeit
from typing import Any, Callable, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

URL = "https://api.example.test/jobs"


class _AcceptAll:
    shared = False

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        return True


def best(fn: Callable[[], Any], repeat: int = 7, target: float = 0.05) -> float:
    """us per call: min over ``repeat`` timeit loops of about ``target`` s."""
    timer = timeit.Timer(fn, timer=time.process_time)
    number = 1
    while timer.timeit(number) < target / 4:
        number *= 2
    number = max(1, number * 4)
    return min(timer.repeat(repeat, number)) / number * 1e6


def setup(alg: str) -> Dict[str, Any]:
    """The measured callables and their data for ``alg`` (shared with bench/dpop_icount.py)."""
    from oidc_guard import dpop as d
    from oidc_guard.testing import DPoPKey
    from oidc_guard._jws import URLSAFE_TO_STD as _URLSAFE_TO_STD, b64decode_std as _b64decode_std, parse_json_object as _parse_json_object

    key = DPoPKey(alg)
    token = "eyJhbGciOiJSUzI1NiJ9." + "A" * 700 + ".sig"  # the size of a typical JWT access token
    proof = key.proof("GET", URL, token)
    verifier = d.DPoPVerifier(replay_store=_AcceptAll())
    headers = [("DPoP", proof)]
    jkt = key.jkt
    verifier.verify("GET", URL, headers, access_token=token, jkt=jkt)  # fills the header memo
    h_raw, p_raw, s_raw = proof.encode("ascii").split(b".")
    (alg_, vkey, thumb, *_rest), = verifier._header_memo.data.values()
    signing_input = h_raw + b"." + p_raw
    signature = _b64decode_std(s_raw.translate(_URLSAFE_TO_STD))
    payload_raw = _b64decode_std(p_raw.translate(_URLSAFE_TO_STD))
    payload = _parse_json_object(payload_raw, "payload")

    class _NoSig:
        def verify(self, alg: str, data: bytes, sig: bytes) -> bool:
            return True

    nosig = d.DPoPVerifier(replay_store=_AcceptAll())
    nosig.verify("GET", URL, headers, access_token=token, jkt=jkt)
    (memo_key,) = nosig._header_memo
    nosig._header_memo.data[memo_key] = (alg_, _NoSig(), thumb, *nosig._header_memo.data[memo_key][3:])

    # The middleware around verify(), with a cached token, signature no-op.
    from oidc_guard import BearerMiddleware
    from oidc_guard.claims import Claims

    class _Validator:
        issuer = "https://issuer.example.test"
        shared_cache = None

        def __init__(self) -> None:
            self.bound = Claims({"sub": "alice", "cnf": {"jkt": jkt}, "exp": time.time() + 3600})
            self.bearer = Claims({"sub": "alice", "exp": time.time() + 3600})

        def validate_access_token(self, t: str) -> Any:
            return self.bound if t == token else self.bearer

    def app(environ: Dict[str, Any], start_response: Any) -> List[bytes]:
        start_response("200 OK", [])
        return [b"ok"]

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        if not status.startswith("200"):
            raise SystemExit(f"refused: {status}")

    mw = BearerMiddleware(app, _Validator(), public_url="https://api.example.test", dpop_replay_store=_AcceptAll())
    assert mw.dpop_verifier is not None
    mw.dpop_verifier.verify("GET", URL, headers, access_token=token, jkt=jkt)
    (memo_key,) = mw.dpop_verifier._header_memo
    mw.dpop_verifier._header_memo.data[memo_key] = (alg_, _NoSig(), thumb,
                                                 *mw.dpop_verifier._header_memo.data[memo_key][3:])
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": "/jobs", "SCRIPT_NAME": "", "wsgi.url_scheme": "http",
           "HTTP_HOST": "internal:8000"}
    dpop_auth = "DPoP " + token
    bearer_auth = "Bearer " + "eyJhbGciOiJSUzI1NiJ9." + "B" * 700 + ".sig"

    def mw_dpop() -> Any:
        e = dict(env)
        e["HTTP_AUTHORIZATION"] = dpop_auth
        e["HTTP_DPOP"] = proof
        return mw(e, start_response)

    def mw_bearer() -> Any:
        e = dict(env)
        e["HTTP_AUTHORIZATION"] = bearer_auth
        return mw(e, start_response)

    mw_dpop(), mw_bearer()
    return {
        "verifier": verifier, "nosig": nosig, "mw": mw, "env": env, "proof": proof, "headers": headers,
        "token": token, "jkt": jkt, "alg": alg_, "vkey": vkey, "thumb": thumb, "signing_input": signing_input,
        "signature": signature, "payload_raw": payload_raw, "payload": payload, "h_raw": h_raw, "p_raw": p_raw,
        "s_raw": s_raw,
        "verify": lambda: verifier.verify("GET", URL, headers, access_token=token, jkt=jkt),
        "nosig_verify": lambda: nosig.verify("GET", URL, headers, access_token=token, jkt=jkt),
        "middleware": mw_dpop, "bearer": mw_bearer,
        "bare": lambda: vkey.verify(alg_, signing_input, signature),
    }


def measure(alg: str) -> Dict[str, float]:
    from oidc_guard import dpop as d
    from oidc_guard.dpop import verifier as dv
    from oidc_guard._jws import b64decode_std as _b64decode_std, parse_json_object as _parse_json_object

    f = setup(alg)
    verifier, headers, proof, token, thumb = f["verifier"], f["headers"], f["proof"], f["token"], f["thumb"]
    h_raw, p_raw, s_raw, payload_raw, payload = f["h_raw"], f["p_raw"], f["s_raw"], f["payload_raw"], f["payload"]
    alg_, vkey, mw, env = f["alg"], f["vkey"], f["mw"], f["env"]
    out: Dict[str, float] = {}
    out["verify()"] = best(f["verify"])
    out["bare verify (VerifyKey.verify)"] = best(lambda: vkey.verify(alg_, f["signing_input"], f["signature"]))
    out["verify(), signature no-op"] = best(f["nosig_verify"])
    out["middleware DPoP request, signature no-op"] = best(f["middleware"])
    out["middleware Bearer request"] = best(f["bearer"])
    out["middleware DPoP - Bearer"] = out["middleware DPoP request, signature no-op"] - out["middleware Bearer request"]

    # Pieces of verify(), in isolation.
    raw = proof.encode("ascii")
    out["  _header_values(list) (verify())"] = best(lambda: dv._header_values(headers, "DPoP"))
    out["  _split_field(value) (middleware)"] = best(lambda: dv._split_field(proof))
    out["  isascii + encode + 2 finds + 3 slices"] = best(
        lambda: proof.isascii() and (raw.find(b"."), raw.find(b".", 30), raw[:30], raw[31:40], raw[41:]))
    table = d._SEGMENT_TO_STD_OR_BAD
    p_std, s_std = p_raw.translate(table), s_raw.translate(table)
    out["  2 translates to std-or-'!' + '!' checks"] = best(
        lambda: b"!" in p_raw.translate(table) or b"!" in s_raw.translate(table))
    out["  b64 decode payload + signature"] = best(lambda: (_b64decode_std(p_std), _b64decode_std(s_std)))
    out["  memo lookup (hash of the header bytes)"] = best(lambda: verifier._header_memo.data.get(h_raw + b""))
    out["  payload JSON (duplicate check)"] = best(lambda: _parse_json_object(payload_raw, "payload"))
    htu = payload["htu"]
    out["  normalize_htu x2 (memo hits)"] = best(lambda: (d.normalize_htu(htu), d.normalize_htu(URL)))
    out["  ath: SHA-256 of the token, base64url"] = best(lambda: d.access_token_hash(token))
    jti = payload["jti"]
    prefix = dv._REPLAY_NAMESPACE + thumb.encode("ascii") + b"\x00"
    out["  replay key (sha256 hexdigest)"] = best(
        lambda: "dpop:jti:" + hashlib.sha256(prefix + jti.encode("utf-8", "surrogatepass")).hexdigest())
    out["  _record (key + accept-all store)"] = best(lambda: verifier._record(prefix, jti, payload["iat"], time.time()))
    out["  DPoPProof(...)"] = best(lambda: d.DPoPProof(thumb, jti, float(payload["iat"]), "GET", htu, alg_, None))
    # Pieces of the middleware.
    out["  mw.request_url(environ)"] = best(lambda: mw.request_url(env))
    return out


def main(argv: List[str]) -> None:
    algs = argv or ["ES256", "EdDSA", "RS256"]
    results = {alg: measure(alg) for alg in algs}
    rows = list(next(iter(results.values())))
    print("DPoP proof check, us per call (min of 7 repeats)")
    print(f"{'':46}" + "".join(f"{alg:>9}" for alg in algs))
    for row in rows:
        print(f"{row:46}" + "".join(f"{results[alg][row]:9.2f}" for alg in algs))


if __name__ == "__main__":
    main(sys.argv[1:])
