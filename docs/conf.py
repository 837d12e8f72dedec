"""Sphinx configuration for the oidc_guard documentation.

Build (offline, warnings are errors; tests/test_docs.py runs exactly this):

    .venv/bin/python -m sphinx -W --keep-going -n -b html docs build/docs

Pages are Markdown (MyST) so every feature's page is plain ``docs/*.md``;
the API reference comes from the docstrings (autodoc).  No intersphinx: the
build must not need the network, so references to the standard library and
to third-party packages are listed in ``nitpick_ignore_regex`` below instead
of being resolved remotely.  Internal references stay nitpicky.
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)

import oidc_guard  # noqa: E402

project = "oidc_guard"
author = "oidc_guard contributors"
copyright = "oidc_guard contributors"
release = oidc_guard.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "README.md", "Thumbs.db", ".DS_Store"]
templates_path: list = []

# --- MyST -------------------------------------------------------------------
# heading anchors: [text](page.md#a-heading) links are checked at build time
# (a missing anchor is a warning, hence an error with -W).
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist", "fieldlist"]
# Cross-references that MyST cannot resolve are warnings (myst.xref_missing).
suppress_warnings: list = []

# --- autodoc ----------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True}
# A class documents its members in the module where it is defined; re-exports
# (oidc_guard.flask.ConfigurationError, ...) are skipped, see _skip_reexport.
autoclass_content = "both"

# --- nitpicky, offline --------------------------------------------------------
nitpicky = True
# Names outside this project that autodoc or the docstrings mention.  Without
# intersphinx they cannot resolve; everything under oidc_guard must.
nitpick_ignore_regex = [
    (r"py:.*", r"(typing|typing_extensions|collections\.abc|types)\..*"),
    (r"py:.*", r"(Any|Optional|Union|Callable|Mapping|MutableMapping|Sequence|Iterable|Iterator|"
               r"Dict|List|Tuple|Set|FrozenSet|Type|TypeVar|NoReturn|Literal|Protocol)"),
    (r"py:.*", r"(str|bytes|int|float|bool|dict|list|tuple|set|frozenset|object|type|None|"
               r"Exception|ValueError|TypeError|KeyError|OSError|RuntimeError|BaseException)"),
    (r"py:.*", r"(datetime|logging|ssl|socket|threading|http|json|argparse|pathlib|os|io)(\..*)?"),
    (r"py:.*", r"(flask|werkzeug|click|redis|cryptography|jwt|pytest|_pytest|cachetools)(\..*)?"),
    (r"py:.*", r"(starlette|fastapi|pydantic|uvicorn|httpx)(\..*)?"),
    (r"py:.*", r"(HTTPConnection|SecurityScopes|SecurityBase|HTTPException|WebSocketException)"),
    (r"py:.*", r"(Flask|Blueprint|Response|Request|LocalProxy|WSGIApplication|StartResponse|WSGIEnvironment)"),
    (r"py:.*", r"(T|F|_T|_F|P|R)"),
    (r"py:.*", r"collections\..*"),
    # private helpers (not documented by design) named in signatures or docstrings
    (r"py:.*", r"(oidc_guard\.[A-Za-z_.]*\.)?_[A-Za-z][A-Za-z0-9_]*"),
    # and whatever lives in a private module (a base class autodoc shows)
    (r"py:.*", r"oidc_guard\._[A-Za-z0-9_]+(\..*)?"),
    # LocalIssuer's plain instance attributes carry no autodoc comments yet;
    # the docstring describes them in prose.
    (r"py:attr", r"(LocalIssuer\.)?(discovery_overrides|jwks_max_age|jwk_overrides|extra_jwks|users|clients)"),
    # the MCP Python SDK (oidc_guard.mcp)
    (r"py:.*", r"(mcp|starlette)(\..*)?"),
]

# --- HTML ---------------------------------------------------------------------
html_theme = "furo"
html_title = f"oidc_guard {release}"
html_static_path = ["_static"]
# Tables that wrap instead of scrolling sideways on a phone (see the file).
html_css_files = ["custom.css"]
html_show_sourcelink = False
html_theme_options = {
    "navigation_with_keys": True,
}


# --- re-exported names ----------------------------------------------------------
# Docstrings say :class:`~oidc_guard.InvalidToken` (the public import path)
# while autodoc documents the class where it is defined
# (oidc_guard.errors.InvalidToken).  Resolve such references, and bare names
# such as :class:`InvalidRequest`, to the defining module's entry; anything
# still unresolved stays a warning (an error under -W).
def _resolve_reexport(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    name = target.rsplit(".", 1)[-1]
    prefix = target[: -len(name)].rstrip(".")
    if prefix not in ("", "oidc_guard"):
        return None
    obj = getattr(oidc_guard, name, None)
    module = getattr(obj, "__module__", None)
    if obj is None or not module or not module.startswith("oidc_guard") or module + "." + name == target:
        return None
    domain = env.get_domain("py")
    new_target = module + "." + name
    for objtype in ("class", "exc", "function", "data", "attribute"):
        role = node.get("reftype")
        found = domain.find_obj(env, "", "", new_target, role, 1)
        if found:
            node["reftarget"] = new_target
            return domain.resolve_xref(env, node["refdoc"], app.builder, role, new_target, node, contnode)
    return None


def setup(app):
    app.connect("missing-reference", _resolve_reexport)

# A favicon of our own: without one, browsers ask for /favicon.ico and the
# site's browser test would see a 404.
html_favicon = "_static/favicon.svg"
