"""Section "django": requests/s of a DRF view protected by
``oidc_guard.drf.OIDCAuthentication`` + ``HasScope`` with a cached RS256
token, against the same view unprotected (``bench/djangoapp.py``): (a) bare
WSGI call of Django's handler and (b) Django's test client, in a child
process (Django's settings are global to a process), and (c) gunicorn (one
gthread worker) on 127.0.0.1 under the "web" section's bounded load.
Target: protected / open >= 0.90."""

from __future__ import annotations

import gc
import importlib
import os
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Optional

from benchkit import AUDIENCE, HERE, ROOT
from benchkit.issuer import mint
from benchkit.timing import interleaved_gc, med, paired_ratio, spread
from sections import Context, Section, register, register_child, run_child
from sections.gunicorn import _cpu_seconds_of_children, _free_port, _wait_port, gunicorn_cmd
from sections.web import wsgi_caller


def missing() -> Optional[str]:
    try:
        for name in ("django", "rest_framework"):
            importlib.import_module(name)
    except Exception as exc:
        return f"{exc.__class__.__name__}: {exc} (pip install -e '.[drf]')"
    return None


def _client_caller(path: str, token: Optional[str]) -> Callable[[], Any]:
    from django.test import Client

    client = Client()
    extra = {"HTTP_ACCEPT": "application/json"}
    if token is not None:
        extra["HTTP_AUTHORIZATION"] = "Bearer " + token

    def call() -> Any:
        response = client.get(path, **extra)
        if response.status_code != 200:
            raise RuntimeError(f"test client got {response.status_code}: {response.content[:200]!r}")
        return response

    return call


def _inprocess_child(args: List[str]) -> Dict[str, List[float]]:
    issuer, token, rounds, target = args
    sys.path.insert(0, HERE)
    from djangoapp import application

    app = application(issuer, AUDIENCE)
    cases = {
        "wsgi_open": wsgi_caller(app, None, path="/open"),
        "wsgi_prot": wsgi_caller(app, token, path="/protected"),
        "wsgi_open_hdr": wsgi_caller(app, token, path="/open"),
        "client_open": _client_caller("/open", None),
        "client_prot": _client_caller("/protected", token),
    }
    for fn in cases.values():
        fn()
    gc.enable()
    return interleaved_gc(cases, int(rounds), float(target))


register_child("django_inproc", _inprocess_child)


def _gunicorn(issuer: Any, token: str, rounds: int, duration: float) -> Dict[str, Any]:
    cmd = gunicorn_cmd()
    if cmd is None:
        return {"skipped": "gunicorn is not installed"}
    env = dict(os.environ, BENCH_ISSUER=issuer.issuer, BENCH_AUDIENCE=AUDIENCE)
    env["PYTHONPATH"] = os.pathsep.join([ROOT, HERE] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    port = _free_port()
    proc = subprocess.Popen(cmd + ["--workers", "1", "--worker-class", "gthread", "--threads", "2",
                                   "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "--keep-alive", "30",
                                   "djangoapp:application()"], env=env, cwd=HERE, stdout=subprocess.DEVNULL)
    try:
        _wait_port(port, proc)
        plan = (("open", "/open", ""), ("open_hdr", "/open", token), ("protected", "/protected", token))
        samples: Dict[str, List[float]] = {name: [] for name, _, _ in plan}
        samples.update({name + "_cpu": [] for name, _, _ in plan})
        for _ in range(rounds):
            for name, path, sent in plan:
                cpu0 = _cpu_seconds_of_children(proc.pid)
                result = run_child("load", [str(port), path, sent, str(duration)], timeout=duration + 60,
                                   what="load client")
                cpu = _cpu_seconds_of_children(proc.pid) - cpu0
                samples[name].append(result["rps"])
                samples[name + "_cpu"].append(result["total"] / cpu if cpu > 0 else float("nan"))
        return samples
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _row(label: str, open_xs: List[float], prot_xs: List[float], *, rps: bool) -> None:
    if rps:  # requests/s samples
        o, p = med(open_xs), med(prot_xs)
        paired = med([b / a for a, b in zip(open_xs, prot_xs)])
    else:  # seconds per request
        o, p = 1 / med(open_xs), 1 / med(prot_xs)
        paired = paired_ratio(open_xs, prot_xs)
    print(f"{label:44}{o:10.0f}{p:11.0f}{p / o:11.3f}   (per round: {paired:.3f};"
          f" spread {spread(open_xs).strip()}/{spread(prot_xs).strip()})")


def run(ctx: Context) -> None:
    rounds, target, g_rounds, g_duration = (5, 0.05, 2, 1.0) if ctx.quick else (11, 0.1, 5, 2.0)
    print("Django REST framework view GET, requests/s (median; open = authentication_classes [] + AllowAny,")
    print("protected = OIDCAuthentication + HasScope(required_scopes ['contacts']) with a cached RS256 token)")
    why = missing()
    if why:
        print(f"  SKIPPED: {why}\n")
        return
    token = mint(ctx.issuer, "RS256", int(time.time()))
    inproc = run_child("django_inproc", [ctx.issuer.issuer, token, str(rounds), str(target)],
                       timeout=600, what="Django in-process benchmark")
    print(f"{'':44}{'open':>10}{'protected':>11}{'prot/open':>11}   target >= 0.90")
    _row("(a) bare WSGI call of Django's handler", inproc["wsgi_open"], inproc["wsgi_prot"], rps=False)
    _row("    same, open request also sends token", inproc["wsgi_open_hdr"], inproc["wsgi_prot"], rps=False)
    _row("(b) Django test client", inproc["client_open"], inproc["client_prot"], rps=False)
    try:
        guni = _gunicorn(ctx.issuer, token, g_rounds, g_duration)
    except Exception as exc:
        guni = {"skipped": f"{exc.__class__.__name__}: {exc}"}
    if "skipped" in guni:
        print(f"(c) gunicorn: SKIPPED: {guni['skipped']}")
    else:
        _row("(c) gunicorn gthread, 1 worker, loopback", guni["open"], guni["protected"], rps=True)
        _row("    same, open request also sends token", guni["open_hdr"], guni["protected"], rps=True)
        if all(x == x for x in guni["open_cpu"] + guni["protected_cpu"]):
            _row("    per CPU-second of the worker", guni["open_cpu"], guni["protected_cpu"], rps=True)
    print()


register(Section("django", run))
