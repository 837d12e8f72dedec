"""The documentation site as a reader sees it: the built HTML served by
``python -m http.server`` on a free loopback port, the quickstart opened in
headless chromium, its navigation present and working, no console error
and no failed request."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from typing import List

import pytest

import docs_site
from processes import stop_process

expect = pytest.importorskip("playwright.sync_api", reason="pip install playwright (PyPI package only)").expect

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site_url():
    pytest.importorskip("sphinx", reason='pip install -e ".[docs]"')
    result = docs_site.build_site()
    if result.returncode != 0:
        pytest.fail("the docs build failed:\n" + result.stderr, pytrace=False)
    server = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(docs_site.BUILD), "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()  # "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
        match = re.search(r"port (\d+)", line)
        assert match, f"http.server did not say its port: {line!r}"
        yield f"http://127.0.0.1:{match.group(1)}"
    finally:
        stop_process(server)


def test_quickstart_renders_with_working_navigation(page, shots, site_url):
    failed: List[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("requestfailed", lambda r: failed.append(f"failed {r.url}"))

    page.goto(f"{site_url}/quickstart.html")
    expect(page.locator("article h1").first).to_have_text(re.compile(r"^Quickstart"))
    expect(page).to_have_title(re.compile(r"Quickstart"))
    # the install line and a highlighted code block are rendered
    expect(page.locator("article").get_by_text('pip install "oidc_guard[flask]"')).to_be_visible()
    assert page.locator("article div.highlight-python").count() >= 5
    shots("quickstart")

    # furo's sidebar: every page of the site is one click away
    sidebar = page.locator(".sidebar-tree")
    expect(sidebar).to_be_visible()
    hrefs = {sidebar.locator("a.reference").nth(i).get_attribute("href")
             for i in range(sidebar.locator("a.reference").count())}
    for name in ("errors.html", "configuration.html", "cli.html", "security.html", "api.html", "deployment.html"):
        assert any(h and h.split("#")[0].endswith(name) for h in hrefs), f"{name} missing from the sidebar: {hrefs}"
    # the current page is marked in the navigation
    expect(sidebar.locator("li.current > a")).to_have_text("Quickstart")

    sidebar.get_by_role("link", name="Error reference").click()
    page.wait_for_url(re.compile(r"/errors\.html$"))
    expect(page.locator("article h1").first).to_have_text(re.compile(r"^Error reference"))
    expect(page.locator(".sidebar-tree li.current > a")).to_have_text("Error reference")
    shots("errors-after-click")

    # an in-page link to another page's anchor lands on that heading
    page.locator("article a[href*='cli.html#validate']").first.click()
    page.wait_for_url(re.compile(r"/cli\.html#validate$"))
    expect(page.locator("section#validate h2")).to_be_visible()
    shots("cli-validate")

    time.sleep(0.2)  # let late console messages arrive
    errors = [m for m in page.console_seen if m.startswith(("error", "pageerror"))]
    assert not failed, failed
    assert not errors, errors



# Whether a page scrolls sideways at the viewport's width, as a whole or
# inside one of its tables (furo wraps each table in a box that scrolls
# sideways), and the narrowest table cell (a column squeezed to a few
# letters is no fix).
SIDEWAYS_REPORT = """() => {
  const width = document.documentElement.clientWidth;
  const tables = [];
  let narrowest = Infinity;
  document.querySelectorAll("article table.docutils").forEach((table, index) => {
    const box = table.getBoundingClientRect();
    const scroller = table.parentElement;
    if (box.right > width + 0.5 || scroller.scrollWidth > scroller.clientWidth + 1)
      tables.push(index + ": " + Math.round(box.width) + " px wide in a box of " + scroller.clientWidth + " px: "
                  + table.querySelector("th, td").textContent.trim().slice(0, 40));
    table.querySelectorAll("td").forEach((cell) => { narrowest = Math.min(narrowest, cell.getBoundingClientRect().width); });
  });
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth, tables: tables,
          count: document.querySelectorAll("article table.docutils").length, narrowestCell: narrowest};
}"""


@pytest.mark.parametrize("width", [390, 1280])
def test_tables_fit_the_screen_without_sideways_scrolling(page_factory, shots, site_url, width):
    """The configuration reference (four tables of long setting names) and
    every other page of the site, on a phone 390 px wide and a laptop: the
    page does not scroll sideways and no table scrolls inside its box."""
    page = page_factory(viewport=(width, 844))
    shots.use(page)
    page.goto(f"{site_url}/configuration.html")
    expect(page.locator("article h1").first).to_have_text(re.compile(r"^Configuration"))
    shots(f"configuration-{width}px")
    report = page.evaluate(SIDEWAYS_REPORT)
    assert report["count"] >= 4, report
    assert report["scrollWidth"] <= report["innerWidth"] == width, report
    assert report["tables"] == [], report["tables"]
    if width == 390:
        assert report["narrowestCell"] >= 100, report  # readable columns, not a few letters each

    links = page.locator(".sidebar-tree a.reference")
    pages = sorted({links.nth(i).get_attribute("href").split("#")[0] for i in range(links.count())})
    assert len(pages) >= 10, pages
    overflowing = {}
    for href in pages:
        page.goto(f"{site_url}/{href}")
        report = page.evaluate(SIDEWAYS_REPORT)
        if report["scrollWidth"] > width or report["tables"]:
            overflowing[href] = report
    assert overflowing == {}, overflowing
