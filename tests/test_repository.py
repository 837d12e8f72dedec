"""Repository hygiene a newcomer relies on: the licence file matches the
package metadata, and the vulnerability reporting route is reachable from
the README and names a real address."""

import configparser
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(name):
    with open(os.path.join(ROOT, name), encoding="utf-8") as f:
        return f.read()


def test_license_file_is_the_mit_licence_setup_cfg_declares():
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    assert cfg["metadata"]["license_expression"] == "MIT"  # PEP 639 (setuptools >= 77)
    assert cfg["metadata"]["license_files"].strip() == "LICENSE"
    text = read("LICENSE")
    assert text.startswith("MIT License\n")
    assert "Copyright (c) " in text and "the oidc_guard authors" in text
    assert "THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND" in text


def test_security_policy_gives_a_private_route_that_works_from_the_readme():
    security = read("SECURITY.md")
    section = security.split("## Reporting a vulnerability", 1)[1].split("\n## ", 1)[0]
    # A route a reader can use: an e-mail address, not "this repository's" tab.
    assert re.search(r"\b[\w.+-]+@[\w-]+(\.[\w-]+)+\b", section), section
    assert "GitHub security advisories" not in section
    for needed in ("version", "reproduce", "never a real user's"):
        assert needed in section, needed
    # The README links straight to that section (GitHub's anchor for the heading).
    assert "SECURITY.md#reporting-a-vulnerability" in read("README.md")


def _tracked_text_files():
    """The repository's own text files (git ls-files: no venv, no build)."""
    import subprocess

    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in out.decode("utf-8").split("\0"):
        if not name or name.startswith(("scripts/oidc-provider", "LICENSE")):
            continue  # vendored npm lock files; the licence's "ACTION OF CONTRACT"
        path = os.path.join(ROOT, name)
        try:
            with open(path, encoding="utf-8") as f:
                yield name, f.read()
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue


def test_nothing_cites_documents_that_are_not_in_the_repository():
    """Comments and docs cite the specs or the repository's own docs, never
    the project's working notes (CONTRACT.md, DESIGN.md) nor a path on the
    machine they were written on (the seed notes are ../shared/seeds)."""
    offenders = []
    for name, text in _tracked_text_files():
        if name == "tests/test_repository.py":
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if re.search(r"\bCONTRACT(\.md)?\b|\bDESIGN\.md\b|/work/", line):
                offenders.append(f"{name}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_no_return_type_is_silenced():
    """A ``# type: ignore[return-value]`` hides a function whose declared
    return type is not what it returns (``_check_times`` returned a None
    typed as float): fix the type or the code instead."""
    offenders = [
        f"{name}:{number}"
        for name, text in _tracked_text_files() if name.startswith("oidc_guard/") and name.endswith(".py")
        for number, line in enumerate(text.splitlines(), 1)
        if "type: ignore[return-value]" in line
    ]
    assert not offenders, offenders


def test_the_readme_docs_command_works_from_a_fresh_clone():
    """The README's documentation build used to be a bare sphinx line that
    failed after demo.sh (sphinx is not in the demo's extras).  The
    documented command is scripts/docs.sh: it makes the venv, installs the
    extras autodoc needs (names that setup.cfg really defines) and runs the
    same strict build as tests/test_docs.py."""
    import shlex
    import subprocess

    readme = read("README.md")
    assert "`bash scripts/docs.sh`" in readme
    script = read("scripts/docs.sh")
    assert subprocess.run(["bash", "-n", os.path.join(ROOT, "scripts", "docs.sh")]).returncode == 0
    assert os.access(os.path.join(ROOT, "scripts", "docs.sh"), os.X_OK)
    assert '"$PYTHON" -m venv .venv' in script  # a fresh clone has no venv
    ensure = [shlex.split(line) for line in script.splitlines() if "install_stamp.py ensure" in line]
    assert len(ensure) == 1, ensure
    extras = set(ensure[0][-1].split(","))
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    defined = set(cfg["options.extras_require"])
    assert {"docs", "flask", "testing"} <= extras <= defined, (extras, defined)
    sphinx = [line for line in script.splitlines() if "-m sphinx" in line]
    assert len(sphinx) == 1 and " -W " in sphinx[0] and " -n " in sphinx[0] and " docs " in sphinx[0], sphinx
    # the install step comes before the build
    assert script.index("install_stamp.py ensure") < script.index("-m sphinx")
