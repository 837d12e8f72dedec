#!/usr/bin/env python
"""Instruction count of the Python work of a DPoP proof check: a figure that
does not depend on the load of a shared machine (bench/dpop_pieces.py gives
times, which do).

    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=builtin_sorted \\
        --callgrind-out-file=/dev/null python bench/dpop_icount.py RS256 verify 2000

Only the code run inside ``sorted()`` is counted: ``sorted(range(N),
key=...)`` calls the measured step N times.  Divide the "Collected" total
valgrind prints by N for instructions per call.  Steps: ``verify``
(``verify``: ``DPoPVerifier.verify`` as is; ``nosig_verify``: ``DPoPVerifier.verify`` with the proof's signature check made a no-op: what
a proof costs beyond its signature) and ``middleware`` (a ``BearerMiddleware``
DPoP request with a cached token, signature no-op) and ``bearer`` (the same
request as Bearer, to subtract).  Needs valgrind (Debian package); not part
of ``bench/run.py``.
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from dpop_pieces import setup  # noqa: E402


def main() -> None:
    alg, step, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    fns = setup(alg)
    fn = fns[step]
    for _ in range(50):  # warm: memos filled, code objects specialised (3.11)
        fn()
    sorted(range(n), key=lambda i: fn())


if __name__ == "__main__":
    main()
