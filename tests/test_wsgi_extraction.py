"""Token extraction (RFC 6750 section 2) and decorator argument checks.

Pure functions on hand-built environs: no issuer, no network.  The behaviour
through a real server and a real issuer is in test_wsgi_middleware.py.
"""

import io

import pytest

from oidc_guard.errors import InvalidRequest
from oidc_guard.wsgi import extract_token, require_any_scope, require_scope, require_token

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"


def environ(header=None, *, method="GET", query="", body=None, content_type="", content_length=None):
    env = {"REQUEST_METHOD": method, "QUERY_STRING": query, "PATH_INFO": "/"}
    if header is not None:
        env["HTTP_AUTHORIZATION"] = header
    if body is not None:
        env["wsgi.input"] = io.BytesIO(body)
        env["CONTENT_LENGTH"] = str(len(body)) if content_length is None else content_length
        env["CONTENT_TYPE"] = content_type
    return env


# --- Authorization header (RFC 6750 section 2.1) ---------------------------


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_scheme_is_case_insensitive(scheme):
    assert extract_token(environ(f"{scheme} {TOKEN}")) == TOKEN


@pytest.mark.parametrize(
    "token",
    ["abc", "a-b.c_d~e+f/g", "abc=", "abc==", "A1" * 300, "mF_9.B5f-4.1JqM", "x/y+z=="],
)
def test_every_b64token_character_is_accepted(token):
    assert extract_token(environ("Bearer " + token)) == token


def test_several_spaces_after_scheme_and_outer_whitespace_are_allowed():
    # credentials = "Bearer" 1*SP b64token; OWS around a field value is not
    # part of it (RFC 7230 section 3.2.4).
    assert extract_token(environ(f"  Bearer   {TOKEN} \t")) == TOKEN


@pytest.mark.parametrize("header", [None, "", "   "])
def test_no_header_or_empty_header_is_no_token(header):
    assert extract_token(environ(header)) is None


@pytest.mark.parametrize(
    "header",
    [
        "Basic YWxpY2U6c2VjcmV0",
        "Digest username=\"alice\", realm=\"x\"",
        "DPoP " + TOKEN,
        "Bearertoken",  # one scheme named "Bearertoken", not Bearer
        "Bearer_x abc",
        "Token " + TOKEN,
        "\x00\x01garbage",
    ],
)
def test_other_schemes_are_not_ours(header):
    assert extract_token(environ(header)) is None


@pytest.mark.parametrize(
    "header, words",
    [
        ("Bearer", "carries no token"),
        ("Bearer ", "carries no token"),
        ("bearer    ", "carries no token"),
        (f"Bearer\t{TOKEN}", "followed by a space"),
        (f"Bearer {TOKEN} {TOKEN}", "more than one token"),
        (f"Bearer {TOKEN}, Bearer {TOKEN}", "more than one token"),  # two headers joined by the server
        (f"Bearer {TOKEN},{TOKEN}", "more than one token"),
        (f"Bearer {TOKEN}\tx", "more than one token"),
        ("Bearer ab$cd", "does not allow"),
        ("Bearer a=b", "does not allow"),  # "=" only at the end
        ("Bearer =abc", "does not allow"),
        ("Bearer ab\"c", "does not allow"),
        ("Bearer ab\x00c", "does not allow"),
        ("Bearer abc\u00e9", "does not allow"),
        (f"Basic YWxpY2U6c2VjcmV0, Bearer {TOKEN}", "more than one credential"),
        (f"Basic YWxpY2U6c2VjcmV0,bearer {TOKEN}", "more than one credential"),
    ],
)
def test_malformed_bearer_header_is_invalid_request(header, words):
    with pytest.raises(InvalidRequest) as info:
        extract_token(environ(header))
    assert info.value.status == 400
    assert info.value.error == "invalid_request"
    assert words in info.value.description
    # the description never echoes the token
    assert TOKEN not in info.value.description


# --- form body (RFC 6750 section 2.2) ----------------------------------------


FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
@pytest.mark.parametrize("content_type", [FORM, FORM + "; charset=UTF-8", "Application/X-WWW-Form-URLEncoded"])
def test_form_token_read_and_body_put_back(method, content_type):
    body = f"name=bob&access_token={TOKEN}&x=%20y".encode()
    env = environ(method=method, body=body, content_type=content_type)
    assert extract_token(env, accept_form=True) == TOKEN
    # the application can still read the very same body
    assert env["CONTENT_LENGTH"] == str(len(body))
    assert env["wsgi.input"].read(int(env["CONTENT_LENGTH"])) == body


def test_form_token_percent_encoded_characters_are_decoded():
    # "+" and "/" in a token are %-encoded in a form body; a raw "+" is a space.
    body = b"access_token=ab%2Bc%2Fd%3D"
    assert extract_token(environ(method="POST", body=body, content_type=FORM), accept_form=True) == "ab+c/d="
    with pytest.raises(InvalidRequest):
        extract_token(environ(method="POST", body=b"access_token=ab+c", content_type=FORM), accept_form=True)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"method": "GET", "content_type": FORM},  # GET MUST NOT be used (2.2)
        {"method": "DELETE", "content_type": FORM},
        {"method": "POST", "content_type": "application/json"},
        {"method": "POST", "content_type": "multipart/form-data; boundary=x"},
        {"method": "POST", "content_type": "text/plain"},
        {"method": "POST", "content_type": ""},
    ],
)
def test_form_token_only_for_form_posts(kwargs):
    body = f"access_token={TOKEN}".encode()
    env = environ(body=body, **kwargs)
    assert extract_token(env, accept_form=True) is None
    assert env["wsgi.input"].read() == body  # untouched


