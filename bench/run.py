#!/usr/bin/env python
"""oidc_guard benchmark: one command, figures side by side.

    python bench/run.py            # full run (about 2-3 minutes)
    python bench/run.py --quick    # a fast, rougher run (about 30 s)

Sections (see bench/README.md for what each figure means):

1. Token validation, us/op, for RS256, ES256 and EdDSA on the same
   IdentityServer-style token: bare ``cryptography`` verify (the floor),
   PyJWT ``jwt.decode`` with a pre-loaded key, PyJWT + ``PyJWKClient``,
   Authlib ``authlib.jose``, oidc_guard cold (``cache_size=0``) and cached.
2. Requests/s of a Flask hello-world JSON route, open vs protected with
   ``require_scope`` and a cached token: bare WSGI call, Flask test client,
   gunicorn (1 gthread worker) on 127.0.0.1 under a bounded load.
3. Memory of the verified-token cache: 100,000 distinct tokens, and the
   bound with a smaller ``cache_size``.

Every figure is a median over interleaved samples (each contender gets one
sample per round, rounds repeat), so a burst of load from other processes
hits all contenders alike.  Nothing here listens on anything but 127.0.0.1.
"""

from __future__ import annotations

import argparse
import base64
import gc
import importlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
import timeit
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# Run from a fresh clone without installing: the repo's package first.
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

ALGS = ("RS256", "ES256", "EdDSA")
AUDIENCE = "contacts"  # the API's audience; the token also carries <issuer>/resources
SCOPE = "contacts"

