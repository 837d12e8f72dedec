"""The one base64url encoder (oidc_guard._b64): every module of the package
uses it instead of a copy of its own."""

import base64
import pathlib

import oidc_guard
from oidc_guard import _b64, dpop, jwks, mtls, testing
from oidc_guard.testing import dpop as testing_dpop

PACKAGE = pathlib.Path(oidc_guard.__file__).parent


def test_encodes_url_safe_without_padding():
    assert _b64.b64url_encode(b"") == ""
    assert _b64.b64url_encode(b"\xfb\xff") == "-_8"  # '+/' become '-_', '=' dropped
    assert _b64.b64url_encode(b"any carnal pleas") == "YW55IGNhcm5hbCBwbGVhcw"
    data = bytes(range(256))
    assert base64.urlsafe_b64decode(_b64.b64url_encode(data) + "==") == data


def test_every_module_uses_the_shared_encoder():
    assert testing.b64url_encode is _b64.b64url_encode  # the public name in oidc_guard.testing
    for module in (dpop, mtls, jwks, testing_dpop):
        assert module.b64url_encode is _b64.b64url_encode, module.__name__
    copies = [str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
              if path.name != "_b64.py" and "urlsafe_b64encode" in path.read_text(encoding="utf-8")]
    assert copies == [], f"base64url encoded by hand in {copies}; use oidc_guard._b64.b64url_encode"
