"""The contacts API's DRF views: the Flask example's routes and answers.

Every view authenticates with ``oidc_guard.drf.OIDCAuthentication`` and is
protected by ``HasScope`` with its ``required_scopes`` (the project's
defaults, ``REST_FRAMEWORK`` in config.py); ``request.auth`` is the token's
``Claims``.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any, Dict, List, Optional, Tuple

from django.conf import settings
from django.http import JsonResponse
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView, exception_handler

from contacts_api.app import DELETE_ACR, MAX_NONCE_LENGTH, MAX_REPORTED_ERRORS, normalise_email
from contacts_api.db import ContactLimitExceeded, Store
from oidc_guard import InvalidToken, MultiIssuerValidator, OIDCGuardError, ProviderError, TokenValidator
from oidc_guard.django import get_result, guard, userinfo
from oidc_guard.drf import HasAcr, HasScope
from oidc_guard.errors import PROVIDER_UNAVAILABLE

_NAMES = {400: "invalid_request", 401: "unauthorized", 403: "access_denied", 404: "not_found",
          405: "method_not_allowed", 413: "request_too_large"}


# --- errors as JSON, security headers --------------------------------------------


def json_errors(exc: Exception, context: Dict[str, Any]) -> Optional[Response]:
    """DRF's answers in the API's shape ``{"error", "error_description"}``;
    oidc_guard's refusals already have it (and their challenge headers)."""
    response = exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "error" not in response.data:
        detail = response.data.get("detail", "")
        response.data = {"error": _NAMES.get(response.status_code, "error"), "error_description": str(detail)}
    return response


def not_found(request: Any, exception: Any = None) -> JsonResponse:
    return JsonResponse({"error": "not_found", "error_description": "no such route"}, status=404)


