"""The benchmark's sections and their registry.

A section is one measured table of ``python bench/run.py`` (``--only NAME``
runs only that one).  To add a section:

1. write ``bench/sections/NAME.py`` with a function ``run(ctx: Context) ->
   None`` that measures and prints its table (pick the sample counts from
   ``ctx.quick``), and at the end of the module
   ``register(Section("NAME", run))``;
2. add ``"NAME"`` to :data:`MODULES` (the run order);
3. describe its rows in bench/README.md.

Sections run in :data:`MODULES` order; those with ``shared_issuer=True``
(the default) get ``ctx.issuer``, the issuer the runner started (RS256,
ES256 and EdDSA keys).  Sections with ``shared_issuer=False`` run after it is
stopped (they start fresh processes with their own issuers).

A section that measures in a separate process registers a *child*:
``register_child("name", fn)``; :func:`run_child` runs ``python bench/run.py
--_child name ARGS...`` in a new process, which calls ``fn(ARGS)`` and
prints its JSON-serialisable result.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Sequence

from benchkit import RUNNER

#: Section modules, in run order.
MODULES = ("tokens", "reference", "routing", "dpop", "web", "django", "asgi", "memory", "introspection")


@dataclass
class Context:
    """What a section gets from the runner."""

    issuer: Any  # LocalIssuer (or the fallback MiniIssuer); None for shared_issuer=False sections
    quick: bool  # --quick: fewer, shorter samples


@dataclass(frozen=True)
class Section:
    name: str
    run: Callable[[Context], None]
    shared_issuer: bool = True


SECTIONS: Dict[str, Section] = {}
CHILDREN: Dict[str, Callable[[List[str]], Any]] = {}


def register(section: Section) -> Section:
    if section.name in SECTIONS:
        raise ValueError(f"bench section {section.name!r} registered twice")
    SECTIONS[section.name] = section
    return section


def register_child(name: str, fn: Callable[[List[str]], Any]) -> None:
    if name in CHILDREN:
        raise ValueError(f"bench child {name!r} registered twice")
    CHILDREN[name] = fn


def load() -> Dict[str, Section]:
    """Import every section module (each registers itself); in run order."""
    for module in MODULES:
        importlib.import_module(f"sections.{module}")
    return {name: SECTIONS[name] for name in MODULES if name in SECTIONS}


def run_child(name: str, args: Sequence[str], *, timeout: float, what: str) -> Any:
    """Run child ``name`` in a fresh process; its result, or RuntimeError
    naming ``what`` with the child's error output."""
    out = subprocess.run([sys.executable, RUNNER, "--_child", name, *args],
                         capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{what} failed: {out.stderr.strip()[-2000:] or out.stdout.strip()}")
    return json.loads(out.stdout)


def child_main(name: str, args: List[str]) -> int:
    """Entry of ``run.py --_child name ARGS...``: print the result as JSON."""
    load()
    print(json.dumps(CHILDREN[name](args)))
    return 0