def test_form_token_ignored_unless_accept_form():
    body = f"access_token={TOKEN}".encode()
    env = environ(method="POST", body=body, content_type=FORM)
    assert extract_token(env) is None
    assert env["wsgi.input"].read() == body


def test_form_body_over_limit_or_unknown_length_is_not_read():
    body = f"access_token={TOKEN}".encode()
    env = environ(method="POST", body=body, content_type=FORM)
    stream = env["wsgi.input"]
    assert extract_token(env, accept_form=True, max_form_bytes=len(body) - 1) is None
    assert env["wsgi.input"] is stream and stream.read() == body
    for length in ("", "abc", "-1", "1e3", "\u0661\u0662"):
        env = environ(method="POST", body=body, content_type=FORM, content_length=length)
        stream = env["wsgi.input"]
        assert extract_token(env, accept_form=True) is None
        assert env["wsgi.input"] is stream and stream.read() == body


def test_short_body_is_handed_on_as_received():
    body = f"access_token={TOKEN}".encode()
    env = environ(method="POST", body=body, content_type=FORM, content_length=str(len(body) + 50))
    assert extract_token(env, accept_form=True) == TOKEN
    assert env["wsgi.input"].read() == body


class _TrickleStream:
    """A wsgi.input that returns at most 3 bytes per read, like a slow socket."""

    def __init__(self, data):
        self._data = data

    def read(self, size=-1):
        size = 3 if size is None or size < 0 else min(size, 3)
        chunk, self._data = self._data[:size], self._data[size:]
        return chunk


def test_form_body_read_in_pieces():
    body = f"a=1&access_token={TOKEN}".encode()
    env = environ(method="POST", body=body, content_type=FORM)
    env["wsgi.input"] = _TrickleStream(body)
    assert extract_token(env, accept_form=True) == TOKEN
    assert env["wsgi.input"].read() == body


@pytest.mark.parametrize(
    "body, words",
    [
        (f"access_token={TOKEN}&access_token={TOKEN}".encode(), "more than once"),
        (f"access_token={TOKEN}&access%5Ftoken=x".encode(), "more than once"),
        (b"access_token=", "empty"),
        (b"access_token=a%20b", "does not allow"),
        (b"access_token=%C3%A9", "does not allow"),
        (b"access_token=%FF", "does not allow"),
    ],
)
def test_bad_form_token_is_invalid_request(body, words):
    with pytest.raises(InvalidRequest) as info:
        extract_token(environ(method="POST", body=body, content_type=FORM), accept_form=True)
    assert words in info.value.description


# --- query (RFC 6750 section 2.3) ---------------------------------------------


def test_query_token_only_when_enabled():
    env = environ(query=f"a=1&access_token={TOKEN}")
    assert extract_token(env) is None
    assert extract_token(env, accept_query=True) == TOKEN


@pytest.mark.parametrize(
    "query, words",
    [
        (f"access_token={TOKEN}&access_token={TOKEN}", "more than once"),
        ("access_token=", "empty"),
        ("access_token", "empty"),
        ("access_token=a%22b", "does not allow"),
        ("access_token=%E2%82%AC", "does not allow"),
    ],
)
def test_bad_query_token_is_invalid_request(query, words):
    with pytest.raises(InvalidRequest) as info:
        extract_token(environ(query=query), accept_query=True)
    assert words in info.value.description


# --- more than one method (RFC 6750 section 2) --------------------------------


def test_header_and_query_is_invalid_request():
    env = environ("Bearer " + TOKEN, query="access_token=" + TOKEN)
    assert extract_token(env) == TOKEN  # query not enabled: only one method counts
    with pytest.raises(InvalidRequest) as info:
        extract_token(env, accept_query=True)
    assert "more than one method (Authorization header and query string)" in info.value.description


def test_header_and_form_is_invalid_request():
    env = environ("Bearer " + TOKEN, method="POST", body=b"access_token=" + TOKEN.encode(), content_type=FORM)
    with pytest.raises(InvalidRequest) as info:
        extract_token(env, accept_form=True)
    assert "Authorization header and form body" in info.value.description


def test_form_and_query_is_invalid_request():
    env = environ(method="POST", query="access_token=x", body=b"access_token=y", content_type=FORM)
    with pytest.raises(InvalidRequest):
        extract_token(env, accept_form=True, accept_query=True)


def test_basic_header_and_query_token_is_one_method():
    env = environ("Basic YWxpY2U6c2VjcmV0", query="access_token=" + TOKEN)
    assert extract_token(env, accept_query=True) == TOKEN


# --- decorator arguments are checked when decorating --------------------------


@pytest.mark.parametrize("decorator", [require_scope, require_any_scope])
def test_scope_decorators_need_a_scope(decorator):
    with pytest.raises(TypeError, match="at least one scope"):
        decorator()


@pytest.mark.parametrize("decorator", [require_scope, require_any_scope])
def test_scope_decorator_used_bare_is_a_type_error(decorator):
    def app(environ, start_response):  # pragma: no cover - never called
        return []

    with pytest.raises(TypeError, match="takes scope names as str"):
        decorator(app)


@pytest.mark.parametrize("bad", ["contacts wte", "", "a\"b", "caf\u00e9", "a\\b"])
def test_scope_names_must_be_scope_tokens(bad):
    with pytest.raises(ValueError, match="not a valid scope name"):
        require_scope("contacts", bad)


def test_require_token_works_with_and_without_parentheses():
    def app(environ, start_response):  # pragma: no cover - never called
        return []

    assert require_token()(app).__wrapped__ is app
    assert require_token(app).__wrapped__ is app
    assert require_token(app).__name__ == "app"
