"""The documented settings are the code's settings, so the two cannot drift.

* docs/configuration.md: the Flask table lists exactly the ``OIDC_GUARD_*``
  keys of ``oidc_guard.config.SETTINGS`` with their keywords, and the
  TokenValidator and BearerMiddleware tables exactly their keywords;
* the OIDCGuard docstring lists exactly the same keys;
* examples/README.md names every environment variable the examples read.

When one of these fails after you added a setting or a keyword: add the row
to the place the message names.
"""

from __future__ import annotations

import ast
import inspect
import os
import re
import sys
from pathlib import Path
from typing import Dict, List, Set

import pytest

from oidc_guard import TokenValidator, config
from oidc_guard.flask import OIDCGuard
from oidc_guard.wsgi import BearerMiddleware

ROOT = Path(__file__).resolve().parents[1]
CONFIGURATION = ROOT / "docs" / "configuration.md"
EXAMPLES = ROOT / "examples"

_ROW = re.compile(r"^\|(.*)\|\s*$")
_FIRST_NAME = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)`")
_KEY = re.compile(r"\bOIDC_GUARD_[A-Z0-9_]*[A-Z0-9]\b")


def _sections(text: str) -> Dict[str, str]:
    """``## heading`` -> the text up to the next heading of level 2."""
    out: Dict[str, str] = {}
    parts = re.split(r"^## +(.*)$", text, flags=re.M)
    for heading, body in zip(parts[1::2], parts[2::2]):
        out[heading.strip()] = body
    return out


def _section(name: str) -> str:
    sections = _sections(CONFIGURATION.read_text(encoding="utf-8"))
    found = [body for heading, body in sections.items() if name in heading]
    assert len(found) == 1, f"docs/configuration.md needs exactly one '## ...{name}...' section, found {len(found)}"
    return found[0]


def _table_rows(body: str) -> List[List[str]]:
    """Cells of every Markdown table row in ``body`` (header and ruler rows left out)."""
    rows = []
    for line in body.splitlines():
        m = _ROW.match(line.strip())
        if not m:
            continue
        cells = [c.strip() for c in m.group(1).split("|")]
        if all(set(c) <= set("-: ") for c in cells):
            continue  # the ruler
        rows.append(cells)
    return rows[1:] if rows else rows  # the first row is the header


def _documented_names(body: str) -> List[str]:
    names = []
    for cells in _table_rows(body):
        m = _FIRST_NAME.match(cells[0])
        assert m, f"table row without a `name` in its first cell: {cells}"
        names.append(m.group(1))
    return names


def _keywords(callable_: object) -> Set[str]:
    return {name for name in inspect.signature(callable_).parameters if name != "self"}


def test_flask_table_lists_exactly_the_settings():
    body = _section("OIDCGuard")
    rows = {}
    for cells in _table_rows(body):
        if not _KEY.fullmatch(cells[0].strip("`")):
            continue
        assert cells[0].strip("`") not in rows, f"{cells[0]} listed twice"
        rows[cells[0].strip("`")] = cells[1].strip("`")
    documented, code = set(rows), set(config.BY_KEY)
    assert not code - documented, f"add to the Flask table of docs/configuration.md: {sorted(code - documented)}"
    assert not documented - code, f"docs/configuration.md lists keys the code does not have: {sorted(documented - code)}"
    for key, keyword in rows.items():
        assert keyword == config.BY_KEY[key].keyword, f"docs/configuration.md: {key} is the keyword {config.BY_KEY[key].keyword}"


def test_configuration_md_names_no_other_key():
    mentioned = set(_KEY.findall(CONFIGURATION.read_text(encoding="utf-8")))
    assert not mentioned - set(config.BY_KEY), f"docs/configuration.md names unknown keys: {sorted(mentioned - set(config.BY_KEY))}"


@pytest.mark.parametrize("name, callable_", [("TokenValidator", TokenValidator), ("BearerMiddleware", BearerMiddleware)])
def test_keyword_tables_list_exactly_the_keywords(name, callable_):
    names = _documented_names(_section(f"`{name}`"))
    assert len(names) == len(set(names)), f"a keyword is listed twice in the {name} table"
    documented, code = set(names), _keywords(callable_)
    assert not code - documented, f"add to the {name} table of docs/configuration.md: {sorted(code - documented)}"
    assert not documented - code, f"the {name} table documents keywords it does not take: {sorted(documented - code)}"


