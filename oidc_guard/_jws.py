"""The compact JWS serialization (RFC 7515 section 7.1), parsed one way for
every token and proof oidc_guard reads (internal, shared by the validator,
DPoP, multi-issuer routing, the CLI and introspection).

What lives here, each written once:

* the token as text: size bound first, bytes must be ASCII (:func:`token_text`);
* the split into three segments with strict, canonical base64url
  (RFC 7515 section 2, RFC 4648 sections 3.5 and 5): :func:`split` for a
  whole token, :func:`split_std` for a DPoP proof whose header may already
  be known, :func:`b64decode_std` / :func:`b64url_decode` for one segment,
  :func:`shape_error` for the words of a refusal;
* strict JSON: one object, UTF-8, duplicate member names refused (RFC 7515
  section 4, RFC 7519 section 4): :func:`parse_json_object`,
  :func:`check_no_duplicates`, :data:`json_decoder`;
* NumericDate values (RFC 7519 section 2): :func:`is_numeric_date`, :func:`iso`;
* :func:`looks_like_jws`: has this token the shape of a JWS at all (where a
  token goes in validation_mode "both");
* the unverified ``iss``, read only to choose a validator or to refuse a
  token of another issuer early, never to accept one
  (:func:`unverified_issuer`, :func:`foreign_issuer`).

Nothing here verifies a signature or believes a claim.  Errors are
:class:`~oidc_guard.errors.InvalidToken` with reason ``malformed`` (or
``issuer``), or ``ValueError`` for the low-level decoders.
"""

from __future__ import annotations

import binascii
import json
import re
from datetime import datetime, timezone
from typing import AbstractSet, Any, Container, Dict, List, Optional, Tuple

from ._bounded import Memo
from .errors import InvalidToken

__all__ = [
    "B64URL_BYTES", "URLSAFE_TO_STD", "TO_STD_OR_BAD", "SEGMENT_TO_STD_OR_BAD",
    "b64decode_std", "b64url_decode", "check_no_duplicates", "reject_duplicates", "json_decoder",
    "parse_json_object", "MIN_TIME", "MAX_TIME", "is_numeric_date", "iso", "token_text",
    "shape_error", "split", "split_std", "check_header", "looks_like_jws", "unverified_issuer", "foreign_issuer", "show",
]


def show(value: Any, limit: int = 64) -> str:
    """A safe, bounded rendering of an attacker-controlled value (a kid, an
    iss...) for an error message: repr-quoted, at most ``limit`` characters."""
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text

# --- base64url -----------------------------------------------------------------

# RFC 7515 section 2 / RFC 4648 section 5: base64url without padding, three
# segments.  The reference regex (shape_error explains a failure with it);
# the checks below do the same without the regex engine.
COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_B64URL_ANY = re.compile(r"[A-Za-z0-9_.-]*")

#: The base64url alphabet: an ASCII token from which bytes.translate
#: deletes every one of these must leave exactly the two dots (measured
#: 0.5 us instead of 1.2 us for the regex on an 800-character token).
B64URL_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
#: base64url -> base64 (RFC 4648 sections 4 and 5); "+" and "/" cannot be in
#: a checked segment, so the mapping is one-to-one and keeps every
#: character's index (so its pad bits).  binascii.a2b_base64 then decodes a
#: segment exactly as base64.urlsafe_b64decode does, without its overhead.
URLSAFE_TO_STD = bytes.maketrans(b"-_", b"+/")
# Padding for a segment of length n: _PADDING[n % 4] (n % 4 == 1 is not
# base64 at all: b64decode_std refuses it first).
_PADDING = (b"", b"===", b"==", b"=")
_BAD_BYTE = ord("!")
#: The alphabet check and the conversion in one pass over a whole token:
#: the base64url alphabet maps to the standard one, "." is kept, and every
#: other byte becomes "!", which is in neither.  A token whose translation
#: holds no "!" and exactly two dots is exactly one that COMPACT_JWS
#: accepts, empty segments aside (checked after the split), and the
#: translation is already what a2b_base64 decodes.
TO_STD_OR_BAD = bytes(
    b if b in B64URL_BYTES or b == ord(".") else _BAD_BYTE for b in range(256)
).translate(URLSAFE_TO_STD)
#: The same for one segment on its own: "." is outside a segment's alphabet,
#: so it becomes "!" too, and "no '!' in the result" is the whole check.
SEGMENT_TO_STD_OR_BAD = TO_STD_OR_BAD.translate(bytes.maketrans(b".", b"!"))

