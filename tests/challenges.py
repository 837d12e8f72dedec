"""Read the challenges of a WWW-Authenticate header, independently of
oidc_guard/errors.py (RFC 9110 section 11.6.1).

``WWW-Authenticate = #challenge``, ``challenge = auth-scheme [ 1*SP (
token68 / #auth-param ) ]``, ``auth-param = token BWS "=" BWS ( token /
quoted-string )``: one field may hold several challenges, and repeated
fields are the same list (section 5.3).  A new challenge starts after a
comma where a token is followed by a space (or a comma or the end) instead
of "=".
"""

from __future__ import annotations

import re
from typing import Dict, List, Tuple

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_SCHEME = re.compile(rf"[ \t]*({_TOKEN})(?=[ \t]|,|$)")
_PARAM = re.compile(rf"[ \t]*({_TOKEN})[ \t]*=[ \t]*({_TOKEN}|{_QUOTED})[ \t]*")


def _unquote(value: str) -> str:
    if value.startswith('"'):
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def parse_challenges(fields: List[str]) -> List[Tuple[str, Dict[str, str], str]]:
    """``[(scheme, params, raw text of the challenge)]`` in order, from the
    values of every WWW-Authenticate field of a response."""
    value = ", ".join(fields)
    out: List[Tuple[str, Dict[str, str], str]] = []
    pos = 0
    while pos < len(value):
        while pos < len(value) and value[pos] in " \t,":
            pos += 1
        if pos >= len(value):
            break
        match = _SCHEME.match(value, pos)
        assert match is not None, f"no auth-scheme at {pos} in {value!r}"
        start, scheme, pos = match.start(1), match.group(1), match.end()
        params: Dict[str, str] = {}
        while True:
            param = _PARAM.match(value, pos)
            if param is None:
                break
            name = param.group(1).lower()
            assert name not in params, f"{name} repeated in one challenge: {value!r}"
            params[name] = _unquote(param.group(2))
            pos = param.end()
            if pos < len(value):
                assert value[pos] == ",", f"expected a comma at {pos} in {value!r}"
                after = pos + 1
                if _PARAM.match(value, after) is None:
                    break  # the next item is a new challenge
                pos = after
        out.append((scheme, params, value[start:pos].rstrip(" ,")))
    return out


def challenges(fields: List[str]) -> Dict[str, str]:
    """``{scheme: raw challenge}`` in order, for ``in`` checks on the text."""
    found: Dict[str, str] = {}
    for scheme, _params, raw in parse_challenges(fields):
        assert scheme not in found, f"two {scheme} challenges: {fields!r}"
        found[scheme] = raw
    return found
