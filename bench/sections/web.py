"""Section "web": requests/s of a Flask hello-world JSON route
(``bench/webapp.py``), open vs protected with ``require_scope`` and a cached
RS256 token: (a) bare WSGI call, (b) Flask test client, (c) gunicorn (one
gthread worker) on 127.0.0.1 under a bounded load (:mod:`sections.gunicorn`).
"""

from __future__ import annotations

import gc
import importlib
import sys
import time
from io import BytesIO
from typing import Any, Callable, Dict, List, Optional

from benchkit import AUDIENCE, HERE
from benchkit.issuer import mint
from benchkit.timing import interleaved_gc, med, paired_ratio, spread
from sections import Context, Section, register
from sections.gunicorn import section_gunicorn


def web_layer_missing() -> Optional[str]:
    """None when oidc_guard.flask (and wsgi) import, else why not."""
    try:
        importlib.import_module("oidc_guard.wsgi")
        importlib.import_module("oidc_guard.flask")
        importlib.import_module("flask")
    except Exception as exc:  # ImportError, or a half-written module
        return f"{exc.__class__.__name__}: {exc}"
    return None


def _environ(path: str, token: Optional[str]) -> Dict[str, Any]:
    env = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_ACCEPT": "application/json",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if token is not None:
        env["HTTP_AUTHORIZATION"] = "Bearer " + token
    return env


def wsgi_caller(app: Any, token: Optional[str], path: str = "/hello") -> Callable[[], bytes]:
    """One GET of ``path`` through ``app(environ, start_response)``, as a
    server would make it: fresh environ, body consumed, iterable closed
    (also the django section's)."""
    template = _environ(path, token)
    status_seen: List[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Callable[[bytes], None]:
        status_seen.append(status)
        return lambda data: None

    def call() -> bytes:
        env = dict(template)
        env["wsgi.input"] = BytesIO(b"")
        result = app(env, start_response)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if status_seen.pop() != "200 OK":
            raise RuntimeError("benchmark request was not answered 200: " + body[:200].decode(errors="replace"))
        return body

    return call


def client_caller(app: Any, token: Optional[str]) -> Callable[[], Any]:
    client = app.test_client()
    headers = {"Accept": "application/json"}
    if token is not None:
        headers["Authorization"] = "Bearer " + token

    def call() -> Any:
        resp = client.get("/hello", headers=headers)
        if resp.status_code != 200:
            raise RuntimeError(f"test client got {resp.status_code}: {resp.get_data()[:200]!r}")
        return resp

    return call


def section_inprocess(issuer: Any, token: str, rounds: int, target: float) -> Dict[str, List[float]]:
    sys.path.insert(0, HERE)
    from webapp import create_app

    open_app = create_app("open")
    prot_app = create_app("protected", issuer=issuer.issuer, audience=AUDIENCE)
    cases = {
        "wsgi_open": wsgi_caller(open_app, None),
        "wsgi_prot": wsgi_caller(prot_app, token),
        "wsgi_open_hdr": wsgi_caller(open_app, token),
        "client_open": client_caller(open_app, None),
        "client_prot": client_caller(prot_app, token),
    }
    for fn in cases.values():
        fn()
    # Requests/s include GC work, as in a server: keep GC on while timing.
    gc.enable()
    return interleaved_gc(cases, rounds, target)


def print_web(inproc: Optional[Dict[str, List[float]]], guni: Optional[Dict[str, Any]],
              skipped: Optional[str]) -> None:
    print("Flask hello-world JSON route GET /hello, requests/s (median; open = plain Flask app,")
    print("protected = OIDCGuard + @require_scope('contacts') with a cached RS256 token)")
    if skipped:
        print(f"  SKIPPED: {skipped}")
        print()
        return
    print(f"{'':40}{'open':>10}{'protected':>11}{'prot/open':>11}   target >= 0.90")
    assert inproc is not None

    def row(label: str, open_xs: List[float], prot_xs: List[float]) -> None:
        o = 1 / med(open_xs)
        p = 1 / med(prot_xs)
        paired = paired_ratio(open_xs, prot_xs)  # seconds: open/prot = rps prot/open
        print(f"{label:40}{o:10.0f}{p:11.0f}{p / o:11.3f}   (per round: {paired:.3f};"
              f" spread {spread(open_xs).strip()}/{spread(prot_xs).strip()})")

    row("(a) bare WSGI call app(environ, sr)", inproc["wsgi_open"], inproc["wsgi_prot"])
    row("    same, open request also sends token", inproc["wsgi_open_hdr"], inproc["wsgi_prot"])
    row("(b) Flask test client", inproc["client_open"], inproc["client_prot"])
    if guni is None:
        pass
    elif "skipped" in guni:
        print(f"(c) gunicorn: SKIPPED: {guni['skipped']}")
    else:
        def grow(label: str, open_rps: List[float], prot_rps: List[float]) -> None:
            o, p = med(open_rps), med(prot_rps)
            paired = med([b / a for a, b in zip(open_rps, prot_rps)])
            print(f"{label:40}{o:10.0f}{p:11.0f}{p / o:11.3f}   (per round: {paired:.3f};"
                  f" spread {spread(open_rps).strip()}/{spread(prot_rps).strip()})")

        grow("(c) gunicorn gthread, 1 worker, loopback", guni["open"], guni["protected"])
        grow("    same, open request also sends token", guni["open_hdr"], guni["protected"])
        if all(x == x for x in guni["open_cpu"] + guni["protected_cpu"]):  # no NaN
            grow("    per CPU-second of the worker", guni["open_cpu"], guni["protected_cpu"])
            grow("    per CPU-second, open also sends token", guni["open_hdr_cpu"], guni["protected_cpu"])
    print()


def run(ctx: Context) -> None:
    if ctx.quick:
        web_rounds, web_target, g_rounds, g_duration = 5, 0.05, 2, 1.0
    else:
        web_rounds, web_target, g_rounds, g_duration = 11, 0.1, 5, 2.0
    missing = web_layer_missing()
    if missing:
        print_web(None, None, f"oidc_guard.flask is not importable ({missing})")
        return
    token = mint(ctx.issuer, "RS256", int(time.time()))
    inproc = section_inprocess(ctx.issuer, token, web_rounds, web_target)
    try:
        guni = section_gunicorn(ctx.issuer, token, g_rounds, g_duration)
    except Exception as exc:  # report, but keep the other figures
        guni = {"skipped": f"{exc.__class__.__name__}: {exc}"}
    print_web(inproc, guni, None)


register(Section("web", run))
