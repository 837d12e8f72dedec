"""``oidc-guard probe URL``: what a client that knows nothing but an API's URL
(an MCP client, for one) learns from it, and what stops it.

The steps are the client's (RFC 9728 section 5, the MCP authorization spec):

1. GET the URL without a token; a protected resource answers 401 with a
   ``WWW-Authenticate`` challenge (RFC 9110 section 11.6.1; Bearer, RFC
   6750 section 3; DPoP, RFC 9449 section 7.1).
2. Fetch the protected resource metadata (RFC 9728 section 2): from the
   challenge's ``resource_metadata`` (section 5.1), else from the well-known
   URL derived from the URL (section 3.1).  Its ``resource`` must be
   identical to the URL (section 3.3), else the document must not be used.
3. Fetch each authorization server's metadata: RFC 8414
   ``/.well-known/oauth-authorization-server`` (path inserted), else the
   OpenID ``/.well-known/openid-configuration``; its ``issuer`` identical to
   the one named (RFC 8414 section 3.3, OpenID Connect Discovery 4.3).
4. Say which server, flow, ``resource`` (RFC 8707) and scopes a client would
   use, and what is inconsistent.

Exit 0: a client can get in and nothing is inconsistent; 1: something is
inconsistent or missing; 3: the API or a metadata document cannot be
fetched or read (unreachable, 5xx, too large, not a JSON object, duplicate
members).  Nothing is sent but GETs without credentials."""

from __future__ import annotations

import argparse
import re
from typing import Any, Dict, List, Optional, Sequence, TextIO, Tuple
from urllib.parse import urlsplit, urlunsplit

from ..discovery import (IssuerMismatch, authorization_server_metadata_url, discovery_url,
                         fetch_authorization_server_metadata, mismatch_hint)
from ..errors import ProviderError
from ..http import check_url, decode_json_object, fetch, fetch_json, is_loopback_host
from ._common import EXIT_INVALID, EXIT_OK, EXIT_PROVIDER, UsageError
from ._output import human, plural, print_json, terminal_safe

__all__ = ["cmd_probe", "parse_challenges", "ChallengeError", "protected_resource_metadata_url"]

_MAX_DOC_BYTES = 512 * 1024  # a metadata document, as for discovery
_MAX_API_BYTES = 1024 * 1024  # the API's own answer (read only when it is a 200, then dropped)
_MAX_SERVERS = 5  # authorization servers probed; a document listing more is hostile or broken
_OAUTH_SCHEMES = ("bearer", "dpop")


# --- the WWW-Authenticate field (RFC 9110 section 11.6.1) -----------------------------------
#
#   WWW-Authenticate = #challenge
#   challenge   = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
#   auth-param  = token BWS "=" BWS ( token / quoted-string )
#   token68     = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
#
# One field may hold several challenges, each with several parameters, all
# separated by commas: after a comma, "name =" continues the current
# challenge's parameters and any other token starts the next challenge.

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 section 5.6.2 tchar
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_OWS = re.compile(r"[ \t]*")


class ChallengeError(ValueError):
    """The field does not follow the grammar; the message says where."""


def _skip(text: str, pos: int) -> int:
    match = _OWS.match(text, pos)
    return match.end() if match else pos


def _quoted(text: str, pos: int) -> Tuple[str, int]:
    """The quoted-string at ``text[pos] == '"'`` (RFC 9110 section 5.6.4),
    unescaped, and the position after it.  A control character (other
    than HTAB) is refused, quoted or not."""
    out: List[str] = []
    i = pos + 1
    while i < len(text):
        ch = text[i]
        if ch == '"':
            return "".join(out), i + 1
        if ch == "\\" and i + 1 < len(text):  # quoted-pair
            i += 1
            ch = text[i]
        code = ord(ch)
        if code != 0x09 and (code < 0x20 or code == 0x7F or code > 0xFF):
            raise ChallengeError(f"a control or non-Latin-1 character (U+{code:04X}) at character {i + 1}")
        out.append(ch)
        i += 1
    raise ChallengeError(f"the quoted string opened at character {pos + 1} is not closed")


