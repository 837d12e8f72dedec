#!/usr/bin/env python
"""Instruction count of ``TokenValidator.validate_access_token``: figures
that do not depend on the load of a shared machine (bench/run.py gives
times, which do).

    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=builtin_sorted \\
        --callgrind-out-file=/dev/null python bench/validator_icount.py RS256 new 2000

As bench/dpop_icount.py: only the code run inside ``sorted()`` is counted,
``sorted(range(N), key=...)`` calls the measured step N times; divide the
"Collected" total valgrind prints by N for instructions per call.  Steps,
with the IdentityServer v3 shaped token of bench/run.py (benchkit.issuer.mint):

* ``new``: the defaults (``cache_size=10000``) fed 10,001 distinct tokens in
  turn, the cache already full: every call verifies a token the validator
  has not seen, stores it and evicts the least recently used entry (the
  "new token, cache on" row of bench/run.py; ``--pool N`` for a smaller
  cache, ``cache_size=N`` fed N + 1 tokens);
* ``cached``: one token, a verified-token cache hit (a new ``str`` per call,
  as a server slices it out of its request);
* ``cold``: ``cache_size=0``: parse, verify and check every call;
* ``bare``: the key's verify alone (``VerifyKey.verify`` with the signing
  input and signature prepared in advance), the floor.

The tokens are minted by a helper process that this script starts
(``--serve``, the issuer on 127.0.0.1): it runs outside valgrind, which
would take minutes to sign 10,001 RS256 tokens.  Needs valgrind (Debian
package); not part of ``bench/run.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any, Callable, List

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

DEFAULT_POOL = 10000  # TokenValidator's default cache_size


def serve(alg: str, count: int) -> None:
    """The helper process: an issuer, ``count`` tokens on one stdout line,
    then serve discovery and the JWKS until stdin closes."""
    from benchkit import AUDIENCE
    from benchkit.issuer import mint, start_issuer

    issuer, _ = start_issuer([alg])
    now = int(time.time())
    tokens = [mint(issuer, alg, now, n=i) for i in range(count)]
    sys.stdout.write(json.dumps({"issuer": issuer.issuer, "audience": AUDIENCE, "tokens": tokens}) + "\n")
    sys.stdout.flush()
    sys.stdin.read()  # until the measuring process ends
    issuer.stop()


def main(argv: List[str]) -> None:
    if argv[:1] == ["--serve"]:
        serve(argv[1], int(argv[2]))
        return
    pool = DEFAULT_POOL
    if "--pool" in argv:
        at = argv.index("--pool")
        pool = int(argv[at + 1])
        del argv[at:at + 2]
    alg, step, n = argv[0], argv[1], int(argv[2])
    count = pool + 1 if step == "new" else 1
    helper = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve", alg, str(count)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert helper.stdout is not None
        data = json.loads(helper.stdout.readline())
        run(alg, step, n, pool, data)
    finally:
        assert helper.stdin is not None
        helper.stdin.close()
        helper.wait(timeout=30)


def run(alg: str, step: str, n: int, pool: int, data: Any) -> None:
    from oidc_guard import TokenValidator

    issuer, audience = data["issuer"], data["audience"]
    # Each stored as "." + token: the call slices a new str, as a server does.
    tokens = ["." + t for t in data["tokens"]]
    fn: Callable[[int], Any]
    if step == "new":
        validator = TokenValidator(issuer, audience=audience, cache_size=pool)
        for padded in tokens:  # fill the cache: from now on every call misses and evicts
            validator.validate_access_token(padded[1:])
        count = len(tokens)
        assert len(validator._cache or ()) == pool
        state = [-1]

        def fn(i: int) -> Any:
            # the next token in turn (warm-up included): always the one
            # evicted longest ago, so always a miss
            at = state[0] = (state[0] + 1) % count
            return validator.validate_access_token(tokens[at][1:])
    elif step in ("cached", "cold"):
        validator = TokenValidator(issuer, audience=audience, cache_size=0 if step == "cold" else DEFAULT_POOL)
        padded = tokens[0]

        def fn(i: int) -> Any:
            return validator.validate_access_token(padded[1:])
    elif step == "bare":
        validator = TokenValidator(issuer, audience=audience)
        token = tokens[0][1:]
        validator.validate_access_token(token)
        header = json.loads(_b64(token.split(".")[0]))
        key = validator.keys.get(header.get("kid"), header["alg"])
        signing_input = token.rsplit(".", 1)[0].encode("ascii")
        signature = _b64(token.rsplit(".", 1)[1])
        assert key.verify(header["alg"], signing_input, signature)

        def fn(i: int) -> Any:
            return key.verify(alg, signing_input, signature)  # True
    else:
        raise SystemExit(f"unknown step {step!r}: new, cached, cold or bare")
    for i in range(50):  # warm: memos filled, code objects specialised (3.11)
        fn(i)
    # the key is i itself, so that sorted() has ints to compare at the end
    sorted(range(n), key=lambda i: (fn(i), i)[1])


def _b64(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


if __name__ == "__main__":
    main(sys.argv[1:])
