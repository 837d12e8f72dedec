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
    assert cfg["metadata"]["license"] == "MIT"
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
