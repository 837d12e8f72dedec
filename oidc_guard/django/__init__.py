"""Django integration: :class:`BearerMiddleware`, the ``require_*`` view
decorators, ``request.oidc_claims`` and :class:`TokenUser`.

.. code-block:: python

    # settings.py
    INSTALLED_APPS = [..., "oidc_guard.django"]      # system check, manage.py oidc_guard_check
    MIDDLEWARE = [..., "oidc_guard.django.BearerMiddleware"]
    OIDC_GUARD_ISSUER = "https://idp.example.com"
    OIDC_GUARD_AUDIENCE = "api://contacts"

    # views.py
    from oidc_guard.django import require_scope

    @require_scope("contacts")
    def contacts(request):
        return JsonResponse({"owner": request.oidc_claims.subject})

A translation only, as :mod:`oidc_guard.wsgi` and :mod:`oidc_guard.flask`:
the request becomes :class:`~oidc_guard.django._facts.DjangoFacts`, the
project's :class:`~oidc_guard.auth.Authenticator` (built once from the
``OIDC_GUARD_*`` settings, the same table and parsing as Flask's) finds
and validates the token once per request, and every refusal is
:func:`oidc_guard.errors.render_error`'s: the RFC 6750 ``WWW-Authenticate``
header and the JSON body ``{"error": ..., "error_description": ...}``, 503
with ``Retry-After`` while the provider is unusable.

What the middleware sets on every request: ``request.oidc_result`` (the
:class:`~oidc_guard.auth.AuthResult`), ``request.oidc_claims`` (the
:class:`~oidc_guard.Claims` of a valid token, else ``None``),
``request.oidc_user`` and, with a valid token, ``request.user``: a
:class:`TokenUser`, or what ``OIDC_GUARD_USER_LOADER`` returns.

The decorators work without the middleware too (they authenticate the
request themselves, once); the middleware adds ``OIDC_GUARD_REQUIRED``
(every request needs a token), 400 for a malformed request on every
route, the ``DPoP-Nonce`` of a successful response, :func:`userinfo`'s
refusals, and ``request.oidc_claims`` on public routes.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable, FrozenSet, Mapping, Optional, Tuple, cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async


from ..auth import AuthResult
from ..claims import Claims
from ..errors import ErrorResponse, InvalidToken, OIDCGuardError
from ..loghint import note_refusal
from ..rules import Decorators, InsufficientClaims, Rule, evaluate, includes, log_denial
from ._facts import DjangoFacts, raw_response, to_response
from ._state import Guard, current

__all__ = [
    "BearerMiddleware",
    "TokenUser",
    "Refused",
    "require_token",
    "require_scope",
    "require_any_scope",
    "require_scope_groups",
    "require_claims",
    "require_issuer",
    "require_acr",
    "require_auth_time",
    "includes",
    "InsufficientClaims",
    "get_result",
    "get_claims",
    "get_user",
    "userinfo",
    "guard",
]

logger = logging.getLogger("oidc_guard.django")


def guard() -> Guard:
    """The project's guard (validator, authenticator, user loader), built
    from the settings at the first call."""
    return current()


# --- the user -------------------------------------------------------------------


class TokenUser:
    """``request.user`` of a request with a valid token when no
    ``OIDC_GUARD_USER_LOADER`` is set: not a database row, just the token.

    ``username`` is the token's ``sub``, or its ``client_id`` when it has no
    ``sub`` (a client-credentials token); ``claims`` the
    :class:`~oidc_guard.Claims`.  Authenticated, active, never staff or
    superuser, no Django permissions (a token's rights are its scopes:
    use the decorators or :class:`oidc_guard.drf.HasScope`)."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    __slots__ = ("claims", "username")

    def __init__(self, claims: Claims) -> None:
        self.claims = claims
        self.username: str = claims.subject or claims.client_id or ""

    @property
    def scopes(self) -> FrozenSet[str]:
        return self.claims.scopes

    def get_username(self) -> str:
        return self.username

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False

    def has_perms(self, perm_list: Any, obj: Any = None) -> bool:
        return False

    def has_module_perms(self, module: str) -> bool:
        return False

    def __str__(self) -> str:
        return self.username

    def __repr__(self) -> str:
        return f"TokenUser({self.username!r}, issuer={self.claims.issuer!r})"

    def __eq__(self, other: object) -> bool:
        # sub is unique within an issuer only (OpenID Connect Core section 2)
        return (isinstance(other, TokenUser) and other.username == self.username
                and other.claims.issuer == self.claims.issuer)

    def __hash__(self) -> int:
        return hash((self.username, self.claims.issuer))


