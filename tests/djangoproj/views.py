"""Views of the test project: function views, a class-based view through
method_decorator, an async view, DRF views."""

from django.http import JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from oidc_guard.django import (
    require_acr,
    require_auth_time,
    get_claims, includes, require_any_scope, require_claims, require_issuer, require_scope,
    require_scope_groups, require_token, userinfo,
)
from oidc_guard.drf import HasAcr, HasAnyScope, HasRecentAuthentication, HasScope, OIDCAuthentication


def _who(request):
    claims = request.oidc_claims
    return {"sub": claims.subject if claims else None,
            "user": getattr(getattr(request, "user", None), "username", None)}


def public(request):
    return JsonResponse({"claims": request.oidc_claims is not None, "sub": getattr(request.oidc_claims, "subject", None)})


@require_token
def token_view(request):
    return JsonResponse(_who(request))


@require_scope("contacts")
def contacts(request):
    return JsonResponse(_who(request))


@require_any_scope("wte", "coordinate")
def any_scope(request):
    return JsonResponse(_who(request))


@require_scope_groups("contacts wte", "coordinate")
def groups(request):
    return JsonResponse(_who(request))


@require_claims(tenant="acme", roles=includes("admin"))
def tenant(request):
    return JsonResponse(_who(request))


@require_issuer("https://nobody.example")
def issuer_only(request):
    return JsonResponse(_who(request))


@require_token(bound=True)
def bound(request):
    return JsonResponse(dict(_who(request), binding=request.oidc_claims.binding))


@require_scope("contacts")
async def async_contacts(request):
    return JsonResponse(_who(request))


@method_decorator(require_scope("contacts"), name="dispatch")
class ContactsView(View):
    def get(self, request):
        return JsonResponse(_who(request))

    def post(self, request):
        return JsonResponse(dict(_who(request), posted=True))


@require_token
def me(request):
    return JsonResponse({"profile": dict(userinfo(request) or {})})


class _Drf(APIView):
    authentication_classes = [OIDCAuthentication]

    def get(self, request):
        return Response({"sub": getattr(request.auth, "subject", None),
                         "user": getattr(request.user, "username", None),
                         "authenticated": bool(getattr(request.user, "is_authenticated", False))})


class DrfContacts(_Drf):
    permission_classes = [HasScope]
    required_scopes = ["contacts"]


class DrfStrong(_Drf):
    permission_classes = [HasAcr]
    required_acr = ["urn:oidc-guard:loa:2"]


class DrfRecent(_Drf):
    permission_classes = [HasRecentAuthentication]
    max_auth_age = 300


class DrfAny(_Drf):
    permission_classes = [HasAnyScope]
    required_scopes = ["wte", "coordinate"]


class DrfByMethod(_Drf):
    permission_classes = [HasScope]
    required_scopes_by_method = {"GET": ["contacts"], "POST": ["contacts", "wte"]}

    def post(self, request):
        return Response({"posted": True, "sub": request.auth.subject})


class DrfOpen(_Drf):
    permission_classes = [AllowAny]


class DrfAuthenticated(_Drf):
    permission_classes = [IsAuthenticated]


class DrfUnconfigured(_Drf):
    permission_classes = [HasScope]


class DrfPlain(APIView):
    """The benchmark's unprotected twin."""
    authentication_classes = []
    permission_classes = [AllowAny]

    def get(self, request):
        return Response({"sub": None})


@require_acr("urn:oidc-guard:loa:2")
def strong(request):
    return JsonResponse(_who(request))


@require_auth_time(max_age=300)
def recent(request):
    return JsonResponse(_who(request))
