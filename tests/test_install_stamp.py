"""scripts/install_stamp.py: bash scripts/demo.sh installs only on the first
run or when the packaging inputs changed, quietly, and retries after a
failed install."""

import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_helper():
    spec = importlib.util.spec_from_file_location("install_stamp", os.path.join(ROOT, "scripts", "install_stamp.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def checkout(tmp_path):
    root = tmp_path / "clone"
    root.mkdir()
    for name in ("setup.cfg", "pyproject.toml"):
        shutil.copy(os.path.join(ROOT, name), root / name)
    return root


def counting_installer(tmp_path, exit_code=0):
    """A command standing in for pip here: appends a line to a file per run
    (what is tested is when the helper decides to install, not pip)."""
    runs = tmp_path / "runs"
    code = f"open({str(runs)!r}, 'a').write('run\\n'); print('setuptools warning block'); raise SystemExit({exit_code})"
    return [sys.executable, "-c", code], runs


def test_installs_once_then_only_when_setup_cfg_or_pyproject_change(checkout, tmp_path, capsys):
    helper = load_helper()
    installer, runs = counting_installer(tmp_path)
    stamp = str(tmp_path / "venv-stamp")
    ensure = lambda extras="flask,testing": helper.ensure(  # noqa: E731
        str(checkout), extras, installer=installer, stamp=stamp, check_installed=False)

    assert ensure() is True                      # first run (fresh clone)
    assert ensure() is False and ensure() is False
    assert runs.read_text().count("run") == 1
    assert "setuptools warning block" not in capsys.readouterr().err  # pip's output goes to the log only
    assert "setuptools warning block" in (tmp_path / "oidc_guard-install.log").read_text()

    assert ensure("testing,flask") is False      # same extras, other order
    assert ensure("flask") is True               # other extras: install
    (checkout / "setup.cfg").write_text((checkout / "setup.cfg").read_text() + "\n# changed\n")
    assert ensure() is True
    (checkout / "pyproject.toml").write_text((checkout / "pyproject.toml").read_text() + "\n# changed\n")
    assert ensure() is True
    assert ensure() is False
    assert runs.read_text().count("run") == 4


def test_a_failed_install_shows_its_output_and_is_retried(checkout, tmp_path, capsys):
    helper = load_helper()
    failing, runs = counting_installer(tmp_path, exit_code=3)
    stamp = str(tmp_path / "venv-stamp")
    with pytest.raises(subprocess.CalledProcessError):
        helper.ensure(str(checkout), "flask", installer=failing, stamp=stamp, check_installed=False)
    assert "setuptools warning block" in capsys.readouterr().err
    assert not os.path.exists(stamp)
    working, _ = counting_installer(tmp_path)
    assert helper.ensure(str(checkout), "flask", installer=working, stamp=stamp, check_installed=False) is True
    assert runs.read_text().count("run") == 2


def test_a_stamp_is_not_trusted_when_the_venv_does_not_have_this_checkout(checkout, tmp_path):
    helper = load_helper()
    installer, runs = counting_installer(tmp_path)
    stamp = str(tmp_path / "venv-stamp")
    with open(stamp, "w") as f:  # e.g. a venv copied from another clone
        f.write(helper.digest(str(checkout), "flask") + "\n")
    # oidc_guard in this interpreter is the repository's, not the temp clone's
    assert helper.installed_here(ROOT) is True
    assert helper.installed_here(str(checkout)) is False
    assert helper.ensure(str(checkout), "flask", installer=installer, stamp=stamp) is True
    assert runs.read_text().count("run") == 1


def test_demo_script_installs_through_the_helper():
    with open(os.path.join(ROOT, "scripts", "demo.sh")) as f:
        script = f.read()
    assert "scripts/install_stamp.py ensure flask,testing,drf,fastapi,examples" in script
    assert "pip install" not in script.replace("# ", "")