class SecurityHeaders:
    """``Cache-Control: no-store`` (unless set) and ``nosniff`` on every answer."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        response = self.get_response(request)
        if not response.has_header("Cache-Control"):
            response["Cache-Control"] = "no-store"
        response["X-Content-Type-Options"] = "nosniff"
        return response


# --- helpers ------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def store() -> Store:
    return Store(settings.CONTACTS_DB_PATH, max_contacts_per_owner=int(settings.MAX_CONTACTS_PER_OWNER))


def _bad_request(description: str, **extra: Any) -> Response:
    body: Dict[str, Any] = {"error": "invalid_request", "error_description": description}
    body.update(extra)
    return Response(body, status=400)


def _needs_user(what: str) -> Response:
    """403 for a client-credentials token on a route that acts for a user."""
    return Response({"error": "access_denied",
                     "error_description": f"{what} needs a user's access token; this is a client-credentials token"},
                    status=403)


def _json_object(request: Any) -> Optional[Dict[str, Any]]:
    """The body as a JSON object (Content-Type application/json or
    ``+json``), else None."""
    media = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    if not (media == "application/json" or (media.startswith("application/") and media.endswith("+json"))):
        return None
    try:
        data = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _owner(request: Any) -> Tuple[str, str]:
    return request.auth.issuer or "", request.auth.subject or ""


def _id_token_validator() -> Any:
    validator = guard().validator
    if isinstance(validator, (TokenValidator, MultiIssuerValidator)):
        return validator
    return TokenValidator(issuer=settings.CONTACTS_ISSUER, audience=settings.SPA_CLIENT_ID)


class _Api(APIView):
    def initial(self, request: Any, *args: Any, **kwargs: Any) -> None:
        # 413 before anything is read (Flask's MAX_CONTENT_LENGTH)
        length = request.META.get("CONTENT_LENGTH") or "0"
        if length.isdigit() and int(length) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            from rest_framework.exceptions import APIException

            class TooLarge(APIException):
                status_code = 413
                default_detail = "the request body is too large"

            raise TooLarge()
        super().initial(request, *args, **kwargs)


# --- the routes ------------------------------------------------------------------------


class Health(_Api):
    authentication_classes: List[Any] = []
    permission_classes = [AllowAny]

    def get(self, request: Any) -> Response:
        return Response({"status": "ok"})


class Me(_Api):
    permission_classes = [IsAuthenticated]

    def get(self, request: Any) -> Response:
        # UserInfo refusals (401/503) are answered by BearerMiddleware.
        if request.auth.is_client_token:
            return _needs_user("a profile")
        return Response({"profile": dict(userinfo(request) or {})})


class ImportContacts(_Api):
    required_scopes = ["contacts"]

    def post(self, request: Any) -> Response:
        if request.auth.is_client_token:
            return _needs_user("importing contacts")
        data = _json_object(request)
        if data is None:
            return _bad_request('send a JSON object like {"emails": ["ann@example.com"]} with Content-Type: '
                                'application/json')
        emails = data.get("emails")
        if not isinstance(emails, list):
            return _bad_request('"emails" must be a list of e-mail addresses')
        limit = int(settings.MAX_IMPORT_EMAILS)
        if not emails:
            return _bad_request('"emails" is empty: send at least one address')
        if len(emails) > limit:
            return _bad_request(f'"emails" has {len(emails)} entries; at most {limit} per request')
        clean: List[str] = []
        problems: List[Dict[str, Any]] = []
        for index, value in enumerate(emails):
            try:
                clean.append(normalise_email(value))
            except ValueError as exc:
                problems.append({"index": index, "value": value[:100] if isinstance(value, str) else None,
                                 "reason": str(exc)})
        if problems:
            return _bad_request(
                f"{len(problems)} of {len(emails)} entries are not valid e-mail addresses; nothing was imported",
                invalid=problems[:MAX_REPORTED_ERRORS])
        iss, sub = _owner(request)
        try:
            result = store().import_contacts(iss, sub, clean)
        except ContactLimitExceeded as exc:
            return _bad_request(str(exc))
        return Response(dict(sub=sub, **result.to_dict()))


class ListContacts(_Api):
    required_scopes = ["contacts"]

    def get(self, request: Any) -> Response:
        if request.auth.is_client_token:
            return _needs_user("listing contacts")
        iss, sub = _owner(request)
        contacts = store().list_contacts(iss, sub)
        return Response({"sub": sub, "count": len(contacts), "contacts": contacts})


class DeleteContact(_Api):
    """``DELETE /contacts/<email>``: scope contacts and a stronger sign-in
    (RFC 9470 step-up, ``acr`` urn:oidc-guard:loa:2), as the Flask app."""

    required_scopes = ["contacts"]
    required_acr = [DELETE_ACR]
    permission_classes = [HasScope, HasAcr]

    def delete(self, request: Any, email: str) -> Response:
        if request.auth.is_client_token:
            return _needs_user("deleting contacts")
        iss, sub = _owner(request)
        if not store().delete_contact(iss, sub, email):
            return Response({"error": "not_found", "error_description": "you have no contact with this address"},
                            status=404)
        return Response({"deleted": email, "acr": request.auth.get("acr")})


class WteJobs(_Api):
    required_scopes = ["wte"]

    def post(self, request: Any) -> Response:
        claims = request.auth
        data = _json_object(request) if request.META.get("CONTENT_LENGTH") not in (None, "", "0") else {}
        if data is None:
            return _bad_request("send a JSON object (or an empty body)")
        kind = data.get("kind", "sync")
        if not isinstance(kind, str) or not re.fullmatch(r"[a-z0-9_-]{1,64}", kind):
            return _bad_request('"kind" must be 1-64 characters of a-z, 0-9, "_" or "-"')
        payload = data.get("payload", {})
        if not isinstance(payload, dict):
            return _bad_request('"payload" must be a JSON object')
        job = store().record_job(claims.issuer or "", claims.client_id, claims.subject, kind, payload)
        return Response({"job": job, "client_token": claims.is_client_token}, status=202)


class Coordinate(_Api):
    required_scopes = ["coordinate"]

    def get(self, request: Any) -> Response:
        claims = request.auth
        return Response({"message": "coordinate: you may coordinate", "sub": claims.subject,
                         "client_id": claims.client_id, "scopes": sorted(claims.scopes)})


class SessionHandoff(_Api):
    """The SPA's id_token, checked against this request's access token
    (OIDC Core 3.2.2.11: nonce, at_hash) and its sub against the token's."""

    permission_classes = [IsAuthenticated]

    def post(self, request: Any) -> Response:
        access = request.auth
        if access.is_client_token:
            return _needs_user("the session handoff")
        data = _json_object(request)
        if data is None:
            return _bad_request('send a JSON object {"id_token": "...", "nonce": "..."}')
        id_token, nonce = data.get("id_token"), data.get("nonce")
        if not isinstance(id_token, str) or not id_token:
            return _bad_request('"id_token" is missing')
        if not isinstance(nonce, str) or not nonce or len(nonce) > MAX_NONCE_LENGTH:
            return _bad_request('"nonce" is missing (the implicit flow requires one; OIDC Core 3.2.2.1)')
        credential = get_result(request).credential
        if credential is None or credential.scheme != "bearer" or credential.source != "header":
            return _bad_request("send the access token in the Authorization header for the handoff")
        client_id = settings.SPA_CLIENT_ID
        try:
            id_claims = _id_token_validator().validate_id_token(id_token, client_id=client_id, nonce=nonce,
                                                                access_token=credential.token)
        except ProviderError as exc:
            return Response({"error": exc.error, "error_description": PROVIDER_UNAVAILABLE}, status=503,
                            headers={"Retry-After": str(exc.retry_after)})
        except (InvalidToken, OIDCGuardError) as exc:
            # 400: the access token was fine, the id_token in the body was not.
            return Response({"error": "invalid_id_token", "error_description": exc.description}, status=400)
        if id_claims.subject != access.subject:
            return Response({"error": "invalid_id_token", "error_description":
                             "the id_token's sub is not the access token's sub: they belong to different users"},
                            status=400)
        user = {name: id_claims[name] for name in ("sub", "name", "preferred_username", "email") if name in id_claims}
        return Response({
            "user": user,
            "issuer": id_claims.issuer,
            "client_id": client_id,
            "auth_time": id_claims.get("auth_time"),
            "id_token_expires_at": id_claims.expires_at.isoformat() if id_claims.expires_at else None,
            "access_token_expires_at": access.expires_at.isoformat() if access.expires_at else None,
            "scopes": sorted(access.scopes),
            "checked": ["signature (issuer JWKS)", "iss", f"aud contains {client_id}", "exp / iat", "nonce",
                        "at_hash matches the bearer token", "sub equals the access token's sub"],
        })
