"""Fixtures for the ``browser`` suite: Debian's chromium, driven headless by
Playwright (the PyPI package only; its own browser download cannot work on
the CI machines, so ``playwright install`` is never run).

Install chromium with ``scripts/install_chromium.sh`` (root, apt-get).  When
``/usr/bin/chromium`` is missing the suite is skipped with that hint, unless
``OIDC_GUARD_BROWSER_REQUIRED=1`` (set by CI), where it fails instead: a CI
run must not pass by skipping.

Screenshots of every step go to ``artifacts/screenshots/<test name>/``.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path
from typing import List

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("OIDC_GUARD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STEP_TIMEOUT_MS = 15_000

if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))


def _require_chromium() -> None:
    if os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK):
        return
    message = f"{CHROMIUM} not found: run scripts/install_chromium.sh (as root) to install Debian's chromium"
    if os.environ.get("OIDC_GUARD_BROWSER_REQUIRED") == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="package")
def chromium():
    """A headless chromium (Playwright ``Browser``) for the browser tests.

    Package scope, not session: Playwright's sync API keeps an asyncio loop
    running in the main thread while it is started, which would make every
    later test that runs async code there (Flask async views through
    asgiref) fail with "cannot use AsyncToSync in the same thread"."""
    _require_chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (PyPI package only)")
    manager = sync_api.sync_playwright().start()
    try:
        browser = manager.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        manager.stop()


class Shots:
    """Numbered screenshots for one test: ``shots("signed-in")``.

    Of the test's ``page`` unless ``shots.use(other_page)`` said otherwise
    (pages from ``page_factory``)."""

    def __init__(self, request, directory: Path) -> None:
        self._request = request
        self.page = None
        self.directory = directory
        self.count = 0
        self.paths: List[Path] = []
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True, exist_ok=True)

    def use(self, page) -> "Shots":
        self.page = page
        return self

    def __call__(self, name: str) -> Path:
        if self.page is None:
            self.page = self._request.getfixturevalue("page")
        self.count += 1
        path = self.directory / f"{self.count:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.paths.append(path)
        return path


def _watched_page(context):
    """A page of ``context`` that records what tests look at afterwards.

    ``page.requests_seen`` lists every request URL the page made, so tests can
    prove that no API call happened; ``page.console_seen`` the console lines
    and uncaught page errors.
    """
    pg = context.new_page()
    pg.set_default_timeout(STEP_TIMEOUT_MS)
    seen: List[str] = []
    pg.on("request", lambda req: seen.append(req.url))
    pg.requests_seen = seen  # type: ignore[attr-defined]
    console: List[str] = []
    pg.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    pg.on("pageerror", lambda exc: console.append(f"pageerror: {exc}"))
    pg.console_seen = console  # type: ignore[attr-defined]
    return pg


@pytest.fixture
def page_factory(chromium):
    """``page_factory(viewport=..., timezone_id=..., locale=...)``: a page in
    a fresh browser context (no cookies, no storage) with those options;
    every context is closed at the end of the test."""
    contexts = []

    def make(viewport=(1100, 900), **options):
        context = chromium.new_context(viewport={"width": viewport[0], "height": viewport[1]}, **options)
        contexts.append(context)
        return _watched_page(context)

    try:
        yield make
    finally:
        for context in contexts:
            context.close()


@pytest.fixture
def page(page_factory):
    """A fresh browser context (no cookies, no storage) and page per test,
    1100 x 900 px."""
    return page_factory()


@pytest.fixture
def shots(request) -> Shots:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    return Shots(request, SCREENSHOTS / name)


@pytest.fixture
def dev_stack(tmp_path):
    """The demo's stack (development provider, API, SPA) on ephemeral ports."""
    import demo

    stack = demo.Stack(ports={"provider": 0, "api": 0, "spa": 0}, db_path=str(tmp_path / "contacts.sqlite3"))
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()
