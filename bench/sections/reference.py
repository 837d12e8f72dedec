"""Section "reference": today's validator next to the first round's, in one
process on this host, so that the issue 9 targets can be read on any host.

Why: the targets (a new token with the cache on at most 1.6x the bare verify
for RS256, 1.25x for ES256) are ratios measured on the first round's host, a
quiet Intel Xeon where the first round's code read cold 1.56x / 1.18x and a
new token ("cache miss": verify + store) 1.94x / 1.31x (bench/README.md,
"Figures" of 2026-11-23).  On another host the balance between OpenSSL's
verify and the interpreter differs: on the AMD EPYC hosts of later rounds
the *same first-round code* reads about 1.9x cold and 2.9x new for RS256.  A
ratio to the bare verify alone therefore says as much about the host as
about the code.

So this section imports the first round's package (``git archive`` of
:data:`ROUND1_COMMIT` into a temporary directory, as ``oidc_guard_round1``)
and times, interleaved, per alg: the bare verify, today's cold
(``cache_size=0``) and new-token paths, and the first round's.  It prints
the ratios on this host, the share of the first round's cost above the bare
verify that today's code still spends (``overhead today / round 1``), and
that share applied to the first round's host (``projected``): the figure the
targets are about.  The new-token pool is ``POOL + 1`` distinct tokens
through ``cache_size=POOL`` (every call verifies, stores and evicts).

Needs the repository's git history (a clone, not an archive); without it the
section says so and prints nothing else.
"""

from __future__ import annotations

import atexit
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from typing import Any, Callable, Dict, Optional, Tuple

from benchkit import AUDIENCE, ROOT
from benchkit.contenders import bare_verifier, rotating
from benchkit.issuer import kid_for, mint
from benchkit.timing import interleaved, med, paired_ratio
from sections import Context, Section, register

#: The last commit of the first round (2026-11-23), whose bench/README.md
#: "Figures" the issue 9 targets were set against.
ROUND1_COMMIT = "22b82e2"
#: On the first round's host: (cold / bare, cache miss / bare), per alg.
ROUND1_HOST = {"RS256": (1.56, 1.94), "ES256": (1.18, 1.31)}
TARGETS = {"RS256": 1.6, "ES256": 1.25}
ALGS = ("RS256", "ES256")


def round1_validator_class() -> Tuple[Optional[Any], str]:
    """(TokenValidator of the first round, "") or (None, why not)."""
    try:
        archive = subprocess.run(["git", "-C", ROOT, "archive", "--format=tar", ROUND1_COMMIT, "oidc_guard"],
                                 capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"git archive failed: {exc}"
    if archive.returncode != 0:
        return None, f"commit {ROUND1_COMMIT} is not in this checkout ({archive.stderr.decode(errors='replace').strip()})"
    where = tempfile.mkdtemp(prefix="oidc_guard_round1_")
    atexit.register(shutil.rmtree, where, True)  # imported from there until the run ends
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(where)  # our own history: a git archive of one commit's oidc_guard/
    os.rename(os.path.join(where, "oidc_guard"), os.path.join(where, "oidc_guard_round1"))
    sys.path.insert(0, where)
    try:
        from oidc_guard_round1.validator import TokenValidator as Round1  # type: ignore[import-not-found]
    finally:
        sys.path.remove(where)
    return Round1, ""


def section_reference(issuer: Any, rounds: int, target: float, pool: int) -> Dict[str, Any]:
    from oidc_guard import TokenValidator

    Round1, why = round1_validator_class()
    if Round1 is None:
        return {"skipped": why}
    now = int(time.time())
    results: Dict[str, Any] = {}
    for alg in ALGS:
        tokens = ["." + mint(issuer, alg, now, n=100 + i) for i in range(pool + 1)]
        cases: Dict[str, Callable[[], Any]] = {
            "bare": bare_verifier(issuer.public_key(kid_for(issuer, alg)), alg, tokens[0][1:])}
        for name, cls in (("today", TokenValidator), ("round1", Round1)):
            cold = cls(issuer.issuer, audience=AUDIENCE, cache_size=0)
            new = cls(issuer.issuer, audience=AUDIENCE, cache_size=pool)
            for token in tokens:  # both accept every token; the new-token cache is full
                cold.validate_access_token(token[1:])
                new.validate_access_token(token[1:])
            cases[f"{name} cold"] = rotating(cold, tokens)
            cases[f"{name} new"] = rotating(new, tokens)
        results[alg] = interleaved(cases, rounds, target)
    return results


def print_reference(res: Dict[str, Any], pool: int) -> None:
    print(f"Today's validator next to the first round's ({ROUND1_COMMIT}), same process, this host; us/op,")
    print(f"medians of interleaved samples; new token = {pool + 1:,} distinct tokens through cache_size={pool:,}")
    if "skipped" in res:
        print(f"skipped: {res['skipped']}")
        print()
        return
    rows = ("bare", "round1 cold", "today cold", "round1 new", "today new")
    print(f"{'':28}" + "".join(f"{alg + ' us':>11}{'x bare':>8}{'/round':>8}" for alg in ALGS))
    for row in rows:
        line = f"{row:28}"
        for alg in ALGS:
            xs = res[alg][row]
            line += f"{med(xs) * 1e6:11.2f}{med(xs) / med(res[alg]['bare']):8.2f}{paired_ratio(xs, res[alg]['bare']):8.2f}"
        print(line)
    print("(x bare: ratio of the medians; /round: median of the per-round ratios)")
    print()
    print(f"{'':44}" + "".join(f"{alg:>10}" for alg in ALGS))
    for kind, index in (("cold", 0), ("new", 1)):
        shares, projected = [], []
        for alg in ALGS:
            bare = paired_ratio(res[alg]["bare"], res[alg]["bare"])
            today = paired_ratio(res[alg][f"today {kind}"], res[alg]["bare"]) - bare
            round1 = paired_ratio(res[alg][f"round1 {kind}"], res[alg]["bare"]) - bare
            share = today / round1
            shares.append(share)
            projected.append(1 + share * (ROUND1_HOST[alg][index] - 1))
        print(f"{kind + ': overhead today / round 1':44}" + "".join(f"{s:10.2f}" for s in shares))
        label = f"{kind}: projected on the round-1 host (x bare)"
        line = f"{label:44}" + "".join(f"{p:10.2f}" for p in projected)
        if kind == "new":
            line += "   target " + ", ".join(f"{alg} <= {TARGETS[alg]}" for alg in ALGS)
        print(line)
    print(f"(round-1 host: cold {ROUND1_HOST['RS256'][0]}x / {ROUND1_HOST['ES256'][0]}x, "
          f"new {ROUND1_HOST['RS256'][1]}x / {ROUND1_HOST['ES256'][1]}x for RS256 / ES256, its bench/README.md)")
    print()


def run(ctx: Context) -> None:
    rounds, target, pool = (5, 0.02, 500) if ctx.quick else (15, 0.05, 2000)
    print_reference(section_reference(ctx.issuer, rounds, target, pool), pool)


register(Section("reference", run))
