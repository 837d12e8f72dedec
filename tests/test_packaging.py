"""The distributions a user would install: the sdist and the wheel are built
from this checkout (``python -m build --no-isolation``: no network, the
venv's setuptools), checked by ``twine check --strict`` (what an index
would refuse), and their contents and metadata are read back.

One build per test session (a few seconds)."""

from __future__ import annotations

import email.parser
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Dict, List

import pytest

import oidc_guard

ROOT = Path(__file__).resolve().parents[1]
# Never in a distribution: they belong to the repository only.
REPOSITORY_ONLY = ("tests/", "bench/", "examples/", "scripts/", ".ci/", "build/")


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    # build makes the sdist, then the wheel from the unpacked sdist: a file
    # the sdist forgot breaks the wheel too.
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, f"python -m build failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    wheels, sdists = sorted(out.glob("*.whl")), sorted(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in out.iterdir())
    return {"wheel": wheels[0], "sdist": sdists[0]}


def _metadata(dist) -> email.message.Message:
    with zipfile.ZipFile(dist["wheel"]) as whl:
        name = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
        return email.parser.Parser().parsestr(whl.read(name).decode("utf-8"))


def test_twine_check_passes_on_both(dist):
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(dist["sdist"]), str(dist["wheel"])],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 2, result.stdout


def test_the_wheel_holds_the_package_and_nothing_of_the_repository(dist):
    with zipfile.ZipFile(dist["wheel"]) as whl:
        names = whl.namelist()
    top = {name.split("/", 1)[0] for name in names}
    assert top == {"oidc_guard", f"oidc_guard-{oidc_guard.__version__}.dist-info"}, sorted(top)
    assert not [n for n in names if n.startswith(REPOSITORY_ONLY)]
    assert "oidc_guard/py.typed" in names  # PEP 561: type checkers read the annotations
    # the testing package and its pytest plugin ship (LocalIssuer is public)
    assert "oidc_guard/testing/__init__.py" in names and "oidc_guard/testing/plugin.py" in names
    assert f"oidc_guard-{oidc_guard.__version__}.dist-info/licenses/LICENSE" in names


def test_the_sdist_holds_the_package_docs_and_licence_but_no_tests(dist):
    with tarfile.open(dist["sdist"]) as sdist:
        names = [n.split("/", 1)[1] for n in sdist.getnames() if "/" in n]
    for needed in ("LICENSE", "README-pypi.md", "CHANGELOG.md", "SECURITY.md", "setup.cfg", "pyproject.toml",
                   "oidc_guard/py.typed", "oidc_guard/__init__.py", "docs/index.md", "docs/conf.py"):
        assert needed in names, needed
    assert not [n for n in names if n.startswith(REPOSITORY_ONLY)], [n for n in names if n.startswith(REPOSITORY_ONLY)]


def test_the_metadata_is_complete(dist):
    meta = _metadata(dist)
    assert meta["Name"] == "oidc_guard" and meta["Version"] == oidc_guard.__version__
    assert meta["License-Expression"] == "MIT"  # PEP 639
    assert not [c for c in meta.get_all("Classifier") if c.startswith("License ::")]  # deprecated by PEP 639
    assert meta["Author"]
    classifiers = set(meta.get_all("Classifier"))
    for needed in ("Typing :: Typed", "Framework :: Flask", "Programming Language :: Python :: 3 :: Only",
                   "Topic :: Security"):
        assert needed in classifiers, needed
    # one Python classifier per supported minor version, from Requires-Python's minimum on
    minimum = re.fullmatch(r">=3\.(\d+)", meta["Requires-Python"])
    assert minimum, meta["Requires-Python"]
    minors = sorted(int(c.rsplit(".", 1)[1]) for c in classifiers if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c))
    assert minors and minors[0] == int(minimum.group(1)) and minors == list(range(minors[0], minors[-1] + 1)), minors
    # no invented address posing as the project's: the project has none yet
    for url in meta.get_all("Project-URL") or []:
        assert ".example" not in url, url
    extras = set(meta.get_all("Provides-Extra"))
    assert {"flask", "wsgi", "redis", "testing"} <= extras


def test_the_index_page_text_has_absolute_links_only(dist):
    meta = _metadata(dist)
    assert meta["Description-Content-Type"].startswith("text/markdown")
    description = meta.get_payload()
    assert description.strip() == (ROOT / "README-pypi.md").read_text(encoding="utf-8").strip()
    links: List[str] = re.findall(r"\]\(([^)\s]+)\)", description)
    links += re.findall(r'(?:href|src)="([^"]+)"', description)
    assert links, "the index page should link the specs it implements"
    relative = [link for link in links if not link.startswith("https://")]
    assert not relative, f"an index page cannot resolve these: {relative}"
    # it says how to install, and the repository README (relative links) is not it
    assert 'pip install "oidc_guard[flask]"' in description
    assert "](docs/" not in description
