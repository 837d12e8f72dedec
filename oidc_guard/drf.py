"""Django REST framework: :class:`OIDCAuthentication`, :class:`HasScope`
and :class:`HasAnyScope`.

.. code-block:: python

    from rest_framework.views import APIView
    from oidc_guard.drf import HasScope, OIDCAuthentication

    class Contacts(APIView):
        authentication_classes = [OIDCAuthentication]
        permission_classes = [HasScope]
        required_scopes = ["contacts"]
        # or per method: required_scopes_by_method = {"GET": ["contacts:read"], "POST": ["contacts:write"]}

        def get(self, request):
            return Response({"owner": request.auth.subject})   # request.auth: the Claims

The same project guard as :mod:`oidc_guard.django` (settings, validator,
caches); when :class:`oidc_guard.django.BearerMiddleware` runs, its result
is used and the token is not validated twice.  Every refusal is
:func:`oidc_guard.errors.render_error`'s status, ``WWW-Authenticate``
challenge and JSON body ``{"error": ..., "error_description": ...}``
(through DRF's exception handler, which keeps ``WWW-Authenticate`` and
``Retry-After``; the middleware adds the rest, ``Cache-Control: no-store``
and a ``DPoP-Nonce``).

Decisions:

* No token: :meth:`OIDCAuthentication.authenticate` returns ``None``, so
  views that allow anonymous requests (``AllowAny``) work; a permission
  that needs a user answers 401 with the Bearer challenge
  (:meth:`~OIDCAuthentication.authenticate_header`), never DRF's 403.
* A token that is sent and refused is answered at once -- 401
  ``invalid_token``, 400 ``invalid_request``, or 503 while the provider is
  unusable -- also on ``AllowAny`` views (DRF's rule for credentials: a
  client that sent a bad token learns it, instead of silently getting the
  anonymous answer).
* ``required_scopes_by_method`` (a dict of upper-case HTTP methods) wins
  over ``required_scopes``; ``HEAD`` uses ``GET``'s entry.  A view whose
  method has no scopes configured fails closed (``ImproperlyConfigured``,
  a 500 the developer sees at once), never allows.
"""

from __future__ import annotations

import logging
from importlib.util import find_spec
from typing import Any, Dict, Optional, Sequence, Tuple

from django.core.exceptions import ImproperlyConfigured
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import APIException
from rest_framework.permissions import BasePermission

from .auth import AuthResult
from .django import django_request, get_result
from .django._state import current
from .errors import ErrorResponse, render_error
from .rules import AcrRule, AuthTimeRule, Rule, evaluate, log_denial, scope_rule

__all__ = ["OIDCAuthentication", "HasScope", "HasAnyScope", "HasAcr", "HasRecentAuthentication",
           "OIDCGuardRefusal", "required_scopes"]

logger = logging.getLogger("oidc_guard.django")


class OIDCGuardRefusal(APIException):  # type: ignore[misc]
    """A refusal as DRF raises it: the status, ``WWW-Authenticate``
    (``auth_header``), ``Retry-After`` (``wait``) and JSON body of
    :func:`oidc_guard.errors.render_error`; ``rendered`` is the whole
    :class:`~oidc_guard.errors.ErrorResponse`."""

    def __init__(self, rendered: ErrorResponse, request: Any = None) -> None:
        super().__init__(detail=rendered.body, code=rendered.body.get("error"))
        self.status_code = rendered.status
        self.rendered = rendered
        for name, value in rendered.headers:
            if name == "WWW-Authenticate":
                self.auth_header = value
            elif name == "Retry-After":
                self.wait = int(value)
        if request is not None:
            # BearerMiddleware adds the headers DRF's exception handler drops.
            django_request(request).oidc_refusal = rendered


class OIDCAuthentication(BaseAuthentication):  # type: ignore[misc]
    """``request.auth`` = the token's :class:`~oidc_guard.Claims`,
    ``request.user`` = an :class:`oidc_guard.django.TokenUser` (or what
    ``OIDC_GUARD_USER_LOADER`` returns).  No token: ``None`` (anonymous);
    a refused token: :class:`OIDCGuardRefusal` (see the module doc)."""

    def authenticate(self, request: Any) -> Optional[Tuple[Any, Any]]:
        result = get_result(request)
        claims = result.claims
        if claims is not None:
            return django_request(request).__dict__.get("oidc_user"), claims
        error = result.error
        if error is None:
            return None  # no token: anonymous
        # a refused token, a malformed request (400) or an outage (503)
        raise OIDCGuardRefusal(result.render(error), request)

    def authenticate_header(self, request: Any) -> str:
        """The challenge of a request without a token (RFC 6750 section 3:
        ``Bearer realm="..."``, and ``DPoP algs="..."`` when DPoP is
        allowed), so DRF answers 401, not 403."""
        rendered = render_error(None, current().authenticator.challenge)
        return dict(rendered.headers)["WWW-Authenticate"]


# --- scopes ---------------------------------------------------------------------------

_RULES: Dict[Tuple[str, Tuple[str, ...]], Rule] = {}


