"""Helpers shared by tests/test_docs.py and the browser test of the site.

* :func:`build_site` runs the real Sphinx build, offline, nitpicky, with
  warnings as errors (``-W --keep-going -n``), once per test session.
* :func:`code_blocks` extracts the fenced code blocks of a Markdown page and
  applies the example convention written in docs/contributing.md:

  - a ```` ```python ```` block runs; the blocks of one page run in order in
    one namespace (a later block may use what an earlier one defined);
  - ``<!-- no-run: reason -->`` on the line just before the fence skips the
    block (the reason is required);
  - ``<!-- run: pytest -->`` runs the block alone as a pytest file;
  - before running, ``https://idp.example.com`` is replaced by the URL of a
    started LocalIssuer on loopback, whose audience is ``api://contacts``;
    the names ``token`` (an access token with scope ``contacts`` for subject
    ``alice``, also in the environment variable ``TOKEN``, as the
    quickstart's ``export TOKEN=...`` line leaves it) and ``local_issuer``
    (the LocalIssuer) are predefined;
  - ``OIDC_GUARD_*`` variables of the test tooling (no settings) are removed
    from the environment, as a reader's environment has none.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
BUILD = ROOT / "build" / "docs"
DOCTREES = ROOT / "build" / "doctrees"
EXAMPLE_ISSUER = "https://idp.example.com"
PYTHON_INFO = {"python", "py", "python3"}

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_MARKER = re.compile(r"^\s*<!--\s*(?P<kind>no-run|run)\s*:\s*(?P<arg>.*?)\s*-->\s*$")


@dataclass
class Block:
    page: str  # "quickstart.md"
    line: int  # 1-based line of the first code line
    info: str  # "python"
    code: str
    marker: Optional[str]  # None, "no-run", "run"
    marker_arg: str

    @property
    def runs(self) -> bool:
        return self.info in PYTHON_INFO and self.marker != "no-run"

    @property
    def where(self) -> str:
        return f"docs/{self.page}:{self.line}"


def code_blocks(path: Path) -> List[Block]:
    """Every fenced code block of a Markdown page, with its marker."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: List[Block] = []
    i = 0
    previous = ""  # the last non-blank line before the current one
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            if lines[i].strip():
                previous = lines[i]
            i += 1
            continue
        fence = m.group("fence")
        info = m.group("info").strip().split()[0] if m.group("info").strip() else ""
        start = i + 1
        j = start
        while j < len(lines):
            close = lines[j].strip()
            if close.startswith(fence[0] * len(fence)) and set(close) == {fence[0]}:
                break
            j += 1
        marker = _MARKER.match(previous)
        blocks.append(
            Block(
                page=path.name,
                line=start + 1,
                info=info,
                code="\n".join(lines[start:j]) + "\n",
                marker=marker.group("kind") if marker else None,
                marker_arg=marker.group("arg") if marker else "",
            )
        )
        previous = lines[j] if j < len(lines) else ""
        i = j + 1
    return blocks


def pages() -> List[Path]:
    return sorted(DOCS.glob("*.md"))


_built: Dict[str, subprocess.CompletedProcess] = {}
_build_lock = threading.Lock()


def build_site() -> subprocess.CompletedProcess:
    """Build the HTML site into build/docs (once per process)."""
    with _build_lock:
        if "html" not in _built:
            # From scratch: viewcode keeps a module's source page when it is
            # newer than the module, which can leave stale anchors behind.
            shutil.rmtree(BUILD, ignore_errors=True)
            shutil.rmtree(DOCTREES, ignore_errors=True)
            _built["html"] = subprocess.run(
                [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-E",
                 "-b", "html", "-d", str(DOCTREES), str(DOCS), str(BUILD)],
                cwd=str(ROOT),
                capture_output=True,
                text=True,
                timeout=600,
            )
        return _built["html"]


def run_page(path: Path) -> int:
    """Run the runnable examples of one page (the convention above).

    Called in a fresh interpreter by tests/test_docs.py
    (``python tests/docs_site.py docs/PAGE.md``) so that one page's examples
    (Flask apps, logging set-up, environment) cannot leak into another's.
    Returns the number of blocks run; raises on the first failing block.
    """
    import os
    import tempfile

    from oidc_guard.testing import LocalIssuer

    blocks = [b for b in code_blocks(path) if b.runs]
    for block in code_blocks(path):
        if block.marker == "no-run" and not block.marker_arg:
            raise AssertionError(f"{block.where}: <!-- no-run: --> needs a reason")
        if block.marker is not None and block.info not in PYTHON_INFO:
            raise AssertionError(f"{block.where}: a run/no-run marker only applies to python blocks")
        if block.marker == "run" and block.marker_arg != "pytest":
            raise AssertionError(f"{block.where}: unknown marker <!-- run: {block.marker_arg} -->")
    if not blocks:
        return 0
    # The test tooling's own switches (OIDC_GUARD_BROWSER_REQUIRED, ...) share
    # the settings' prefix; a reader's environment has none of them, and
    # config.from_environ() refuses every OIDC_GUARD_* name that is no setting.
    from oidc_guard import config

    for name in [key for key, _close in config.unknown_keys(os.environ)]:
        del os.environ[name]
    with LocalIssuer(audience="api://contacts") as issuer:
        token = issuer.mint(scope="contacts", subject="alice")
        # What the quickstart's `export TOKEN=$(python -m oidc_guard.testing token ...)` gives a reader.
        os.environ["TOKEN"] = token
        namespace: Dict[str, object] = {
            "__name__": "docs_example",
            "local_issuer": issuer,
            "token": token,
        }
        for block in blocks:
            code = block.code.replace(EXAMPLE_ISSUER, issuer.issuer)
            if block.marker == "run":  # pytest: the block alone, as a test file
                with tempfile.TemporaryDirectory() as tmp:
                    test_file = Path(tmp) / "test_docs_example.py"
                    test_file.write_text(code, encoding="utf-8")
                    env = dict(os.environ, OIDC_GUARD_DOCS_ISSUER=issuer.issuer)
                    result = subprocess.run(
                        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(test_file)],
                        cwd=tmp, capture_output=True, text=True, timeout=300, env=env,
                    )
                    passed = re.search(r"(\d+) passed", result.stdout)
                    if result.returncode != 0 or not passed:
                        raise AssertionError(
                            f"{block.where}: the pytest example failed\n{result.stdout}\n{result.stderr}"
                        )
                continue
            # Leading newlines make tracebacks name the Markdown line.
            compiled = compile("\n" * (block.line - 1) + code, f"docs/{block.page}", "exec")
            exec(compiled, namespace)  # noqa: S102 - running our own documentation
    return len(blocks)


if __name__ == "__main__":
    count = run_page(Path(sys.argv[1]))
    print(f"ran {count} example blocks")
