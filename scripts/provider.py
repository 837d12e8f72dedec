#!/usr/bin/env python3
"""Install, start, stop the loopback OpenID Provider used by the integration suite.

The provider is panva's ``oidc-provider`` from the npm registry, in two
pinned releases (package.json + package-lock.json in each folder), both
configured by ``scripts/oidc-provider/interop.mjs``:

* variant ``7``: ``scripts/oidc-provider/`` -- oidc-provider 7.14.3, the last
  release with implicit ``id_token token`` (the default);
* variant ``9``: ``scripts/oidc-provider-v9/`` -- oidc-provider 9.13.3, the
  current release line (no implicit ``id_token token``).

Development only: it listens on 127.0.0.1 and accepts any login.

Usage::

    python scripts/provider.py install [--variant 7|9|all]   # npm ci; default all; skipped when installed
    python scripts/provider.py start [--port N] [--variant 7|9]  # background start, waits for discovery
    python scripts/provider.py status [--variant 7|9]
    python scripts/provider.py stop [--variant 7|9]

``start`` prints ``ISSUER=http://127.0.0.1:N`` as its last line. Every command
is idempotent: ``start`` on a running provider (same port) just reports it,
``stop`` on a stopped one succeeds. Runtime files (pid, port, log) live in
``$OIDC_PROVIDER_RUN_DIR`` (default ``run/`` in the variant's folder), so the
test suite can keep its own instances apart from a developer's. The variant
defaults to ``$OIDC_PROVIDER_VARIANT``, else ``7``.

Exit codes: 0 ok, 1 failure (install failed, provider did not come up),
3 node or npm not found on PATH.

Standard library only, so it runs before the project is installed.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
VARIANTS = {"7": "oidc-provider", "9": "oidc-provider-v9"}
DEFAULT_VARIANT = "7"
HOST = "127.0.0.1"
DEFAULT_PORT = 4010
START_TIMEOUT = 30.0  # seconds to wait for the discovery document
STOP_TIMEOUT = 5.0  # seconds between SIGTERM and SIGKILL

EXIT_OK, EXIT_FAIL, EXIT_NO_NODE = 0, 1, 3

# Loopback requests never go through an HTTP proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def provider_dir(variant):
    return os.path.join(HERE, VARIANTS[variant])


def run_dir(variant):
    path = os.environ.get("OIDC_PROVIDER_RUN_DIR") or os.path.join(provider_dir(variant), "run")
    os.makedirs(path, exist_ok=True)
    return path


def _paths(variant):
    d = run_dir(variant)
    # The variant is in the names so that both can share one run dir.
    base = os.path.join(d, "provider-v" + variant)
    return base + ".pid", base + ".port", base + ".log"


def log(msg):
    print("provider.py: " + msg, file=sys.stderr, flush=True)


def pinned_version(variant):
    with open(os.path.join(provider_dir(variant), "package.json"), encoding="utf-8") as f:
        return json.load(f)["dependencies"]["oidc-provider"]


def installed_version(variant):
    path = os.path.join(provider_dir(variant), "node_modules", "oidc-provider", "package.json")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f).get("version")
    except (OSError, ValueError):
        return None


def need_tools(*names):
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        log("not found on PATH: %s (install Node.js >= 20 with npm)" % ", ".join(missing))
        sys.exit(EXIT_NO_NODE)


# --------------------------------------------------------------------------- install
def cmd_install(args):
    need_tools("node", "npm")
    variants = sorted(VARIANTS) if args.variant == "all" else [args.variant]
    for variant in variants:
        rc = _install(variant)
        if rc != EXIT_OK:
            return rc
    return EXIT_OK


def _install(variant):
    want = pinned_version(variant)
    have = installed_version(variant)
    where = os.path.relpath(provider_dir(variant))
    if have == want:
        log("oidc-provider %s already installed in %s" % (have, where))
        return EXIT_OK
    log("installing oidc-provider %s in %s with npm ci (found: %s)" % (want, where, have))
    # npm ci installs exactly what package-lock.json says and fails if the lock
    # and package.json disagree: a reproducible, pinned install.
    proc = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=provider_dir(variant), stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        log("npm ci failed with exit code %d" % proc.returncode)
        return EXIT_FAIL
    have = installed_version(variant)
    if have != want:
        log("after npm ci, oidc-provider is %s, expected %s" % (have, want))
        return EXIT_FAIL
    log("installed oidc-provider %s" % have)
    return EXIT_OK


# --------------------------------------------------------------------------- process helpers
def _read_int(path):
    try:
        with open(path, encoding="ascii") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _is_our_process(pid):
    """True if pid is alive and is a node process running provider.mjs.

    Checked through /proc so that a recycled pid is never signalled.
    """
    if pid is None or pid <= 0:
        return False
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        # No /proc (not Linux): fall back to "is it alive".
        if not os.path.isdir("/proc"):
            try:
                os.kill(pid, 0)
                return True
            except OSError:
                return False
        return False
    return any(a.endswith(b"provider.mjs") for a in argv)


def _discovery(port, timeout=2.0):
    """The discovery document, or None if it does not answer."""
    url = "http://%s:%d/.well-known/openid-configuration" % (HOST, port)
    try:
        with _OPENER.open(url, timeout=timeout) as resp:
            if resp.status != 200:
                return None
            return json.loads(resp.read(1 << 20))
    except (OSError, ValueError, urllib.error.URLError):
        return None


def _running(variant):
    """(pid, port) of the provider this run dir started, or (None, None)."""
    pid_file, port_file, _ = _paths(variant)
    pid = _read_int(pid_file)
    if _is_our_process(pid):
        return pid, _read_int(port_file)
    return None, None


def _tail(path, lines=40):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return "(no log)"


# --------------------------------------------------------------------------- start / stop
def cmd_start(args):
    need_tools("node")
    variant = args.variant
    if installed_version(variant) != pinned_version(variant):
        log("oidc-provider %s is not installed; run: python %s install --variant %s"
            % (pinned_version(variant), os.path.relpath(__file__), variant))
        return EXIT_FAIL
    port = args.port
    pid, running_port = _running(variant)
    if pid is not None:
        if running_port == port and _discovery(port):
            log("already running (pid %d)" % pid)
            print("ISSUER=http://%s:%d" % (HOST, port))
            return EXIT_OK
        log("a provider from this run dir is running on port %s (pid %d); stop it first"
            % (running_port, pid))
        return EXIT_FAIL

    pid_file, port_file, log_file = _paths(variant)
    env = dict(os.environ)
    env["OP_PORT"] = str(port)
    with open(log_file, "ab") as out:
        proc = subprocess.Popen(
            ["node", os.path.join(provider_dir(variant), "provider.mjs"), "--port", str(port)],
            cwd=provider_dir(variant), env=env, stdin=subprocess.DEVNULL,
            stdout=out, stderr=out,
            start_new_session=True)  # survives this script; not tied to our terminal
    with open(pid_file, "w", encoding="ascii") as f:
        f.write("%d\n" % proc.pid)
    with open(port_file, "w", encoding="ascii") as f:
        f.write("%d\n" % port)

    issuer = "http://%s:%d" % (HOST, port)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log("provider exited with code %s before answering; log:\n%s"
                % (proc.returncode, _tail(log_file)))
            _cleanup_files(variant)
            return EXIT_FAIL
        doc = _discovery(port, timeout=1.0)
        if doc is not None:
            if doc.get("issuer") != issuer:
                log("discovery issuer %r != %r" % (doc.get("issuer"), issuer))
                _stop_pid(variant, proc.pid)
                return EXIT_FAIL
            log("started pid %d, log %s" % (proc.pid, log_file))
            print("ISSUER=" + issuer)
            return EXIT_OK
        time.sleep(0.1)
    log("discovery did not answer within %.0f s; log:\n%s" % (START_TIMEOUT, _tail(log_file)))
    _stop_pid(variant, proc.pid)
    return EXIT_FAIL


def _cleanup_files(variant):
    pid_file, port_file, _ = _paths(variant)
    for p in (pid_file, port_file):
        try:
            os.remove(p)
        except OSError:
            pass


def _stop_pid(variant, pid):
    if _is_our_process(pid):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and _is_our_process(pid):
            _reap(pid)
            time.sleep(0.05)
        if _is_our_process(pid):
            log("pid %d ignored SIGTERM, sending SIGKILL" % pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _reap(pid)
    _cleanup_files(variant)


def _reap(pid):
    # Only matters when the provider is our own child (start's failure paths).
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def cmd_stop(args):
    pid, port = _running(args.variant)
    if pid is None:
        _cleanup_files(args.variant)
        log("not running")
        return EXIT_OK
    _stop_pid(args.variant, pid)
    log("stopped pid %d (port %s)" % (pid, port))
    return EXIT_OK


def cmd_status(args):
    pid, port = _running(args.variant)
    if pid is None:
        print("stopped")
        return EXIT_FAIL
    up = port is not None and _discovery(port) is not None
    print("running pid=%d issuer=http://%s:%s discovery=%s" % (pid, HOST, port, "ok" if up else "down"))
    return EXIT_OK if up else EXIT_FAIL


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    default_variant = os.environ.get("OIDC_PROVIDER_VARIANT", DEFAULT_VARIANT)
    p_install = sub.add_parser("install", help="npm ci the pinned oidc-provider release(s)")
    p_install.add_argument("--variant", choices=sorted(VARIANTS) + ["all"], default="all")
    p_install.set_defaults(func=cmd_install)
    p_start = sub.add_parser("start", help="start on 127.0.0.1 in the background")
    p_start.add_argument("--port", type=int, default=int(os.environ.get("OP_PORT", DEFAULT_PORT)))
    p_start.set_defaults(func=cmd_start)
    p_stop = sub.add_parser("stop", help="stop the provider")
    p_stop.set_defaults(func=cmd_stop)
    p_status = sub.add_parser("status", help="exit 0 if running and answering")
    p_status.set_defaults(func=cmd_status)
    for p in (p_start, p_stop, p_status):
        p.add_argument("--variant", choices=sorted(VARIANTS), default=default_variant)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