# --------------------------------------------------------------------------
# the issuer: oidc_guard.testing.LocalIssuer, else a tiny loopback server
# --------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class MiniIssuer:
    """Fallback when ``oidc_guard.testing`` is not there: discovery + JWKS
    over http.server on 127.0.0.1, and ``sign(claims, alg=, header=)``."""

    def __init__(self, algs: Sequence[str]) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

        self._keys: Dict[str, Tuple[str, Any]] = {}
        for alg in algs:
            if alg == "RS256":
                priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            elif alg == "ES256":
                priv = ec.generate_private_key(ec.SECP256R1())
            elif alg == "EdDSA":
                priv = ed25519.Ed25519PrivateKey.generate()
            else:
                raise ValueError(alg)
            self._keys[f"{alg.lower()}-bench"] = (alg, priv)
        self._server: Optional[ThreadingHTTPServer] = None

    @property
    def kids(self) -> List[str]:
        return list(self._keys)

    def key_alg(self, kid: str) -> str:
        return self._keys[kid][0]

    def public_key(self, kid: str) -> Any:
        return self._keys[kid][1].public_key()

    def _jwk(self, kid: str) -> Dict[str, Any]:
        from cryptography.hazmat.primitives import serialization

        alg, priv = self._keys[kid]
        pub = priv.public_key()
        if alg == "RS256":
            n = pub.public_numbers()
            jwk = {"kty": "RSA", "n": _b64url(n.n.to_bytes((n.n.bit_length() + 7) // 8, "big")),
                   "e": _b64url(n.e.to_bytes(3, "big"))}
        elif alg == "ES256":
            n = pub.public_numbers()
            jwk = {"kty": "EC", "crv": "P-256", "x": _b64url(n.x.to_bytes(32, "big")),
                   "y": _b64url(n.y.to_bytes(32, "big"))}
        else:
            raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            jwk = {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw)}
        jwk.update({"kid": kid, "alg": alg, "use": "sig"})
        return jwk

    def jwks(self) -> Dict[str, Any]:
        return {"keys": [self._jwk(kid) for kid in self._keys]}

    def start(self) -> "MiniIssuer":
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                if self.path == "/.well-known/openid-configuration":
                    doc = {"issuer": issuer.issuer, "jwks_uri": issuer.jwks_uri}
                elif self.path == "/jwks":
                    doc = issuer.jwks()
                else:
                    self.send_error(404)
                    return
                body = json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "max-age=3600")
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def issuer(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def jwks_uri(self) -> str:
        return self.issuer + "/jwks"

    def sign(self, claims: Dict[str, Any], *, alg: str, kid: Optional[str] = None,
             header: Optional[Dict[str, Any]] = None, typ: Optional[str] = "JWT") -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        if kid is None:
            kid = next(k for k, (a, _) in self._keys.items() if a == alg)
        priv = self._keys[kid][1]
        head = {"alg": alg, "kid": kid}
        if typ is not None:
            head["typ"] = typ
        head.update(header or {})
        signing_input = (_b64url(json.dumps(head, separators=(",", ":")).encode()) + "."
                         + _b64url(json.dumps(claims, separators=(",", ":")).encode())).encode()
        if alg == "RS256":
            sig = priv.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "ES256":
            r, s = decode_dss_signature(priv.sign(signing_input, ec.ECDSA(hashes.SHA256())))
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        else:
            sig = priv.sign(signing_input)
        return signing_input.decode() + "." + _b64url(sig)


def start_issuer(algs: Sequence[str]) -> Tuple[Any, str]:
    """(issuer, description): LocalIssuer when oidc_guard.testing exists."""
    try:
        from oidc_guard.testing import LocalIssuer
    except ImportError as exc:
        return MiniIssuer(algs).start(), f"bench MiniIssuer (oidc_guard.testing unavailable: {exc})"
    return LocalIssuer(algs=tuple(algs)).start(), "oidc_guard.testing.LocalIssuer"


def kid_for(issuer: Any, alg: str) -> str:
    return next(k for k in issuer.kids if issuer.key_alg(k) == alg)


def idsrv_claims(issuer_url: str, now: int, *, n: int = 0) -> Dict[str, Any]:
    """An IdentityServer v3 shaped access-token payload (see
    /work/shared/seeds): scope as a JSON array, aud = <issuer>/resources plus
    the APIs, client_id, amr, idp, auth_time, sub, nbf/exp, no iat."""
    return {
        "iss": issuer_url,
        "aud": [issuer_url + "/resources", AUDIENCE, "wte", "coordinate"],
        "exp": now + 3600,
        "nbf": now,
        "client_id": "Coordinate",
        "scope": ["profile", "openid", "contacts", "wte", "coordinate"],
        "sub": str(10 + n),
        "auth_time": now,
        "idp": "local",
        "amr": ["pwd"],
    }


def mint(issuer: Any, alg: str, now: int, n: int = 0) -> str:
    # IdentityServer v3 also sends x5t (ignored by every validator here).
    return issuer.sign(idsrv_claims(issuer.issuer, now, n=n), alg=alg, kid=kid_for(issuer, alg),
                       header={"x5t": "a3rMUgMFv9tPclLa6yF3zAkfquE"}, typ="JWT")


# --------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------


# Samples are timed with the CPU time of this process (time.process_time)
# unless --wall: on a machine shared with other busy processes, wall-clock
# samples mostly measure the scheduler, CPU time measures the code.  The
# benchmark is single-threaded while timing, so on an idle machine both agree.
CLOCK: Callable[[], float] = time.process_time


def calibrate(fn: Callable[[], Any], target: float) -> int:
    """Loop count so one sample of ``fn`` takes about ``target`` seconds."""
    timer = timeit.Timer(fn, timer=CLOCK)
    number = 1
    while True:
        elapsed = timer.timeit(number)
        if elapsed >= target / 5 or number >= 1 << 22:
            return max(1, int(number * target / max(elapsed, 1e-9)))
        number *= 4


def interleaved(cases: Dict[str, Callable[[], Any]], rounds: int, target: float) -> Dict[str, List[float]]:
    """Seconds per call of each case: ``rounds`` samples each, one sample of
    every case per round (timeit, GC off during a sample as timeit does)."""
    numbers = {name: calibrate(fn, target) for name, fn in cases.items()}
    timers = {name: timeit.Timer(fn, timer=CLOCK) for name, fn in cases.items()}
    samples: Dict[str, List[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, timer in timers.items():
            samples[name].append(timer.timeit(numbers[name]) / numbers[name])
    return samples


def med(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def spread(xs: Sequence[float]) -> str:
    """Noise indicator: (max - min) / median of the samples, in %."""
    m = med(xs)
    return f"{100 * (max(xs) - min(xs)) / m:4.0f}%" if m else "  n/a"


def paired_ratio(a: Sequence[float], b: Sequence[float]) -> float:
    """Median of per-round ratios a/b (robust to load drift between rounds)."""
    return med([x / y for x, y in zip(a, b)])


# --------------------------------------------------------------------------
# section 1: token validation
# --------------------------------------------------------------------------


def section_tokens(issuer: Any, rounds: int, target: float) -> Dict[str, Any]:
    import jwt as pyjwt
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    from oidc_guard import TokenValidator

    # authlib.jose announces its move to joserfc (forcing its warning filter
    # to "always"); record the warning instead of printing it.
    with warnings.catch_warnings(record=True):
        from authlib.jose import JsonWebKey, JsonWebToken

    now = int(time.time())
    cold = TokenValidator(issuer.issuer, audience=AUDIENCE, cache_size=0)
    cached = TokenValidator(issuer.issuer, audience=AUDIENCE)
    results: Dict[str, Any] = {}
    lengths: Dict[str, int] = {}
    for alg in ALGS:
        token = mint(issuer, alg, now)
        lengths[alg] = len(token)
        kid = kid_for(issuer, alg)
        pub = issuer.public_key(kid)
        h, p, s = token.split(".")
        data = f"{h}.{p}".encode("ascii")
        sig = _b64url_decode(s)

        if alg == "RS256":
            pad, sha = padding.PKCS1v15(), hashes.SHA256()

            def bare(pub=pub, sig=sig, data=data, pad=pad, sha=sha):
                pub.verify(sig, data, pad, sha)
        elif alg == "ES256":
            der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
            algo = ec.ECDSA(hashes.SHA256())

            def bare(pub=pub, der=der, data=data, algo=algo):
                pub.verify(der, data, algo)
        else:
            def bare(pub=pub, sig=sig, data=data):
                pub.verify(sig, data)

        def pyjwt_key(token=token, pub=pub, alg=alg):
            return pyjwt.decode(token, pub, algorithms=[alg], audience=AUDIENCE, issuer=issuer.issuer)

        # What tutorials do: a PyJWKClient per app, the key looked up per request.
        jwk_client = pyjwt.PyJWKClient(issuer.jwks_uri)

        def pyjwt_jwks(token=token, alg=alg, client=jwk_client):
            key = client.get_signing_key_from_jwt(token)
            return pyjwt.decode(token, key.key, algorithms=[alg], audience=AUDIENCE, issuer=issuer.issuer)

        jwk_dict = next(k for k in issuer.jwks()["keys"] if k.get("kid") == kid)
        a_key = JsonWebKey.import_key(jwk_dict)
        a_jwt = JsonWebToken([alg])
        a_opts = {"iss": {"essential": True, "value": issuer.issuer},
                  "aud": {"essential": True, "value": AUDIENCE},
                  "exp": {"essential": True}}

        def authlib_decode(token=token, key=a_key, jwt_=a_jwt, opts=a_opts):
            claims = jwt_.decode(token, key, claims_options=opts)
            claims.validate(leeway=60)
            return claims

        def og_cold(token=token):
            return cold.validate_access_token(token)

        # A server hands the validator a new str per request (sliced out of
        # the Authorization header), so str hashes are never cached: same here.
        padded = "." + token

        def og_cached(padded=padded):
            return cached.validate_access_token(padded[1:])

        # A cache miss with the cache on: two tokens alternating through a
        # one-entry cache, so every call verifies, stores and evicts.
        miss_tokens = [token, mint(issuer, alg, now, n=1)]
        miss_validator = TokenValidator(issuer.issuer, audience=AUDIENCE, cache_size=1)
        miss_state = [0]

        def og_miss(tokens=miss_tokens, validator=miss_validator, state=miss_state):
            state[0] ^= 1
            return validator.validate_access_token(tokens[state[0]])

        cases = {"bare": bare, "pyjwt": pyjwt_key, "pyjwk": pyjwt_jwks, "authlib": authlib_decode,
                 "cold": og_cold, "miss": og_miss, "cached": og_cached}
        # Every contender must accept the token before it is timed.
        for name, fn in cases.items():
            fn()
        expected = og_cold()
        if dict(og_cached()) != dict(expected) or pyjwt_key() != dict(expected):
            raise SystemExit(f"{alg}: contenders disagree on the claims")
        results[alg] = interleaved(cases, rounds, target)
    results["_lengths"] = lengths
    return results


ROWS = (
    ("bare", "bare cryptography verify (floor)"),
    ("pyjwt", "PyJWT jwt.decode, key object"),
    ("pyjwk", "PyJWT + PyJWKClient"),
    ("authlib", "Authlib jose jwt.decode+validate"),
    ("cold", "oidc_guard cold (cache_size=0)"),
    ("miss", "oidc_guard cache miss (verify+store)"),
    ("cached", "oidc_guard cached"),
)


def print_tokens(res: Dict[str, Any]) -> None:
    lengths = res["_lengths"]
    print("Token validation, us/op (median; spread = (max-min)/median of the samples)")
    print("token lengths: " + ", ".join(f"{a} {lengths[a]} chars" for a in ALGS))
    head = f"{'':36}" + "".join(f"{a:>10} {'spread':>6}" for a in ALGS)
    print(head)
    for key, label in ROWS:
        line = f"{label:36}"
        for alg in ALGS:
            xs = res[alg][key]
            line += f"{med(xs) * 1e6:10.2f} {spread(xs):>6}"
        print(line)
    print()
    print("Ratios                               " + "".join(f"{a:>10}" for a in ALGS) + "   target")
    ratio_rows = (  # label, numerator, denominator, format, target
        ("cold / bare (medians)", "cold", "bare", "10.2f", "   RS256 <= 1.8, ES256/EdDSA <= 1.3"),
        ("PyJWT / oidc_guard cold", "pyjwt", "cold", "10.2f", ""),
        ("Authlib / oidc_guard cold", "authlib", "cold", "10.2f", ""),
        ("cold / cached (same alg)", "cold", "cached", "10.1f", ""),
    )
    for label, num, den, fmt, target in ratio_rows:
        cells = "".join(format(med(res[alg][num]) / med(res[alg][den]), fmt) for alg in ALGS)
        print(f"{label:36} {cells}{target}")
        if num == "cold" and den == "bare":
            paired = "".join(f"{paired_ratio(res[alg]['cold'], res[alg]['bare']):10.2f}" for alg in ALGS)
            print(f"{'cold / bare (median per round)':36} {paired}")
    rs_ratio = med(res["RS256"]["cold"]) / med(res["RS256"]["cached"])
    print(f"{'cold RS256 / cached RS256':36} {rs_ratio:10.1f}   target >= 20")
    print()


# --------------------------------------------------------------------------
# section 2: requests/s of a Flask hello-world route
# --------------------------------------------------------------------------


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


def wsgi_caller(app: Any, token: Optional[str]) -> Callable[[], bytes]:
    """One request through ``app(environ, start_response)``, as a server
    would make it: fresh environ, body consumed, iterable closed."""
    template = _environ("/hello", token)
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


def interleaved_gc(cases: Dict[str, Callable[[], Any]], rounds: int, target: float) -> Dict[str, List[float]]:
    numbers = {name: calibrate(fn, target) for name, fn in cases.items()}
    timers = {name: timeit.Timer(fn, setup="gc.enable()", timer=CLOCK) for name, fn in cases.items()}
    samples: Dict[str, List[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, timer in timers.items():
            samples[name].append(timer.timeit(numbers[name]) / numbers[name])
    return samples


def load_client(port: int, path: str, token: str, duration: float, warmup: int) -> Dict[str, float]:
    """Keep-alive HTTP/1.1 load from this process on one connection: send a
    request, read the whole response (Content-Length), repeat for
    ``duration`` seconds after ``warmup`` requests.  Every response must be
    200, else the run is void."""
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Accept: application/json"]
    if token:
        lines.append("Authorization: Bearer " + token)
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")

    def connect() -> socket.socket:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    sock = connect()
    buf = b""
    reconnects = 0

    def one() -> None:
        nonlocal sock, buf, reconnects
        while True:
            try:
                sock.sendall(request)
                while b"\r\n\r\n" not in buf:
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise ConnectionError("closed")
                    buf += chunk
                break
            except (ConnectionError, OSError):
                sock.close()
                sock = connect()
                buf = b""
                reconnects += 1
        head, _, rest = buf.partition(b"\r\n\r\n")
        status = head[9:12]
        if status != b"200":
            raise SystemExit(f"load client: got HTTP {status.decode()} from {path}")
        length = 0
        keep = True
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            lname = name.strip().lower()
            if lname == b"content-length":
                length = int(value)
            elif lname == b"connection" and value.strip().lower() == b"close":
                keep = False
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise SystemExit("load client: short body")
            rest += chunk
        buf = rest[length:]
        if not keep:
            sock.close()
            sock = connect()
            buf = b""
            reconnects += 1

    for _ in range(warmup):
        one()
    count = 0
    t0 = time.perf_counter()
    deadline = t0 + duration
    while True:
        for _ in range(20):
            one()
        count += 20
        if time.perf_counter() >= deadline:
            break
    elapsed = time.perf_counter() - t0
    sock.close()
    return {"requests": count, "total": count + warmup, "seconds": elapsed, "rps": count / elapsed,
            "reconnects": reconnects}


def _cpu_seconds_of_children(parent: int) -> float:
    """utime + stime of the processes whose parent is ``parent`` (gunicorn's
    workers), from /proc (Linux); 0.0 where /proc is not available."""
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    try:
        names = os.listdir("/proc")
    except OSError:
        return 0.0
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == parent:  # fields[1] is ppid; utime, stime are fields 11, 12
            total += int(fields[11]) + int(fields[12])
    return total / tick


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not start listening")


def gunicorn_cmd() -> Optional[List[str]]:
    try:
        config = importlib.import_module("gunicorn.config")
    except ImportError:
        return None
    cmd = [sys.executable, "-m", "gunicorn"]
    # gunicorn >= 25 opens a control socket under ~/.gunicorn by default;
    # the benchmark needs none (and must not touch the home directory).
    flags = {flag for setting in getattr(config, "KNOWN_SETTINGS", ()) for flag in (getattr(setting, "cli", None) or ())}
    if "--no-control-socket" in flags:
        cmd.append("--no-control-socket")
    return cmd


def section_gunicorn(issuer: Any, token: str, rounds: int, duration: float) -> Dict[str, Any]:
    cmd = gunicorn_cmd()
    if cmd is None:
        return {"skipped": "gunicorn is not installed (pip install gunicorn, or the 'bench' extra)"}
    env = dict(os.environ)
    env["BENCH_ISSUER"] = issuer.issuer
    env["BENCH_AUDIENCE"] = AUDIENCE
    env["PYTHONPATH"] = os.pathsep.join([ROOT, HERE] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    servers: Dict[str, Tuple[subprocess.Popen, int]] = {}
    try:
        for kind in ("open", "protected"):
            port = _free_port()
            proc = subprocess.Popen(
                cmd + ["--workers", "1", "--worker-class", "gthread", "--threads", "2",
                       "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "--keep-alive", "30",
                       f'webapp:create_app("{kind}")'],
                env=env, cwd=HERE, stdout=subprocess.DEVNULL,
            )
            servers[kind] = (proc, port)
        for proc, port in servers.values():
            _wait_port(port, proc)
        # (sample name, server, token sent): "open_hdr" sends the token to the
        # open app, which ignores it: the HTTP cost of an 800-byte header.
        plan = (("open", "open", ""), ("open_hdr", "open", token), ("protected", "protected", token))
        samples: Dict[str, List[float]] = {name: [] for name, _, _ in plan}
        samples.update({name + "_cpu": [] for name, _, _ in plan})
        for _ in range(rounds):
            for name, kind, sent in plan:
                proc, port = servers[kind]
                cpu0 = _cpu_seconds_of_children(proc.pid)
                out = subprocess.run(
                    [sys.executable, os.path.abspath(__file__), "--_load", str(port), "/hello", sent, str(duration)],
                    capture_output=True, text=True, timeout=duration + 60,
                )
                cpu = _cpu_seconds_of_children(proc.pid) - cpu0
                if out.returncode != 0:
                    raise RuntimeError(f"load client failed: {out.stderr.strip() or out.stdout.strip()}")
                result = json.loads(out.stdout)
                samples[name].append(result["rps"])
                # requests per CPU-second of the worker: what the server can
                # do per core, whatever else the machine is running.
                samples[name + "_cpu"].append(result["total"] / cpu if cpu > 0 else float("nan"))
        return samples
    finally:
        for proc, _port in servers.values():
            proc.terminate()
        for proc, _port in servers.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


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


# --------------------------------------------------------------------------
# section 3: memory of the verified-token cache (in a fresh subprocess)
# --------------------------------------------------------------------------


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_child(count: int, cache_size: int) -> Dict[str, Any]:
    """Validate ``count`` distinct ES256 tokens (IdentityServer shape) with
    a validator of ``cache_size``, reading ``claims.scopes`` as
    ``require_scope`` does; report what the cache holds and costs.

    Two passes over the same tokens: the first without tracemalloc (RSS
    growth: what the process really pays, allocator overhead included), the
    second, after ``clear_cache()``, under tracemalloc (the exact bytes
    Python objects take; tracemalloc's own bookkeeping would spoil RSS)."""
    import tracemalloc

    from oidc_guard import TokenValidator

    issuer, _ = start_issuer(("ES256",))
    now = int(time.time())
    tokens = [mint(issuer, "ES256", now, n=i) for i in range(count)]
    validator = TokenValidator(issuer.issuer, audience=AUDIENCE, cache_size=cache_size)
    validator.keys.refresh()  # JWKS loaded before measuring
    validator.validate_access_token(mint(issuer, "ES256", now, n=count + 1)).scopes
    validator.clear_cache()

    def fill() -> float:
        t0 = time.perf_counter()
        for token in tokens:
            validator.validate_access_token(token).scopes
        return time.perf_counter() - t0

    gc.collect()
    rss0 = _rss_bytes()
    elapsed = fill()
    gc.collect()
    rss = _rss_bytes() - rss0
    cache = validator._cache
    entries = len(cache) if cache is not None else 0

    validator.clear_cache()
    gc.collect()
    tracemalloc.start()
    base, _peak = tracemalloc.get_traced_memory()
    fill()
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()

    # The cache holds the newest entries: the last token is served from it.
    last = validator.validate_access_token(tokens[-1])
    last_ok = last["sub"] == idsrv_claims(issuer.issuer, now, n=count - 1)["sub"]
    issuer.stop()
    return {"count": count, "cache_size": cache_size, "entries": entries, "traced": traced,
            "rss": rss, "seconds": elapsed, "last_ok": last_ok}


def run_memory_child(count: int, cache_size: int) -> Dict[str, Any]:
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--_memory", str(count), str(cache_size)],
                         capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"memory child failed: {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout)


def print_memory(results: List[Dict[str, Any]]) -> None:
    print("Verified-token cache memory (distinct ES256 IdentityServer-shaped tokens, fresh process;")
    print("traced = tracemalloc of everything allocated while validating; RSS = growth of resident set)")
    print(f"{'tokens':>10}{'cache_size':>12}{'entries':>10}{'traced MB':>11}{'RSS MB':>9}{'B/entry':>9}"
          f"{'us/token':>10}")
    for r in results:
        per = r["traced"] / r["entries"] if r["entries"] else 0
        print(f"{r['count']:10d}{r['cache_size']:12d}{r['entries']:10d}{r['traced'] / 1e6:11.1f}"
              f"{r['rss'] / 1e6:9.1f}{per:9.0f}{r['seconds'] / r['count'] * 1e6:10.1f}"
              + ("" if r["entries"] <= r["cache_size"] else "   BOUND VIOLATED")
              + ("" if r["last_ok"] else "   NEWEST TOKEN NOT SERVED"))
    print("target: 100,000 cached tokens under 100 MB; entries <= cache_size")
    print()


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------


def machine() -> str:
    lines = [f"python {platform.python_version()} ({platform.python_implementation()}) on {platform.platform()}"]
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.split(":")[0].strip() in ("Model name", "CPU(s)", "Hypervisor vendor"):
                lines.append(" ".join(line.split()))
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        lines.append("load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    except OSError:
        pass
    versions = []
    from importlib import metadata

    for dist in ("cryptography", "PyJWT", "Authlib", "Flask", "Werkzeug", "gunicorn", "cachetools"):
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{dist} -")
    lines.append(", ".join(versions))
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer, shorter samples (rough figures)")
    parser.add_argument("--only", choices=("tokens", "web", "memory"), action="append",
                        help="run only this section (repeatable)")
    parser.add_argument("--wall", action="store_true",
                        help="time in-process samples with wall-clock time instead of this process's CPU time")
    parser.add_argument("--_load", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--_memory", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args._load:
        port, path, token, duration = args._load
        print(json.dumps(load_client(int(port), path, token, float(duration), warmup=200)))
        return 0
    if args._memory:
        print(json.dumps(memory_child(*args._memory)))
        return 0

    sections = set(args.only or ("tokens", "web", "memory"))
    global CLOCK
    if args.wall:
        CLOCK = time.perf_counter
    if args.quick:
        rounds, target, web_rounds, web_target, g_rounds, g_duration = 5, 0.02, 5, 0.05, 2, 1.0
        mem_runs = [(10_000, 10_000), (10_000, 1_000)]
    else:
        rounds, target, web_rounds, web_target, g_rounds, g_duration = 15, 0.06, 11, 0.1, 5, 2.0
        mem_runs = [(100_000, 100_000), (30_000, 10_000)]

    started = time.time()
    print("oidc_guard benchmark" + (" (--quick)" if args.quick else "")
          + ("; in-process samples in wall-clock time" if args.wall
             else "; in-process samples in CPU time of this process (time.process_time)"))
    print(machine())
    issuer, how = start_issuer(ALGS)
    print(f"issuer: {how} at {issuer.issuer}")
    print()
    try:
        if "tokens" in sections:
            print_tokens(section_tokens(issuer, rounds, target))
        if "web" in sections:
            missing = web_layer_missing()
            if missing:
                print_web(None, None, f"oidc_guard.flask is not importable ({missing})")
            else:
                token = mint(issuer, "RS256", int(time.time()))
                inproc = section_inprocess(issuer, token, web_rounds, web_target)
                try:
                    guni = section_gunicorn(issuer, token, g_rounds, g_duration)
                except Exception as exc:  # report, but keep the other figures
                    guni = {"skipped": f"{exc.__class__.__name__}: {exc}"}
                print_web(inproc, guni, None)
    finally:
        issuer.stop()
    if "memory" in sections:
        print_memory([run_memory_child(n, size) for n, size in mem_runs])
    print(f"total time {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