# RFC 4648 section 3.5 (canonical encoding): the pad bits of the last
# character must be zero.  Otherwise several strings decode to the same
# bytes, and one signed token would have many spellings (which defeats
# anything keyed on the token string: deny-lists, replay caches, logs).
_a2b_base64 = binascii.a2b_base64
_STD_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_LAST_BYTE_OF_2 = frozenset(b for i, b in enumerate(_STD_ALPHABET) if i & 0x0F == 0)  # 4 pad bits
_LAST_BYTE_OF_3 = frozenset(b for i, b in enumerate(_STD_ALPHABET) if i & 0x03 == 0)  # 2 pad bits


def b64decode_std(segment: bytes) -> bytes:
    """Strict decoding of one JWS segment (RFC 7515 section 2) already
    translated to the standard alphabet (URLSAFE_TO_STD, TO_STD_OR_BAD): a
    length of 1 mod 4 is impossible, and the encoding must be canonical
    (above).  ValueError (binascii.Error is one) otherwise."""
    rest = len(segment) & 3
    if rest == 1:
        raise ValueError("impossible base64 length")
    if (rest == 2 and segment[-1] not in _LAST_BYTE_OF_2) or (rest == 3 and segment[-1] not in _LAST_BYTE_OF_3):
        raise ValueError("non-canonical base64url")
    return _a2b_base64(segment + _PADDING[rest])


def b64url_decode(segment: Any) -> bytes:
    """One base64url segment (str or bytes, no padding) decoded with the
    rules of every token segment: only the base64url alphabet, canonical,
    no padding.  ValueError otherwise."""
    if isinstance(segment, str):
        if not segment.isascii():
            raise ValueError("characters outside the base64url alphabet")
        segment = segment.encode("ascii")
    std = bytes(segment).translate(SEGMENT_TO_STD_OR_BAD)
    if b"!" in std:
        raise ValueError("characters outside the base64url alphabet")
    return b64decode_std(std)


# --- strict JSON -----------------------------------------------------------------


def check_no_duplicates(pairs: List[Tuple[str, Any]], obj: Dict[str, Any]) -> None:
    """Raise ValueError if ``obj`` (built from ``pairs``) lost a member:
    RFC 7515 section 4 / RFC 7519 section 4 duplicate member names are
    rejected.  Every decoder hook calls it (reject_duplicates here, the
    sharing decoder of oidc_guard._sharing, oidc_guard.http's documents),
    so the check and its error text are one."""
    if len(obj) != len(pairs):
        seen = set()
        for name, _ in pairs:
            if name in seen:
                raise ValueError(f"duplicate member {name[:40]!r}")
            seen.add(name)