def _map_user(result: AuthResult, state: Guard) -> Tuple[AuthResult, Any]:
    """The user of a valid token, or the result refused when the user
    loader knows no user for it (401 ``invalid_token``, reason ``user``)."""
    claims = result.claims
    if claims is None:
        return result, None
    loader = state.user_loader
    if loader is None:
        return result, TokenUser(claims)
    user = loader(claims)
    if user is not None:
        return result, user
    error = InvalidToken("the token is valid but names no user of this application", reason="user")
    logger.info("refused token: OIDC_GUARD_USER_LOADER returned None reason=%s", error.reason)
    note_refusal(logger)
    return result._replace(claims=None, error=error), None


def _attach(request: Any, result: AuthResult, user: Any) -> None:
    request.oidc_result = result
    request.oidc_claims = result.claims
    request.oidc_user = user
    if user is not None:
        request.user = user


def django_request(request: Any) -> Any:
    """The Django ``HttpRequest`` of ``request`` (a DRF ``Request`` wraps one)."""
    return getattr(request, "_request", request)


def get_result(request: Any) -> AuthResult:
    """The request's :class:`~oidc_guard.auth.AuthResult`: the middleware's,
    else made now (once per request) with the project's guard."""
    request = django_request(request)
    result = request.__dict__.get("oidc_result")
    if result is None:
        state = current()
        result, user = _map_user(state.authenticator.authenticate(DjangoFacts(request)), state)
        _attach(request, result, user)
    return cast(AuthResult, result)


def get_claims(request: Any) -> Optional[Claims]:
    """The :class:`~oidc_guard.Claims` of the request's valid token, else ``None``."""
    return get_result(request).claims


def get_user(request: Any) -> Any:
    """The user of the request's valid token (a :class:`TokenUser` or the
    user loader's), else ``None``."""
    get_result(request)
    return django_request(request).__dict__.get("oidc_user")


# --- refusals raised in a view ------------------------------------------------------


class Refused(Exception):
    """Raised by :func:`userinfo` (or by you) inside a view: the
    middleware answers with ``response`` (an
    :class:`~oidc_guard.errors.ErrorResponse`) instead of a 500."""

    def __init__(self, response: "ErrorResponse") -> None:
        super().__init__(response.body.get("error", "refused"))
        self.response = response


_USERINFO_ATTR = "oidc_userinfo"


def userinfo(request: Any) -> Optional[Mapping[str, Any]]:
    """The UserInfo profile (OpenID Connect Core 5.3) of the request's
    user, from the provider (cached per token), or ``None`` when the
    request is anonymous.  When the provider refuses the token or is
    unusable, raises :class:`Refused`, which :class:`BearerMiddleware`
    answers (401, 403, or 503 with ``Retry-After``); a DPoP- or
    certificate-bound token gets 401 (see :mod:`oidc_guard.userinfo`)."""
    result = get_result(request)
    request = django_request(request)
    if result.claims is None or result.credential is None:
        return None
    if _USERINFO_ATTR in request.__dict__:
        return cast(Mapping[str, Any], request.__dict__[_USERINFO_ATTR])
    validator = current().validator
    fetch = getattr(validator, "userinfo", None)
    if fetch is None:
        raise TypeError(f"the validator {type(validator).__name__} has no userinfo()")
    try:
        profile = cast(Mapping[str, Any], fetch(result.credential.token, result.claims))
    except OIDCGuardError as exc:
        logger.info("UserInfo refused (%s %r) reason=%s: %s", request.method, request.path, exc.reason,
                    exc.description)
        raise Refused(result.render(exc)) from None
    request.__dict__[_USERINFO_ATTR] = profile
    return profile


# --- the middleware -----------------------------------------------------------------


def _finish(request: Any, response: Any, result: AuthResult) -> Any:
    """The response on its way out: the next DPoP nonce (RFC 9449 section
    9), and the headers of a refusal DRF rendered (its exception handler
    copies only ``WWW-Authenticate`` and ``Retry-After``)."""
    if result.dpop_nonce is not None:
        response["DPoP-Nonce"] = result.dpop_nonce
    refusal = request.__dict__.get("oidc_refusal")
    if refusal is not None and response.status_code == refusal.status:
        for name, value in refusal.headers:
            if name.lower() != "content-type" and not response.has_header(name):
                response[name] = value
    return response