def parse_challenges(field: str) -> List[Dict[str, Any]]:
    """The challenges of one ``WWW-Authenticate`` field value, in order:
    ``{"scheme": as sent, "params": {lower-cased name: value}, "token68":
    str or None}``.  Parameter names are case-insensitive and each may
    appear once per challenge (RFC 9110 section 11.2); anything else off the
    grammar raises :class:`ChallengeError`."""
    challenges: List[Dict[str, Any]] = []
    pos, end = 0, len(field)
    while True:
        pos = _skip(field, pos)
        while pos < end and field[pos] == ",":  # empty list elements (RFC 9110 section 5.6.1)
            pos = _skip(field, pos + 1)
        if pos >= end:
            return challenges
        scheme = _TOKEN.match(field, pos)
        if scheme is None:
            raise ChallengeError(f"an auth-scheme was expected at character {pos + 1}")
        challenge: Dict[str, Any] = {"scheme": scheme.group(), "params": {}, "token68": None}
        challenges.append(challenge)
        after = _skip(field, scheme.end())
        if after >= end or field[after] == ",":
            pos = after
            continue
        if after == scheme.end():
            raise ChallengeError(f"a space was expected after the scheme {scheme.group()[:40]!r}")
        pos = after
        token68 = _TOKEN68.match(field, pos)
        if token68 is not None:
            rest = _skip(field, token68.end())
            if rest >= end or field[rest] == ",":
                challenge["token68"] = token68.group()
                pos = rest
                continue
        while True:  # the auth-params of this challenge
            name = _TOKEN.match(field, pos)
            if name is None:
                raise ChallengeError(f"a parameter name was expected at character {pos + 1}")
            equals = _skip(field, name.end())
            if equals >= end or field[equals] != "=":
                raise ChallengeError(f"'=' was expected after the parameter {name.group()[:40]!r}")
            start = _skip(field, equals + 1)
            if start < end and field[start] == '"':
                value, pos = _quoted(field, start)
            else:
                token = _TOKEN.match(field, start)
                if token is None:
                    raise ChallengeError(f"the parameter {name.group()[:40]!r} has no value")
                value, pos = token.group(), token.end()
            key = name.group().lower()
            if key in challenge["params"]:
                raise ChallengeError(f"the parameter {key[:40]!r} appears twice in the {challenge['scheme'][:40]} "
                                     "challenge (RFC 9110 section 11.2: at most once)")
            challenge["params"][key] = value
            pos = _skip(field, pos)
            if pos >= end:
                return challenges
            if field[pos] != ",":
                raise ChallengeError(f"',' was expected at character {pos + 1}")
            following = _skip(field, pos + 1)
            while following < end and field[following] == ",":
                following = _skip(field, following + 1)
            ahead = _TOKEN.match(field, following)
            if ahead is None or _skip(field, ahead.end()) >= end or field[_skip(field, ahead.end())] != "=":
                break  # the next challenge (or the end): the outer loop takes it
            pos = following


def _render(challenge: Dict[str, Any]) -> str:
    """A challenge as text again (values in quotes), for the report."""
    if challenge["token68"] is not None:
        return f"{challenge['scheme']} {challenge['token68']}"
    params = ", ".join(f'{name}="{value}"' for name, value in challenge["params"].items())
    return f"{challenge['scheme']} {params}".rstrip()


# --- the documents ---------------------------------------------------------------------------


def protected_resource_metadata_url(resource: str) -> str:
    """RFC 9728 section 3.1: ``/.well-known/oauth-protected-resource`` goes
    between the host and the path (a terminating ``/`` removed), the query
    kept: ``https://api.example/contacts`` ->
    ``https://api.example/.well-known/oauth-protected-resource/contacts``."""
    parts = urlsplit(resource)
    path = "/.well-known/oauth-protected-resource" + parts.path.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


