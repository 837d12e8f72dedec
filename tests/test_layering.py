"""The shape of the package (docs/architecture.md): no import circle, no
module over 600 lines, and no module importing another module's private
names (underscore names), except from the underscore modules made to be
shared.  Read from the source with ``ast``: imports inside functions and
under ``TYPE_CHECKING`` count too."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

ROOT = Path(__file__).resolve().parent.parent / "oidc_guard"
# Underscore modules made to be shared: their underscore names are theirs to give.
SHARED = {"_jws", "_checks", "_bounded", "_flight"}


def modules() -> Dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        name = ".".join(("oidc_guard",) + path.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def imports(name: str, path: Path) -> List[ast.ImportFrom]:
    return [n for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))) if isinstance(n, ast.ImportFrom)]


def absolute(name: str, path: Path, node: ast.ImportFrom) -> str:
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    base = parts[: len(parts) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def test_no_import_circle():
    mods = modules()
    edges: Dict[str, Set[str]] = {m: set() for m in mods}
    for m, path in mods.items():
        for node in imports(m, path):
            base = absolute(m, path, node)
            package = m if path.name == "__init__.py" else m.rsplit(".", 1)[0]
            for target in [base] + [f"{base}.{a.name}" for a in node.names]:
                if target in mods and target not in (m, package):
                    edges[m].add(target)
    circles: List[List[str]] = []
    state: Dict[str, int] = {}
    stack: List[str] = []

    def visit(v: str) -> None:
        state[v] = 1
        stack.append(v)
        for w in sorted(edges[v]):
            if state.get(w) == 1:
                circles.append(stack[stack.index(w):] + [w])
            elif w not in state:
                visit(w)
        stack.pop()
        state[v] = 2

    for v in sorted(edges):
        if v not in state:
            visit(v)
    assert circles == []


def test_no_module_over_600_lines():
    long = {str(p.relative_to(ROOT)): n for p in ROOT.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 600}
    assert long == {}


def test_no_private_name_imported_from_another_module():
    mods = modules()
    found = []
    for m, path in mods.items():
        for node in imports(m, path):
            base = absolute(m, path, node)
            if not base.startswith("oidc_guard") or base.rsplit(".", 1)[-1] in SHARED:
                continue
            for alias in node.names:
                private = alias.name.startswith("_") and not alias.name.startswith("__")
                if private and f"{base}.{alias.name}" not in mods:  # a module itself is fine
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: from {base} import {alias.name}")
    assert found == []