def required_scopes(view: Any, method: str) -> Sequence[str]:
    """The scopes ``view`` needs for ``method``: its
    ``required_scopes_by_method[method]`` (``HEAD``: else ``GET``'s), else
    its ``required_scopes``.  ``ImproperlyConfigured`` when neither names
    any, or a value is a str instead of a list."""
    method = method.upper()
    by_method = getattr(view, "required_scopes_by_method", None)
    scopes: Any = None
    if by_method is not None:
        if not isinstance(by_method, dict):
            raise ImproperlyConfigured(f"{type(view).__name__}.required_scopes_by_method must be a dict of "
                                       "HTTP methods to lists of scopes")
        scopes = by_method.get(method)
        if scopes is None and method == "HEAD":
            scopes = by_method.get("GET")
    if scopes is None:
        scopes = getattr(view, "required_scopes", None)
    if scopes is None:
        raise ImproperlyConfigured(
            f"{type(view).__name__} uses HasScope/HasAnyScope but names no scopes for {method}: set "
            "required_scopes = [...] or required_scopes_by_method = {\"" + method + "\": [...]}")
    if isinstance(scopes, str) or not isinstance(scopes, (list, tuple, set, frozenset)):
        raise ImproperlyConfigured(f"{type(view).__name__}: the required scopes must be a list such as "
                                   f"[\"contacts\"], got {scopes!r}")
    return tuple(scopes)


def _rule(mode: str, scopes: Tuple[str, ...], view: Any) -> Rule:
    key = (mode, scopes)
    rule = _RULES.get(key)
    if rule is None:
        try:
            rule = scope_rule(scopes, mode, "HasScope" if mode == "all" else "HasAnyScope")
        except (TypeError, ValueError) as exc:
            raise ImproperlyConfigured(f"{type(view).__name__}: {exc}") from None
        _RULES[key] = rule
    return rule


class _ScopePermission(BasePermission):  # type: ignore[misc]
    mode = "all"
    #: what the drf-spectacular extension (oidc_guard.drf_openapi) reads of
    #: a scope permission, without importing this module: "all" or "any",
    #: and the view's scopes for a method
    oidc_guard_scope_mode = "all"
    oidc_guard_scopes = staticmethod(required_scopes)

    def has_permission(self, request: Any, view: Any) -> bool:
        return _decide(request, _rule(self.mode, tuple(required_scopes(view, request.method)), view))


class HasScope(_ScopePermission):
    """Every scope of the view's ``required_scopes`` (or of its
    ``required_scopes_by_method`` entry); otherwise 403 with
    ``WWW-Authenticate: Bearer error="insufficient_scope", scope="..."``
    (401 without a valid token)."""

    mode = "all"
    oidc_guard_scope_mode = "all"


class HasAnyScope(_ScopePermission):
    """At least one scope of the view's ``required_scopes`` (or of its
    ``required_scopes_by_method`` entry); otherwise 403
    ``insufficient_scope`` as :class:`HasScope`."""

    mode = "any"
    oidc_guard_scope_mode = "any"


def _decide(request: Any, rule: Rule) -> bool:
    """The one decision of every permission here: the request's
    AuthResult evaluated against ``rule`` (oidc_guard.rules.evaluate);
    True, or the refusal raised as DRF answers it."""
    result: AuthResult = get_result(request)
    denied = evaluate(result, rule)
    if denied is None:
        return True
    if result.claims is not None:
        log_denial(logger, f"({request.method} {request.path!r})", denied)
    raise OIDCGuardRefusal(result.render(denied), request)


def _step_up_rule(key: Tuple[str, Tuple[str, ...]], build: Any, view: Any) -> Rule:
    rule = _RULES.get(key)
    if rule is None:
        try:
            rule = build()
        except (TypeError, ValueError) as exc:
            raise ImproperlyConfigured(f"{type(view).__name__}: {exc}") from None
        _RULES[key] = rule
    return rule


class HasAcr(BasePermission):  # type: ignore[misc]
    """RFC 9470 step-up: the token's ``acr`` is one of the view's
    ``required_acr`` (a list, in order of preference;
    :class:`oidc_guard.rules.AcrRule`); otherwise 401
    ``insufficient_user_authentication`` with ``acr_values="..."``, as
    ``require_acr`` of every adapter."""

    def has_permission(self, request: Any, view: Any) -> bool:
        values = getattr(view, "required_acr", None)
        if isinstance(values, str) or not isinstance(values, (list, tuple)) or not values:
            raise ImproperlyConfigured(f"{type(view).__name__} uses HasAcr: set required_acr = [\"urn:...\"]")
        values = tuple(values)
        return _decide(request, _step_up_rule(("acr", values), lambda: AcrRule(values), view))


class HasRecentAuthentication(BasePermission):  # type: ignore[misc]
    """RFC 9470 step-up: the token's ``auth_time`` is at most the view's
    ``max_auth_age`` seconds old (:class:`oidc_guard.rules.AuthTimeRule`);
    otherwise 401 ``insufficient_user_authentication`` with
    ``max_age="..."``, as ``require_auth_time`` of every adapter."""

    def has_permission(self, request: Any, view: Any) -> bool:
        max_age = getattr(view, "max_auth_age", None)
        if isinstance(max_age, bool) or not isinstance(max_age, int):
            raise ImproperlyConfigured(f"{type(view).__name__} uses HasRecentAuthentication: set max_auth_age "
                                       "= seconds (an int)")
        return _decide(request, _step_up_rule(("auth_time", (str(max_age),)), lambda: AuthTimeRule(max_age), view))


# drf-spectacular finds its extensions by import: the OIDCAuthentication
# security scheme, when drf-spectacular is installed.
if find_spec("drf_spectacular") is not None:  # pragma: no branch
    from . import drf_openapi  # noqa: F401,E402