class _Probe:
    def __init__(self, args: argparse.Namespace, url: str) -> None:
        self.args = args
        self.url = url
        self.flags: List[Tuple[str, str]] = []  # (severity, text): unusable, error, warning, info
        self.result: Dict[str, Any] = {"url": url}

    def flag(self, severity: str, text: str) -> None:
        self.flags.append((severity, text))

    # 1. the API, without a token
    def api(self) -> Optional[List[Dict[str, Any]]]:
        """The Bearer / DPoP challenges of the answer; None when there is
        nothing more a client could do."""
        try:
            raw = fetch(self.url, timeout=self.args.timeout, max_bytes=_MAX_API_BYTES,
                        allow_http=self.args.allow_http, what="the API", accept="application/json, */*;q=0.1")
        except ProviderError as exc:
            self.flag("unusable", f"the API cannot be reached: {exc.description}")
            return None
        self.result["status"] = raw.status
        if raw.url != self.url:
            self.result["redirected_to"] = raw.url
            self.flag("warning", f"the API redirected to {raw.url} (same origin): the resource is the URL a "
                                 "client asks, so publish the API at its final URL")
        if 200 <= raw.status < 300:
            self.flag("error", f"the API answered HTTP {raw.status} without a token: it is not protected (or "
                               "this URL is not the protected API)")
            return None
        if raw.status >= 500:
            self.flag("unusable", f"the API answered HTTP {raw.status}")
            return None
        if raw.status not in (401, 403):
            self.flag("error", f"the API answered HTTP {raw.status} to a GET without a token, not 401 with a "
                               "challenge (RFC 6750 section 3.1)")
            return None
        if raw.status == 403:
            self.flag("warning", "the API answered 403 to a request without a token; RFC 6750 section 3.1 "
                                 "asks for 401 with a challenge")
        field = raw.headers.get("www-authenticate")
        self.result["www_authenticate"] = field
        if field is None:
            self.flag("error", f"HTTP {raw.status} without WWW-Authenticate (RFC 9110 section 15.5.2 requires "
                               "one): a client cannot tell how to authenticate")
            return []
        try:
            challenges = parse_challenges(field)
        except ChallengeError as exc:
            self.flag("error", f"the WWW-Authenticate field cannot be parsed (RFC 9110 section 11.6.1): {exc}")
            return []
        self.result["challenges"] = challenges
        oauth = [c for c in challenges if c["scheme"].lower() in _OAUTH_SCHEMES]
        if not oauth:
            schemes = ", ".join(c["scheme"] for c in challenges) or "none"
            self.flag("error", f"no Bearer or DPoP challenge (schemes: {schemes}): the API does not ask for an "
                               "OAuth access token")
        for challenge in oauth:
            if "error" in challenge["params"]:
                self.flag("info", f"the {challenge['scheme']} challenge carries error="
                                  f"{challenge['params']['error']!r} although no token was sent (RFC 6750 "
                                  "section 3.1: it SHOULD NOT)")
        return oauth

    # 2. the protected resource metadata
    def metadata(self, oauth: Sequence[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
        named = list(dict.fromkeys(c["params"]["resource_metadata"] for c in oauth
                                   if "resource_metadata" in c["params"]))
        if len(named) > 1:
            self.flag("error", "the challenges name different resource_metadata URLs: "
                               + ", ".join(map(repr, named)))
        if named:
            url, source = named[0], "named by the challenge's resource_metadata, RFC 9728 section 5.1"
        else:
            url, source = protected_resource_metadata_url(self.url), "the RFC 9728 section 3.1 well-known URL"
            if oauth:
                self.flag("info", "the challenge has no resource_metadata (RFC 9728 section 5.1): a client falls "
                                  "back to the well-known URL")
        self.result["metadata_url"] = url
        self.result["metadata_source"] = source
        what = "protected resource metadata"
        try:
            raw = fetch(url, timeout=self.args.timeout, max_bytes=_MAX_DOC_BYTES, allow_http=self.args.allow_http,
                        what=what)
            if 400 <= raw.status < 500 and not named:
                self.flag("error", f"no protected resource metadata: the challenge names no resource_metadata "
                                   f"and {url} answers HTTP {raw.status}, so a client cannot find the "
                                   "authorization server")
                return None
            if raw.status != 200:
                raise ProviderError(f"{what} {raw.url}: HTTP {raw.status}")
            doc = decode_json_object(raw, what)
        except ProviderError as exc:
            self.flag("unusable", f"the protected resource metadata is unusable: {exc.description}")
            return None
        self.result["metadata"] = doc
        resource = doc.get("resource")
        if not isinstance(resource, str):
            self.flag("error", "the metadata has no resource string (REQUIRED, RFC 9728 section 2)")
        elif resource != self.url:
            hint = mismatch_hint(self.url, resource)
            if resource and self.url.startswith(resource.rstrip("/") + "/"):
                hint += f"; it describes a resource that contains this URL: probe {resource} itself"
            self.flag("error", f"the metadata's resource is {resource!r}, not the URL {self.url!r}: a client "
                               f"MUST NOT use it (RFC 9728 section 3.3: identical strings){hint}")
        servers = doc.get("authorization_servers")
        if servers is None:
            self.flag("error", "the metadata has no authorization_servers: a client cannot learn where to get a "
                               "token")
        elif not _strings(servers) or not servers:
            self.flag("error", "the metadata's authorization_servers is not a non-empty array of issuer strings")
        for key in ("scopes_supported", "bearer_methods_supported", "dpop_signing_alg_values_supported"):
            if key in doc and not _strings(doc[key]):
                self.flag("error", f"the metadata's {key} is not an array of strings")
        methods: Any = doc.get("bearer_methods_supported")
        if _strings(methods) and "header" not in methods:
            self.flag("warning", f"bearer_methods_supported {methods!r} lacks \"header\": clients (MCP's among "
                                 "them) send the token in the Authorization header (RFC 6750 section 2.1)")
        if "dpop_bound_access_tokens_required" in doc and not isinstance(doc["dpop_bound_access_tokens_required"],
                                                                         bool):
            self.flag("error", "the metadata's dpop_bound_access_tokens_required is not a boolean")
        if "signed_metadata" in doc:
            self.flag("info", "the metadata has signed_metadata (RFC 9728 section 2.2): not verified by probe")
        return doc

    # 3. the authorization servers
    def server(self, issuer: str) -> Dict[str, Any]:
        entry: Dict[str, Any] = {"issuer": issuer, "metadata_url": None, "usable": False}
        args = self.args
        try:
            check_url(issuer, args.allow_http, "the authorization server")
        except ProviderError as exc:
            self.flag("error", exc.description)
            return entry
        try:
            doc, why = fetch_authorization_server_metadata(issuer, timeout=args.timeout, max_bytes=_MAX_DOC_BYTES,
                                                           allow_http=args.allow_http)
            entry["metadata_url"] = authorization_server_metadata_url(issuer)
            if doc is None:  # no RFC 8414 document: the OpenID one (RFC 8414 section 5)
                entry["rfc8414"] = why
                entry["metadata_url"] = discovery_url(issuer)
                doc = fetch_json(discovery_url(issuer), timeout=args.timeout, max_bytes=_MAX_DOC_BYTES,
                                 allow_http=args.allow_http, what="OpenID discovery document").json
                if doc.get("issuer") != issuer:
                    raise IssuerMismatch(f"the OpenID discovery document {discovery_url(issuer)} names issuer "
                                         f"{doc.get('issuer')!r}, not {issuer!r} (OpenID Connect Discovery 4.3: "
                                         f"identical){mismatch_hint(issuer, doc.get('issuer'))}")
        except IssuerMismatch as exc:
            self.flag("error", f"{issuer}: {exc.description}")
            return entry
        except ProviderError as exc:
            self.flag("unusable", f"the metadata of the authorization server {issuer} is unusable: "
                                  f"{exc.description}")
            return entry
        entry["metadata"] = {key: doc[key] for key in (
            "authorization_endpoint", "token_endpoint", "registration_endpoint", "code_challenge_methods_supported",
            "grant_types_supported", "scopes_supported", "dpop_signing_alg_values_supported", "protected_resources")
            if key in doc}
        usable = True
        methods: Any = doc.get("code_challenge_methods_supported")
        if not _strings(methods) or "S256" not in methods:
            usable = False
            self.flag("error", f"{issuer} does not advertise PKCE with S256 (code_challenge_methods_supported: "
                               f"{methods!r}): an MCP client refuses to use it (OAuth 2.1, RFC 7636)")
        for key in ("authorization_endpoint", "token_endpoint"):
            try:
                check_url(doc.get(key, ""), args.allow_http, f"{issuer}'s {key}")
            except ProviderError as exc:
                usable = False
                self.flag("error", exc.description)
        grants = doc.get("grant_types_supported", ["authorization_code", "implicit"])  # RFC 8414 default
        if not _strings(grants) or "authorization_code" not in grants:
            usable = False
            self.flag("error", f"{issuer}'s grant_types_supported {grants!r} lacks authorization_code")
        # RFC 8707 defines no metadata member; RFC 9728 section 4 gives the
        # authorization server protected_resources, the one place that can
        # tell whether it knows this resource.
        listed: Any = doc.get("protected_resources")
        if _strings(listed):
            entry["resource_indicators"] = self.url in listed
            if self.url not in listed:
                self.flag("warning", f"{issuer}'s protected_resources (RFC 9728 section 4) does not list "
                                     f"{self.url}: it may refuse resource={self.url} (RFC 8707)")
        else:
            entry["resource_indicators"] = None
            self.flag("info", f"cannot tell whether {issuer} honours the resource parameter (RFC 8707 has no "
                              "metadata member, and it names no protected_resources, RFC 9728 section 4): check "
                              f"that its tokens' aud is {self.url}")
        entry["usable"] = usable
        return entry

    def run(self) -> None:
        oauth = self.api()
        if oauth is None:
            return
        doc = self.metadata(oauth)
        if doc is None:
            return
        servers = doc.get("authorization_servers")
        servers = [s for s in servers if isinstance(s, str)] if isinstance(servers, list) else []
        if len(servers) > _MAX_SERVERS:
            self.flag("warning", f"the metadata lists {len(servers)} authorization servers; only the first "
                                 f"{_MAX_SERVERS} are probed")
        entries = [self.server(issuer) for issuer in dict.fromkeys(servers[:_MAX_SERVERS])]
        self.result["authorization_servers"] = entries
        self.result["client"] = self.client(oauth, doc, entries)

    # 4. what a client would do
    def client(self, oauth: Sequence[Dict[str, Any]], doc: Dict[str, Any],
               entries: Sequence[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
        scope = next((c["params"]["scope"] for c in oauth if "scope" in c["params"]), None)
        supported = doc.get("scopes_supported")
        if scope is not None:
            scopes, source = scope.split(), "the challenge's scope"
        elif _strings(supported) and supported:
            scopes, source = list(supported), "scopes_supported"
        else:
            scopes, source = [], None
            self.flag("warning", "no scope is named (neither the challenge's scope nor the metadata's "
                                 "scopes_supported): a client asks without one and gets the server's default")
        rs_algs: List[str] = []
        dpop = next((c for c in oauth if c["scheme"].lower() == "dpop"), None)
        if dpop is not None and "algs" in dpop["params"]:
            rs_algs = dpop["params"]["algs"].split()
        elif _strings(doc.get("dpop_signing_alg_values_supported")):
            rs_algs = list(doc["dpop_signing_alg_values_supported"])
        required = doc.get("dpop_bound_access_tokens_required") is True
        chosen = next((e for e in entries if e["usable"]), None)
        if chosen is None or doc.get("resource") != self.url:
            return None
        meta = chosen["metadata"]
        as_scopes = meta.get("scopes_supported")
        if _strings(as_scopes) and [s for s in scopes if s not in as_scopes]:
            self.flag("warning", f"{chosen['issuer']} does not list the scopes "
                                 f"{' '.join(s for s in scopes if s not in as_scopes)} in its scopes_supported")
        as_algs = meta.get("dpop_signing_alg_values_supported")
        algs = [a for a in rs_algs if _strings(as_algs) and a in as_algs]
        if required and not algs:
            self.flag("error", f"the resource requires DPoP-bound tokens but {chosen['issuer']} shares no DPoP "
                               f"algorithm with it (resource: {rs_algs}, server: {as_algs!r})")
        return {"authorization_server": chosen["issuer"], "flow": "authorization_code with PKCE (S256)",
                "authorization_endpoint": meta.get("authorization_endpoint"),
                "token_endpoint": meta.get("token_endpoint"), "resource": self.url, "scopes": scopes,
                "scopes_from": source, "registration_endpoint": meta.get("registration_endpoint"),
                "token_type": "DPoP" if required or dpop is not None and algs else "Bearer", "dpop_algs": algs}


def cmd_probe(args: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    url = args.url
    try:
        parts = urlsplit(url)
        parts.port
    except ValueError:
        raise UsageError(f"URL is not a valid URL: {url[:200]!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"URL must be an https URL such as https://api.example.com/contacts, not {url[:200]!r}")
    if "#" in url:
        raise UsageError("URL has a fragment; a resource identifier has none (RFC 8707 section 2, RFC 9728 "
                         "section 1.2)")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname) and not args.allow_http:
        raise UsageError(f"URL {url!r} is plain http: use https, or --allow-http (loopback always works)")
    try:
        check_url(url, args.allow_http, "URL")
    except ProviderError as exc:
        raise UsageError(exc.description) from None
    probe = _Probe(args, url)
    probe.run()
    result = probe.result
    result["flags"] = [{"severity": sev, "message": text} for sev, text in probe.flags]
    severities = {sev for sev, _ in probe.flags}
    if "unusable" in severities:
        verdict, code = "unusable", EXIT_PROVIDER
    elif severities & {"error", "warning"} or not result.get("client"):
        verdict, code = "inconsistent", EXIT_INVALID
    else:
        verdict, code = "ok", EXIT_OK
    result["verdict"] = verdict
    if args.json:
        print_json(out, result)
    else:
        _print(out, result, probe.flags)
    return code


def _print(out: TextIO, result: Dict[str, Any], flags: Sequence[Tuple[str, str]]) -> None:
    # Every value is the API's or a metadata document's writing: terminal_safe.
    out = human(out)
    safe = terminal_safe

    def listed(value: Any) -> str:
        return " ".join(map(safe, value)) if isinstance(value, list) else safe(value)

    out.write(f"probe:     {safe(result['url'])}\n")
    if "status" in result:
        out.write(f"answer:    HTTP {result['status']} without a token\n")
    for challenge in result.get("challenges", []):
        out.write(f"challenge: {safe(_render(challenge))}\n")
    if "metadata_url" in result:
        out.write(f"metadata:  {safe(result['metadata_url'])} ({safe(result['metadata_source'])})\n")
    for key, value in (result.get("metadata") or {}).items():
        out.write(f"  {safe(key)}: {listed(value)}\n")
    for entry in result.get("authorization_servers", []):
        out.write(f"authorization server: {safe(entry['issuer'])}\n")
        if entry["metadata_url"]:
            note = f" (no RFC 8414 document: {safe(entry['rfc8414'])})" if "rfc8414" in entry else ""
            out.write(f"  metadata: {safe(entry['metadata_url'])}{note}\n")
        for key, value in (entry.get("metadata") or {}).items():
            out.write(f"  {safe(key)}: {listed(value)}\n")
        if "resource_indicators" in entry:
            known = {True: "this resource is in its protected_resources", False: "this resource is NOT in its "
                     "protected_resources", None: "cannot tell"}[entry["resource_indicators"]]
            out.write(f"  resource indicators (RFC 8707): {known}\n")
    client = result.get("client")
    if client:
        scopes = " ".join(client["scopes"])
        out.write(f"\na client (an MCP client, for one) would:\n"
                  f"  get a token from {safe(client['authorization_server'])}: {client['flow']}\n"
                  f"    at {safe(client['authorization_endpoint'])} and {safe(client['token_endpoint'])}\n"
                  f"    with resource={safe(client['resource'])} (RFC 8707)\n")
        out.write(f"    and scope \"{safe(scopes)}\" (from {client['scopes_from']})\n" if scopes
                  else "    and no scope\n")
        if client["registration_endpoint"]:
            out.write(f"  register itself at {safe(client['registration_endpoint'])} (RFC 7591)\n")
        else:
            out.write("  (no registration_endpoint: it needs a client_id registered beforehand)\n")
        if client["token_type"] == "DPoP":
            out.write(f"  send it as Authorization: DPoP <token> with a DPoP proof "
                      f"({safe(' '.join(client['dpop_algs']) or 'no common algorithm')})\n")
        else:
            out.write("  send it as Authorization: Bearer <token>\n")
    if flags:
        out.write("\n")
    for severity, text in flags:
        out.write(f"{severity.upper()}: {safe(text)}\n")
    problems = sum(1 for sev, _ in flags if sev in ("error", "warning"))
    verdict = {"ok": "a client can get in", "unusable": "unusable: a document cannot be fetched or read",
               "inconsistent": f"inconsistent ({plural(problems, 'problem')})"}[result["verdict"]]
    out.write(f"\n{verdict}\n")
