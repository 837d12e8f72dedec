#!/usr/bin/env python
"""oidc_guard benchmark: one command, figures side by side.

    python bench/run.py            # full run (about 2-3 minutes)
    python bench/run.py --quick    # a fast, rougher run (about 30 s)
    python bench/run.py --only tokens --only memory   # some sections only

Sections (see bench/README.md for what each figure means; one module each
under bench/sections/, registered in bench/sections/__init__.py, which says
how to add one):

1. tokens: token validation, us/op, for RS256, ES256 and EdDSA on the same
   IdentityServer-style token: bare ``cryptography`` verify (the floor),
   PyJWT ``jwt.decode`` with a pre-loaded key, PyJWT + ``PyJWKClient``,
   Authlib ``authlib.jose``, oidc_guard cold (``cache_size=0``) and cached.
2. web: requests/s of a Flask hello-world JSON route, open vs protected with
   ``require_scope`` and a cached token: bare WSGI call, Flask test client,
   gunicorn (1 gthread worker) on 127.0.0.1 under a bounded load.
3. memory: memory of the verified-token cache: 100,000 distinct tokens, and
   the bound with a smaller ``cache_size``.
4. introspection: reference tokens (RFC 7662): a cached reference token vs a
   cached JWT, introspection calls under 16 threads and 4 gunicorn workers
   (with and without Redis), the in-flight bound under a junk flood, and
   Redis killed mid-load.

Every figure is a median over interleaved samples (each contender gets one
sample per round, rounds repeat), so a burst of load from other processes
hits all contenders alike.  Nothing here listens on anything but 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from typing import List, Optional, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# Run from a fresh clone without installing: the repo's package first; the
# bench directory holds the sections and their helpers (benchkit).
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import sections  # noqa: E402
from benchkit import ALGS, timing  # noqa: E402
from benchkit.issuer import start_issuer  # noqa: E402


def machine() -> str:
    lines = [f"python {platform.python_version()} ({platform.python_implementation()}) on {platform.platform()}"]
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.split(":")[0].strip() in ("Model name", "CPU(s)", "Hypervisor vendor"):
                lines.append(" ".join(line.split()))
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        lines.append("load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    except OSError:
        pass
    versions = []
    from importlib import metadata

    for dist in ("cryptography", "PyJWT", "Authlib", "Flask", "Werkzeug", "gunicorn", "cachetools"):
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{dist} -")
    lines.append(", ".join(versions))
    return "\n".join(lines)



def main(argv: Optional[Sequence[str]] = None) -> int:
    args_list: List[str] = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["--_child"]:  # a section's measurement in a fresh process
        return sections.child_main(args_list[1], args_list[2:])
    registry = sections.load()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer, shorter samples (rough figures)")
    parser.add_argument("--only", choices=tuple(registry), action="append",
                        help="run only this section (repeatable)")
    parser.add_argument("--wall", action="store_true",
                        help="time in-process samples with wall-clock time instead of this process's CPU time")
    args = parser.parse_args(args_list)

    chosen = [section for name, section in registry.items() if not args.only or name in args.only]
    if args.wall:
        timing.CLOCK = time.perf_counter

    started = time.time()
    print("oidc_guard benchmark" + (" (--quick)" if args.quick else "")
          + ("; in-process samples in wall-clock time" if args.wall
             else "; in-process samples in CPU time of this process (time.process_time)"))
    print(machine())
    issuer, how = start_issuer(ALGS)
    print(f"issuer: {how} at {issuer.issuer}")
    print()
    try:
        for section in chosen:
            if section.shared_issuer:
                section.run(sections.Context(issuer=issuer, quick=args.quick))
    finally:
        issuer.stop()
    for section in chosen:
        if not section.shared_issuer:
            section.run(sections.Context(issuer=None, quick=args.quick))
    print(f"total time {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
