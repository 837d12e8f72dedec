"""Certificate-bound tokens (oidc_guard.mtls), RFC 8705 section 3."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives import hashes

from oidc_guard import InvalidToken
from oidc_guard.mtls import certificate_thumbprint, check_certificate_binding, parse_client_certificate

from certs import der, make_cert, pem, x5t


@pytest.fixture(scope="module")
def cert():
    return make_cert()


@pytest.fixture(scope="module")
def other_cert():
    return make_cert("other")


def test_thumbprint_is_base64url_sha256_of_der(cert):
    assert certificate_thumbprint(der(cert)) == x5t(cert)
    assert cert.fingerprint(hashes.SHA256()) == hashlib.sha256(der(cert)).digest()


def forms(cert):
    text = pem(cert)
    body = "".join(text.strip().splitlines()[1:-1])
    return {
        "pem": text,
        "pem-spaces (Apache)": text.replace("\n", " "),
        "pem-tabs (nginx $ssl_client_cert)": text.replace("\n", "\n\t").rstrip("\t"),
        "url-encoded pem (nginx $ssl_client_escaped_cert, ALB)": quote(text, safe=""),
        "rfc9440 byte sequence": ":" + base64.b64encode(der(cert)).decode() + ":",
        "bare base64 der (Traefik)": quote(body, safe=""),
        "pem chain, leaf first": text + pem(make_cert("intermediate")),
    }


@pytest.mark.parametrize("form", list(forms(make_cert()).keys()))
def test_every_proxy_form_gives_the_der(cert, form):
    assert parse_client_certificate(forms(cert)[form]) == der(cert)


@pytest.mark.parametrize("value, reason", [
    ("", "empty"),
    ("   ", "empty"),
    ("-----BEGIN CERTIFICATE-----\nMIIB", "no complete CERTIFICATE block"),
    (":not base64!:", "not base64"),
    (":" + base64.b64encode(b"hello world, not DER").decode() + ":", "not an X.509 certificate"),
    ("x" * 20000, "the limit is 16384"),
    ("%ZZ", "not base64"),
])
def test_unreadable_certificates_refused(value, reason):
    with pytest.raises(ValueError, match=reason):
        parse_client_certificate(value)


def test_binding_accepted_with_its_certificate(cert):
    for value in forms(cert).values():
        assert check_certificate_binding(x5t(cert), value, "test") == x5t(cert)


def test_binding_refused_with_another_certificate(cert, other_cert):
    with pytest.raises(InvalidToken, match="another client certificate"):
        check_certificate_binding(x5t(cert), pem(other_cert), "test")


def test_binding_refused_without_certificate(cert):
    for value in (None, ""):
        with pytest.raises(InvalidToken, match="has none"):
            check_certificate_binding(x5t(cert), value, "SSL_CLIENT_CERT")


def test_binding_refused_with_garbage_certificate(cert):
    with pytest.raises(InvalidToken, match="cannot be read"):
        check_certificate_binding(x5t(cert), ":AAAA:", "header X-Client-Cert")


def test_binding_refused_when_cnf_value_is_not_a_string(cert):
    with pytest.raises(InvalidToken, match="not a string"):
        check_certificate_binding(["x"], pem(cert), "test")
