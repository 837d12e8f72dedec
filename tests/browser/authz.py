"""Helpers shared by the browser suites: tampering with the SPA's
authorization request on its way to the provider."""

from __future__ import annotations

import re
import urllib.parse


def rewrite_authorize_param(page, authorization_endpoint: str, name: str, value: str) -> None:
    """Make every authorization request of ``page`` carry ``name=value``
    instead of what the SPA sent (e.g. another ``state`` or ``nonce``), as an
    attacker in the middle of the front channel would."""

    def rewrite(route):
        parts = urllib.parse.urlsplit(route.request.url)
        params = dict(urllib.parse.parse_qsl(parts.query))
        params[name] = value
        route.continue_(url=urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(params))))

    page.route(re.compile("^" + re.escape(authorization_endpoint) + r"\?"), rewrite)