class BearerMiddleware:
    """Authenticate every request that carries a token (``MIDDLEWARE``
    entry ``"oidc_guard.django.BearerMiddleware"``; put it after
    ``django.contrib.auth.middleware.AuthenticationMiddleware`` so that the
    token's user is the ``request.user`` the view sees).  Sync and async
    (ASGI) stacks alike.

    The guard is built when Django loads the middleware (at start-up): a
    wrong setting stops the project there, and ``OIDC_GUARD_CHECK_ON_START``
    fetches discovery and the JWKS then.  With ``OIDC_GUARD_REQUIRED`` every
    request without a valid token is answered here (401, or 503)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)
        state = current()
        if state.check_on_start:
            check = getattr(state.validator, "check", None)
            if check is None:
                raise TypeError(f"OIDC_GUARD_CHECK_ON_START is on but the validator "
                                f"{type(state.validator).__name__} has no check()")
            check()

    def _pre_answer(self, request: Any, state: Guard) -> Any:
        """A response this middleware gives before authenticating: the RFC
        9728 protected resource metadata when ``OIDC_GUARD_RESOURCE`` is set
        and the request is for its well-known path
        (:meth:`oidc_guard.auth.Authenticator.metadata_response`)."""
        answer = state.authenticator.metadata_response(request.method or "GET", request.path)
        if answer is None:
            return None
        return raw_response(answer.status, answer.headers, answer.body)

    def __call__(self, request: Any) -> Any:
        if self._async:
            return self.__acall__(request)
        state = current()
        early = self._pre_answer(request, state)
        if early is not None:
            return early
        result, user = _map_user(state.authenticator.authenticate(DjangoFacts(request)), state)
        _attach(request, result, user)
        refusal = state.authenticator.refusal(result)
        if refusal is not None:
            return to_response(refusal)
        return _finish(request, self.get_response(request), result)

    async def __acall__(self, request: Any) -> Any:
        from .._aio import authenticate_async

        state = current()
        early = self._pre_answer(request, state)
        if early is not None:
            return early
        result = await authenticate_async(state.authenticator, DjangoFacts(request))
        if result.claims is not None and state.user_loader is not None:
            # the loader may use the ORM: never on the event loop
            result, user = await sync_to_async(_map_user, thread_sensitive=True)(result, state)
        else:
            result, user = _map_user(result, state)
        _attach(request, result, user)
        refusal = state.authenticator.refusal(result)
        if refusal is not None:
            return to_response(refusal)
        return _finish(request, await self.get_response(request), result)

    def process_exception(self, request: Any, exception: BaseException) -> Any:
        """:class:`Refused` raised by a view (:func:`userinfo`): its response."""
        if isinstance(exception, Refused):
            return to_response(exception.response)
        return None


# --- decorators ------------------------------------------------------------------


def _denial(request: Any, rule: Optional[Rule]) -> Any:
    """``None`` to run the view, else the Django response refusing it."""
    result = get_result(request)
    denied = evaluate(result, rule)
    if denied is None:
        return None
    if result.claims is not None:
        # A refused token was logged when it was authenticated.
        log_denial(logger, f"({request.method} {request.path!r})", denied)
    return to_response(result.render(denied))


def _django_decorator(rule: Optional[Rule]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """How the Django decorators wrap a view function (or, through
    ``django.utils.decorators.method_decorator``, a method of a
    class-based view): run it when the request's result allows it.

    The view is marked ``csrf_exempt``: it only ever runs for a request
    with a valid token, which a browser never attaches by itself, so a
    cross-site request cannot use the victim's credentials (cookies do not
    get it in)."""
    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        if isinstance(view, type):
            raise TypeError("decorate a view function; for a class-based view use "
                            "method_decorator(require_...(...), name=\"dispatch\")")
        if not callable(view):
            raise TypeError("oidc_guard decorators wrap a view function")
        if iscoroutinefunction(view):
            @functools.wraps(view)
            async def guarded_async(request: Any, *args: Any, **kwargs: Any) -> Any:
                denied = await sync_to_async(_denial, thread_sensitive=True)(request, rule) \
                    if django_request(request).__dict__.get("oidc_result") is None else _denial(request, rule)
                if denied is not None:
                    return denied
                return await view(request, *args, **kwargs)

            guarded_async.csrf_exempt = True  # type: ignore[attr-defined]
            return guarded_async

        @functools.wraps(view)
        def guarded(request: Any, *args: Any, **kwargs: Any) -> Any:
            denied = _denial(request, rule)
            if denied is not None:
                return denied
            return view(request, *args, **kwargs)

        guarded.csrf_exempt = True  # type: ignore[attr-defined]
        return guarded

    return decorate


# The require_* family (oidc_guard.rules.Decorators) over Django views.
_decorators = Decorators(_django_decorator)
require_token = _decorators.require_token
require_scope = _decorators.require_scope
require_any_scope = _decorators.require_any_scope
require_scope_groups = _decorators.require_scope_groups
require_claims = _decorators.require_claims
require_issuer = _decorators.require_issuer
require_acr = _decorators.require_acr
require_auth_time = _decorators.require_auth_time
