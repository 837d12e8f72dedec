"""The documentation site: it builds offline with no warning (nitpicky,
warnings are errors), every internal link and anchor of the built HTML
resolves, and every runnable code example in docs/*.md runs (the convention
is in docs/contributing.md, the machinery in tests/docs_site.py)."""

from __future__ import annotations

import html.parser
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set, Tuple
from urllib.parse import unquote, urlsplit

import pytest

import docs_site

pytest.importorskip("sphinx", reason='pip install -e ".[docs]"')
pytest.importorskip("myst_parser", reason='pip install -e ".[docs]"')
pytest.importorskip("furo", reason='pip install -e ".[docs]"')


@pytest.fixture(scope="module")
def site() -> Path:
    result = docs_site.build_site()
    if result.returncode != 0:
        pytest.fail(
            "sphinx-build -W -n failed (every warning is an error):\n" + result.stderr + result.stdout,
            pytrace=False,
        )
    return docs_site.BUILD


def test_site_builds_without_warnings(site):
    result = docs_site.build_site()
    assert result.returncode == 0
    assert "WARNING" not in result.stderr and "ERROR" not in result.stderr, result.stderr
    for page in docs_site.pages():
        assert (site / (page.stem + ".html")).is_file(), f"{page.name} was not built"


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: Set[str] = set()
        self.links: List[Tuple[str, str]] = []  # (attribute, value)

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("id", "name") and value:
                self.ids.add(value)
            if value and ((tag == "a" and name == "href") or (tag in ("link", "script", "img") and name in ("href", "src"))):
                self.links.append((name, value))


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_every_internal_link_and_anchor_resolves(site):
    """The offline link check: every href/src that is not an external URL
    must name a built file, and its #fragment an id in that file."""
    parsed: Dict[Path, _Links] = {}

    def links_of(path: Path) -> _Links:
        if path not in parsed:
            parsed[path] = _parse(path)
        return parsed[path]

    broken: List[str] = []
    checked = 0
    for page in sorted(site.rglob("*.html")):
        if "_modules" in page.parts:
            continue
        for _attr, value in links_of(page).links:
            parts = urlsplit(value)
            if parts.scheme or parts.netloc or value.startswith("mailto:"):
                continue  # external: not fetched (no network at build time)
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            checked += 1
            if not target.is_file():
                broken.append(f"{page.relative_to(site)}: {value} -> missing file")
                continue
            if parts.fragment and target.suffix == ".html":
                if unquote(parts.fragment) not in links_of(target).ids:
                    broken.append(f"{page.relative_to(site)}: {value} -> no id {parts.fragment!r}")
    assert checked > 100, f"only {checked} internal links found: is the crawl reading the site?"
    assert not broken, "broken internal links:\n" + "\n".join(broken)


def test_the_quickstart_has_sidebar_navigation_to_every_page(site):
    links = {value.split("#")[0] for _a, value in _parse(site / "quickstart.html").links}
    for page in docs_site.pages():
        if page.stem not in ("index", "quickstart"):
            assert page.stem + ".html" in links, f"{page.name} is not in the navigation"


@pytest.mark.parametrize("page", [p.name for p in docs_site.pages()])
def test_examples_run(page):
    """Every runnable ```python block of the page runs against a LocalIssuer
    on loopback (docs/contributing.md, "Code examples")."""
    result = subprocess.run(
        [sys.executable, str(Path(docs_site.__file__)), str(docs_site.DOCS / page)],
        cwd=str(docs_site.ROOT), capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, f"an example in docs/{page} failed:\n{result.stderr}{result.stdout}"


def test_the_example_convention_is_followed():
    """A python block either runs or says why not; marker mistakes fail."""
    runnable = skipped = 0
    for page in docs_site.pages():
        for block in docs_site.code_blocks(page):
            if block.info in docs_site.PYTHON_INFO:
                if block.runs:
                    runnable += 1
                else:
                    skipped += 1
                    assert block.marker_arg, f"{block.where}: no-run needs a reason"
            elif block.marker is not None:
                pytest.fail(f"{block.where}: run/no-run markers apply to python blocks only")
    assert runnable >= 5, "the docs should show runnable examples"
    assert runnable > skipped, f"{skipped} python blocks skipped vs {runnable} run: make more of them run"


def test_the_example_harness_catches_a_wrong_example(tmp_path):
    """The harness itself can fail: a page whose example raises is reported
    with its Markdown line, and a no-run block is not run."""
    bad = tmp_path / "bad.md"
    bad.write_text(
        "# Bad\n\n<!-- no-run: would fail -->\n```python\nraise SystemExit(3)\n```\n\n"
        "```python\nfrom oidc_guard import TokenValidator\n"
        "v = TokenValidator('https://idp.example.com', audience='api://other')\n"
        "v.validate_access_token(token)\n```\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, str(Path(docs_site.__file__)), str(bad)],
        cwd=str(docs_site.ROOT), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "InvalidToken" in result.stderr and "audience" in result.stderr
    assert 'docs/bad.md", line 11' in result.stderr


@pytest.mark.parametrize("page", ["quickstart.md", "frameworks.md"])
def test_newcomer_pages_define_the_token_before_using_it(page):
    """The harness predefines ``token``, a reader's interpreter does not: on
    the pages a newcomer copies from, the examples say where their token
    comes from (``token = os.environ["TOKEN"]``) before the first use."""
    import ast

    defined_at = None  # (block index, line) of the first assignment
    for index, block in enumerate(b for b in docs_site.code_blocks(docs_site.DOCS / page)
                                   if b.runs and b.marker != "run"):
        tree = ast.parse(block.code)
        for node in sorted((n for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == "token"),
                           key=lambda n: (n.lineno, n.col_offset)):
            if isinstance(node.ctx, ast.Store):
                defined_at = defined_at or (index, node.lineno)
            elif defined_at is None or defined_at > (index, node.lineno):
                pytest.fail(f"docs/{page}:{block.line + node.lineno - 1}: `token` is used before any example defines it")