def test_every_flask_setting_is_a_keyword_of_its_target():
    targets = {config.VALIDATOR: _keywords(TokenValidator), config.MIDDLEWARE: _keywords(BearerMiddleware)}
    for row in config.SETTINGS:
        if row.target in targets:
            assert row.keyword in targets[row.target], f"{row.key}: {row.keyword} is no {row.target} keyword"


def test_oidcguard_docstring_lists_exactly_the_settings():
    doc = inspect.getdoc(OIDCGuard) or ""
    listed = re.findall(r"^``(OIDC_GUARD_[A-Z0-9_]+)``", doc, flags=re.M)
    assert len(listed) == len(set(listed))
    documented, code = set(listed), set(config.BY_KEY)
    assert not code - documented, f"add to the OIDCGuard docstring's table: {sorted(code - documented)}"
    assert not documented - code, f"the OIDCGuard docstring lists unknown keys: {sorted(documented - code)}"


# --- examples/README.md ------------------------------------------------------


def _env_reads_in_source() -> Set[str]:
    """Names read from the environment by literal in examples/**/*.py:
    ``os.environ[...]``, ``os.environ.get(...)``, ``os.getenv(...)``, and
    ``.get(...)`` on a local name bound to ``os.environ``."""

    def is_environ(node: ast.AST, aliases: Set[str]) -> bool:
        if isinstance(node, ast.Attribute) and node.attr == "environ":
            return True
        return isinstance(node, ast.Name) and node.id in aliases

    names: Set[str] = set()
    for path in EXAMPLES.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        aliases = {
            target.id
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Attribute) and node.value.attr == "environ"
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        for node in ast.walk(tree):
            key = None
            if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
                func = node.func
                if isinstance(func, ast.Attribute) and func.attr == "get" and is_environ(func.value, aliases):
                    key = node.args[0].value
                elif isinstance(func, ast.Attribute) and func.attr == "getenv":
                    key = node.args[0].value
            elif isinstance(node, ast.Subscript) and is_environ(node.value, aliases):
                if isinstance(node.slice, ast.Constant):
                    key = node.slice.value
            if isinstance(key, str):
                names.add(key)
    return names


class _RecordingEnviron(dict):
    """os.environ stand-in that records every name looked up."""

    def __init__(self, base, seen):
        super().__init__(base)
        self.seen = seen

    def __getitem__(self, key):
        self.seen.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.seen.add(key)
        return super().get(key, default)

    def __contains__(self, key):
        self.seen.add(key)
        return super().__contains__(key)


def _env_reads_at_run_time(monkeypatch, tmp_path) -> Set[str]:
    """Names the contacts API reads when it is built (through its DEFAULTS
    table, which no literal lookup shows)."""
    seen: Set[str] = set()
    monkeypatch.setattr(os, "environ", _RecordingEnviron(os.environ, seen))
    monkeypatch.syspath_prepend(str(EXAMPLES))
    from contacts_api import create_app

    create_app({"CONTACTS_DB_PATH": str(tmp_path / "c.sqlite3")})
    return {name for name in seen if not name.startswith(("FLASK_", "WERKZEUG_", "PYTHON"))}


def test_examples_readme_names_every_environment_variable(monkeypatch, tmp_path):
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", readme))
    static = _env_reads_in_source()
    runtime = _env_reads_at_run_time(monkeypatch, tmp_path)
    assert "WTE_ISSUER" in static and "CONTACTS_API_ISSUER" in runtime  # the scans see something
    read = static | runtime
    assert not read - documented, f"examples/README.md should name these environment variables: {sorted(read - documented)}"


def test_flask_module_docstring_example_runs():
    # The module docstring's example, executed: every name it uses exists.
    import oidc_guard.flask as module

    doc = module.__doc__ or ""
    code = doc.split(".. code-block:: python", 1)[1].split("\n\n``init_app``", 1)[0]
    namespace: Dict[str, object] = {"__name__": "docstring_example"}
    exec(compile(inspect.cleandoc(code), "oidc_guard/flask.py docstring", "exec"), namespace)
    app = namespace["create_app"]()  # type: ignore[operator]
    assert "oidc_guard" in app.extensions and "contacts.contacts" in app.view_functions
