"""The text and ``--json`` output of the ``oidc-guard`` commands, shared by
every command and by ``flask oidc-guard`` (:mod:`oidc_guard.flask_cli`):
the terminal escaping (:func:`terminal_safe` and the escaping writer
:func:`human`), the JSON writer, plurals, how a token is named (never
printed) and how times are worded.  Internal to the command line; the
names users import are re-exported by :mod:`oidc_guard.cli`."""

from __future__ import annotations

import datetime
import hashlib
import json
import re
from typing import Any, Dict, Mapping, Optional, TextIO, cast

__all__ = ["terminal_safe", "human", "plural", "print_json", "indent", "token_label", "relative", "iso",
           "describe_time", "TIME_CLAIMS"]

# The time claims shown as dates and words: RFC 7519 section 4.1.4-4.1.6,
# OpenID Connect Core section 2 (auth_time).
TIME_CLAIMS = ("exp", "nbf", "iat", "auth_time")


# --- terminal safety ------------------------------------------------------------------
#
# Everything the text output shows comes from somewhere else: the token (its
# header and payload are anyone's writing, unverified in inspect), the
# provider's documents and keys, error descriptions that quote them.  A
# terminal acts on some characters instead of showing them: ESC starts an
# ECMA-48 control sequence (ESC [2J clears the screen, others move the
# cursor, retitle the window or rewrite earlier lines), CR returns to column
# 0 and overprints, BS backs up, U+009B is a one-character CSI (ECMA-48
# section 5.3, C1 set), DEL is a control too.  Unicode's bidirectional
# formatting characters and line / paragraph separators reorder or break a
# line on screen (Unicode UAX #9), and a lone surrogate cannot even be
# encoded.  With any of them a token could clear the screen and draw its own
# "VALID" verdict.  So every value printed as text goes through
# terminal_safe(), which writes each such character as a visible escape
# (\x1b, \x9b, \u202e); --json output is escaped by json.dumps already.
_TERMINAL_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_TERMINAL_UNSAFE_BUT_NEWLINE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def _escape_char(match: "re.Match[str]") -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(value: Any, *, keep_newlines: bool = False) -> str:
    """``str(value)`` with every control character (C0 including ESC, CR,
    LF and TAB; DEL; C1 U+0080-U+009F), bidirectional formatting character,
    line / paragraph separator and lone surrogate written as a visible
    escape, so that printing it cannot drive the terminal.  The one escaping
    function of the text output; ``keep_newlines`` is for the writer that
    guards whole lines (the newlines there are the program's own)."""
    text = value if isinstance(value, str) else str(value)
    pattern = _TERMINAL_UNSAFE_BUT_NEWLINE if keep_newlines else _TERMINAL_UNSAFE
    return pattern.sub(_escape_char, text)


class _TerminalOut:
    """The text output stream: whatever is written passes terminal_safe()
    (newlines kept), a second line of defence behind the per-value escaping,
    so that no value a format string forgot can reach the terminal raw."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def write(self, text: str) -> int:
        return self._out.write(terminal_safe(text, keep_newlines=True))

    def flush(self) -> None:
        self._out.flush()


def human(out: TextIO) -> TextIO:
    """``out`` wrapped for text output (see terminal_safe); idempotent."""
    if isinstance(out, _TerminalOut):
        return out
    return cast(TextIO, _TerminalOut(out))


def plural(count: int, word: str, many: Optional[str] = None) -> str:
    """``"1 usable key"``, ``"2 usable keys"`` (``many``: an irregular plural)."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


# --- how values are shown ------------------------------------------------------------


def token_label(token: str) -> str:
    """How a token is named in output: its length and SHA-256 prefix, never
    the token itself (RFC 6750 section 5.1: a bearer token is a credential)."""
    digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{len(token)} chars, sha256 {digest[:16]}"


def relative(seconds: float) -> str:
    """``-10800`` -> ``"3 h ago"``, ``720`` -> ``"in 12 min"``."""
    magnitude = abs(seconds)
    if magnitude < 90:
        text = f"{int(round(magnitude))} s"
    elif magnitude < 90 * 60:
        text = f"{int(round(magnitude / 60))} min"
    elif magnitude < 48 * 3600:
        text = f"{int(round(magnitude / 3600))} h"
    else:
        text = f"{int(round(magnitude / 86400))} d"
    return f"{text} ago" if seconds < 0 else f"in {text}"


def iso(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def describe_time(name: str, value: Any, now: float) -> Optional[Dict[str, Any]]:
    """A time claim as ISO date + words (``"expired 3 h ago"``), or None
    when the value is not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        date = iso(float(value))
    except (OverflowError, OSError, ValueError):
        return None
    delta = float(value) - now
    when = relative(delta)
    if name == "exp":
        words = f"expired {when}" if delta < 0 else f"expires {when}"
    elif name == "nbf":
        words = f"valid from {when}" if delta > 0 else f"valid since {when}"
    elif name == "iat":
        words = f"issued {when}" + (" (in the future!)" if delta > 0 else "")
    else:
        words = f"authenticated {when}"
    return {"claim": name, "value": value, "iso": date, "relative": words}


def print_json(out: TextIO, obj: Mapping[str, Any]) -> None:
    """``obj`` as the one JSON object of ``--json`` (json.dumps escapes every control character)."""
    out.write(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def indent(text: str) -> str:
    """Every line of ``text`` indented by two spaces (a JSON block under its title)."""
    return "\n".join("  " + line for line in text.splitlines())
