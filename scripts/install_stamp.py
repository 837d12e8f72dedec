"""Install the project into the running venv only when something changed.

    .venv/bin/python scripts/install_stamp.py ensure flask,testing

``ensure`` runs ``pip install --quiet -e ".[EXTRAS]"`` (output kept in
``<venv>/oidc_guard-install.log`` and shown only when pip fails) unless a
stamp file in the venv says that this venv already has this checkout
installed with these extras from the same ``setup.cfg`` and
``pyproject.toml``.  The stamp holds a SHA-256 of those two files, the
extras and the interpreter; it is written only after pip succeeded, and it
is not trusted when ``oidc_guard`` no longer resolves to this checkout (a
fresh clone, a moved repository or a reinstalled venv install again).

Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
from typing import List, Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What decides what pip installs for "-e .[extras]".
INPUTS = ("setup.cfg", "pyproject.toml")


def digest(root: str, extras: str) -> str:
    """SHA-256 over the packaging inputs, the extras and the interpreter."""
    h = hashlib.sha256()
    for name in INPUTS:
        h.update(name.encode() + b"\0")
        try:
            with open(os.path.join(root, name), "rb") as f:
                h.update(f.read())
        except FileNotFoundError:
            h.update(b"<missing>")
        h.update(b"\0")
    h.update(("extras=" + ",".join(sorted(filter(None, extras.split(","))))).encode() + b"\0")
    h.update(f"python={sys.executable} {sys.version}".encode())
    return h.hexdigest()


def stamp_path(extras: str, prefix: Optional[str] = None) -> str:
    """The stamp file for these extras inside the venv (``sys.prefix``)."""
    name = "-".join(sorted(filter(None, extras.split(",")))) or "base"
    return os.path.join(prefix or sys.prefix, f".oidc_guard-install-{name}.sha256")


def installed_here(root: str) -> bool:
    """True when ``import oidc_guard`` would load this checkout's package."""
    try:
        spec = importlib.util.find_spec("oidc_guard")
    except (ImportError, ValueError):
        return False
    origin = getattr(spec, "origin", None)
    if not origin:
        return False
    return os.path.realpath(origin) == os.path.realpath(os.path.join(root, "oidc_guard", "__init__.py"))


def is_current(root: str, extras: str, stamp: str) -> bool:
    try:
        with open(stamp, encoding="ascii") as f:
            recorded = f.read().strip()
    except (OSError, UnicodeDecodeError):
        return False
    return recorded == digest(root, extras)


def ensure(root: str, extras: str, *, installer: Optional[Sequence[str]] = None,
           stamp: Optional[str] = None, check_installed: bool = True) -> bool:
    """Install if needed; True when an install ran.  Raises
    ``subprocess.CalledProcessError`` (after printing pip's output) when
    the install fails; the stamp is then left as it was."""
    stamp = stamp or stamp_path(extras)
    if is_current(root, extras, stamp) and (not check_installed or installed_here(root)):
        return False
    target = "." + (f"[{extras}]" if extras else "")
    cmd: List[str] = list(installer) if installer is not None else [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", target,
    ]
    log_path = os.path.join(os.path.dirname(stamp), "oidc_guard-install.log")
    print(f"installing oidc_guard{target[1:]} into {os.path.dirname(stamp)} (setup.cfg or pyproject.toml changed,"
          " or first run) ...", file=sys.stderr)
    with open(log_path, "wb") as log:
        result = subprocess.run(cmd, cwd=root, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        with open(log_path, encoding="utf-8", errors="replace") as log:
            sys.stderr.write(log.read())
        raise subprocess.CalledProcessError(result.returncode, cmd)
    # Written last, and atomically: an interrupted install is retried next time.
    tmp = stamp + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(digest(root, extras) + "\n")
    os.replace(tmp, stamp)
    return True


def main(argv: Sequence[str]) -> int:
    if len(argv) != 2 or argv[0] != "ensure":
        print("usage: python scripts/install_stamp.py ensure EXTRA[,EXTRA...]", file=sys.stderr)
        return 2
    try:
        ensure(ROOT, argv[1])
    except subprocess.CalledProcessError as exc:
        print(f"install_stamp: pip install failed (exit {exc.returncode}); see the output above", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