def reject_duplicates(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    """``object_pairs_hook``: RFC 7515 section 4 / RFC 7519 section 4 say a
    JSON object with duplicate member names MUST be rejected (or only the
    last kept); parsers disagree, so oidc_guard rejects."""
    obj = dict(pairs)
    if len(obj) != len(pairs):  # the check's own test, inlined: no call when nothing was lost
        check_no_duplicates(pairs, obj)
    return obj


#: The decoder of every JOSE header and payload (and DPoP proof segments).
json_decoder = json.JSONDecoder(object_pairs_hook=reject_duplicates)


def parse_json_object(raw: bytes, what: str, decoder: json.JSONDecoder = json_decoder) -> Dict[str, Any]:
    """``raw`` as one UTF-8 JSON object without duplicate members, else
    InvalidToken (reason ``malformed``) whose text starts with
    ``token {what}`` (DPoP rewrites that start for its proofs)."""
    try:
        text = raw.decode("utf-8")
        # A JOSE header or payload is one JSON object, as a rule with no
        # whitespace around it: then the decoder's C scanner alone parses it
        # (JSONDecoder.decode adds two regular-expression matches for
        # surrounding whitespace and two Python calls: about 2 us per
        # segment).  Anything else -- leading or trailing whitespace, extra
        # data, a scanner error -- is parsed again by decode(), which accepts
        # and refuses exactly as it always did (same errors, same texts).
        obj: Any = None
        if text[:1] == "{":
            try:
                # scan_once: set by JSONDecoder.__init__ (json.scanner), not in the stubs
                obj, end = decoder.scan_once(text, 0)  # type: ignore[attr-defined]
            except StopIteration:
                end = -1
            if end != len(text):
                obj = decoder.decode(text)
        else:
            obj = decoder.decode(text)
    except UnicodeDecodeError:
        raise InvalidToken(f"token {what} is not UTF-8", reason="malformed") from None
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        message = str(exc)
        if message.startswith("duplicate member"):
            raise InvalidToken(f"token {what} has a {message}", reason="malformed") from None
        raise InvalidToken(f"token {what} is not valid JSON", reason="malformed") from None
    except RecursionError:
        raise InvalidToken(f"token {what} is nested too deeply", reason="malformed") from None
    if not isinstance(obj, dict):
        raise InvalidToken(f"token {what} is not a JSON object", reason="malformed")
    return obj


# --- NumericDate -----------------------------------------------------------------

#: NumericDate (RFC 7519 section 2) values oidc_guard accepts: finite and
#: within what datetime can represent (years 1-9999).  Python's json accepts
#: NaN and Infinity; a signed token carrying them is refused, not crashed on.
MIN_TIME = -62135596800.0
MAX_TIME = 253402300799.0


def is_numeric_date(value: Any) -> bool:
    """A JSON number (not a bool) in the NumericDate range; false for NaN and +-inf."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and MIN_TIME <= value <= MAX_TIME)


def iso(ts: float) -> str:
    """A NumericDate as ISO 8601 UTC text, for messages."""
    try:
        return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return str(ts)


# --- the token and its segments ------------------------------------------------------


def token_text(token: Any, what: str, max_bytes: int) -> str:
    """The token as a non-empty str within ``max_bytes``, else InvalidToken.
    The size limit comes first, before anything is decoded; bytes must be
    ASCII.  Shared by TokenValidator and MultiIssuerValidator (which must
    refuse exactly what a member would, before choosing one)."""
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidToken(f"{what} is not ASCII", reason="malformed") from None
    if not isinstance(token, str):
        raise InvalidToken(f"{what} must be a string, not {type(token).__name__}", reason="malformed")
    if not token:
        raise InvalidToken(f"{what} is empty", reason="malformed")
    if len(token) > max_bytes:
        raise InvalidToken(f"{what} is {len(token)} bytes; the limit is {max_bytes}", reason="malformed")
    return token


def shape_error(token: str, what: str) -> str:
    """Why ``token`` is not three non-empty base64url segments, in words."""
    parts = token.count(".") + 1
    if parts == 5:
        return f"{what} is an encrypted JWT (JWE); only signed tokens (JWS) are accepted"
    if parts != 3:
        return f"{what} has {parts} segment(s); a JWS has 3"
    if _B64URL_ANY.fullmatch(token) is None:
        return f"{what} contains characters outside the base64url alphabet"
    if token.endswith("."):
        return f"{what} has no signature; unsigned tokens (alg none) are never accepted"
    return f"{what} has an empty segment"


def split(token: str, what: str) -> Tuple[bytes, bytes, bytes, bytes]:
    """A compact JWS (RFC 7515 section 7.1) -> (the token's ASCII bytes, and
    its header, payload and signature segments in the standard base64
    alphabet, ready for b64decode_std).  Same acceptance as
    COMPACT_JWS.fullmatch(token); InvalidToken (``malformed``, the words of
    shape_error) otherwise.  The signing input is ``raw[:len(h) + 1 + len(p)]``."""
    if not token.isascii():
        raise InvalidToken(shape_error(token, what), reason="malformed")
    raw = token.encode("ascii")
    std = raw.translate(TO_STD_OR_BAD)
    if b"!" in std or std.count(b".") != 2:
        raise InvalidToken(shape_error(token, what), reason="malformed")
    h_seg, p_seg, s_seg = std.split(b".")
    if not (h_seg and p_seg and s_seg):
        raise InvalidToken(shape_error(token, what), reason="malformed")
    return raw, h_seg, p_seg, s_seg


def split_std(raw: bytes, known_headers: Container[bytes]) -> Optional[Tuple[bytes, bytes, bytes, int]]:
    """A compact JWS in ASCII bytes -> (header segment exactly as sent,
    payload and signature segments in the standard alphabet, index of the
    second dot: the signing input is ``raw[:index]``), or ``None`` when it
    is not three base64url segments.  Segments may be empty (the caller
    says so in its words).

    ``known_headers``: header segments already checked in full before (a
    memo's keys, as DPoP keeps per proof key): their alphabet is not checked
    again, so only the payload and signature are translated.  A third dot
    cannot slip through either way: a dot is outside every segment's
    alphabet, and the header is either checked or exactly a known one."""
    # The two dots, found with find() (a memchr) rather than a split.
    first = raw.find(b".")
    second = raw.find(b".", first + 1) if first >= 0 else -1
    if second < 0:
        return None
    h_raw = raw[:first]
    p_std = raw[first + 1:second].translate(SEGMENT_TO_STD_OR_BAD)
    s_std = raw[second + 1:].translate(SEGMENT_TO_STD_OR_BAD)
    if b"!" in p_std or b"!" in s_std or (h_raw not in known_headers and raw.translate(None, B64URL_BYTES) != b".."):
        return None
    return h_raw, p_std, s_std, second


def check_header(header: Dict[str, Any], algorithms: AbstractSet[str], allowed_typ: AbstractSet[str], what: str
                 ) -> Tuple[str, Optional[str]]:
    """The JOSE header rules of a token (RFC 7515 section 4.1, RFC 8725);
    returns (alg, kid).  ``alg`` in ``algorithms`` (never ``none`` or HS*:
    reason ``algorithm``), no ``crit`` (``malformed``), no nested JWT and a
    ``typ`` in ``allowed_typ`` when present (``token_type``), ``kid`` a
    string when present (``malformed``).  Header parameters that would
    bring keys from the token itself (jwk, jku, x5u, x5c) are never read
    (RFC 8725 section 3.10): keys come only from the issuer's JWKS."""
    alg = header.get("alg")
    if not isinstance(alg, str):
        raise InvalidToken(f"{what} header has no alg", reason="algorithm")
    if alg not in algorithms:
        if alg.lower() == "none":
            raise InvalidToken(f"{what} is unsigned (alg {show(alg)}); unsigned tokens are never accepted",
                               reason="algorithm")
        if alg.upper().startswith("HS"):
            raise InvalidToken(f"{what} uses symmetric alg {show(alg)}; only asymmetric algorithms are accepted",
                               reason="algorithm")
        raise InvalidToken(f"{what} alg {show(alg)} is not allowed; allowed: {sorted(algorithms)}", reason="algorithm")
    # RFC 7515 4.1.11: a crit we do not understand MUST make the JWS
    # invalid.  oidc_guard implements no extension, so any crit fails.
    if "crit" in header:
        raise InvalidToken(f"{what} has critical header extension(s) {show(header['crit'])} that are not supported",
                           reason="malformed")
    # RFC 7515 4.1.10 / RFC 8725 2.8: nested JWTs are not accepted.
    cty = header.get("cty")
    if isinstance(cty, str) and cty.lower() in ("jwt", "application/jwt"):
        raise InvalidToken(f"{what} is a nested JWT (cty {show(cty)}); nested tokens are not accepted",
                           reason="token_type")
    # RFC 7515 4.1.9: compared case-insensitively, "application/" optional.
    typ = header.get("typ")
    if typ is not None:
        t = typ.lower() if isinstance(typ, str) else None
        if t is not None and t.startswith("application/"):
            t = t[len("application/"):]
        if t not in allowed_typ:
            raise InvalidToken(f"{what} has typ {show(typ)}; expected {sorted(allowed_typ)} or none",
                               reason="token_type")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise InvalidToken(f"{what} kid is not a string", reason="malformed")
    return alg, kid


# Header segments already seen to decode to a JSON object with "alg"
# (looks_like_jws): the header of every token signed with one key is the
# same string, so a real JWT's header is decoded here once, not per token.
# Only headers up to _JWS_HEADER_MEMO_LEN characters are remembered, at most
# _JWS_HEADERS_MAX of them (a Memo: cleared when full).  A pure function's
# memo: what it holds only repeats what decoding would say again.
_JWS_HEADERS_MAX = 256
_JWS_HEADERS: Memo[str, bool] = Memo(_JWS_HEADERS_MAX)
_JWS_HEADER_MEMO_LEN = 1024


def looks_like_jws(token: str) -> bool:
    """Whether ``token`` has the shape of a JWS in the compact serialization
    (RFC 7515 section 7.1): three base64url segments (RFC 4648 section 5,
    no padding), the first of which decodes to a JSON object with an
    ``alg`` member (RFC 7515 section 4.1.1).  Nothing is verified: this only
    decides where a token goes in validation_mode "both" (and which member
    of a MultiIssuerValidator gets it).  Everything else -- no dot, one dot,
    or three dotted segments that are not a JOSE header such as the RFC 7662
    / RFC 9449 example token ``mF_9.B5f-4.1JqM`` -- is a reference token for
    the introspection endpoint.  Empty payload or signature segments still
    have the shape: the local path then refuses them in plain words (an
    unsigned token)."""
    first = token.find(".")
    if first <= 0 or token.count(".") != 2 or not token.isascii():
        return False
    # the alphabet of all three segments at once (dots kept, every byte
    # outside base64url becomes "!": TO_STD_OR_BAD)
    if b"!" in token.encode("ascii").translate(TO_STD_OR_BAD):
        return False
    head = token[:first]
    if head in _JWS_HEADERS.data:
        return True
    try:
        header = json.loads(b64decode_std(head.encode("ascii").translate(URLSAFE_TO_STD)).decode("utf-8"))
    except (ValueError, binascii.Error, RecursionError):  # UnicodeDecodeError / JSONDecodeError are ValueErrors
        return False
    if not isinstance(header, dict) or "alg" not in header:
        return False
    if len(head) <= _JWS_HEADER_MEMO_LEN:
        _JWS_HEADERS.put(head, True)
    return True


# --- the unverified issuer -------------------------------------------------------------


def unverified_issuer(token: str, what: str) -> str:
    """``iss`` of the JWT payload, decoded as the validator decodes it
    (three non-empty segments; strict, canonical base64url; a UTF-8 JSON
    object without duplicate members), without the signature: only to
    choose a validator.  Only the payload segment is decoded; the header
    and the signature are the chosen validator's to check (it checks the
    whole token again, from the start).  InvalidToken (``malformed``, or
    ``issuer`` when there is no string ``iss``)."""
    first = token.find(".")
    second = token.find(".", first + 1)
    if first <= 0 or second < 0 or second == first + 1 or second == len(token) - 1 \
            or token.find(".", second + 1) >= 0 or not token.isascii():
        raise InvalidToken(shape_error(token, what), reason="malformed")
    # One translate converts the segment to standard base64 and marks
    # every byte outside base64url with "!" (SEGMENT_TO_STD_OR_BAD).
    p_std = token[first + 1:second].encode("ascii").translate(SEGMENT_TO_STD_OR_BAD)
    if b"!" in p_std:
        raise InvalidToken(shape_error(token, what), reason="malformed")
    try:
        payload_raw = b64decode_std(p_std)
    except ValueError:  # binascii.Error is a ValueError
        raise InvalidToken(f"{what} has a segment that is not valid base64url", reason="malformed") from None
    # Fast path (a few find() calls instead of a full JSON parse): a
    # payload in which the bytes "iss" appear exactly once, as
    # "iss":"<value without escapes>".  Anything else (nested or
    # repeated "iss", escapes, spaces) takes the strict parse.  Either way
    # the result only *chooses*: the validator then parses the payload
    # strictly itself and checks its own issuer against the verified iss,
    # so a wrong guess here can only make a token fail, never pass.
    at = payload_raw.find(b'"iss":"')
    if at >= 0 and payload_raw.find(b'"iss"') == at and payload_raw.find(b'"iss"', at + 5) < 0:
        start = at + 7
        end = payload_raw.find(b'"', start)
        if end >= 0 and payload_raw.find(b"\\", start, end) < 0:
            try:
                return payload_raw[start:end].decode("utf-8")
            except UnicodeDecodeError:
                pass  # the strict parse below says what is wrong
    payload = parse_json_object(payload_raw, "payload")
    iss = payload.get("iss")
    if iss is None:
        raise InvalidToken(f"{what} has no iss claim, so no trusted issuer can be chosen", reason="issuer")
    if not isinstance(iss, str):
        raise InvalidToken(f"{what} iss is not a string", reason="issuer")
    return iss


def foreign_issuer(iss: Any, expected: str, what: str) -> InvalidToken:
    """The refusal of a token whose (unverified) ``iss`` is present and not
    ``expected``: raised before any key look-up, so a token of another
    issuer costs no JWKS refetch.  It can only refuse, never accept: the
    signature and the verified ``iss`` are checked afterwards anyway.  The
    value is attacker-controlled: repr-quoted and bounded; the token itself
    is never echoed."""
    text = f"{what} issued by {show(iss, 120)}, not by the trusted issuer {expected!r}"
    if isinstance(iss, str) and iss.rstrip("/") == expected.rstrip("/"):
        # The usual misconfiguration: say so (TokenValidator.check()
        # explains it at start-up).
        text += " (they differ only in a trailing slash: is the configured issuer exact?)"
    return InvalidToken(text, reason="issuer")
