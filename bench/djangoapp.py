"""The Django project bench section "django" loads (in process and under
gunicorn): one DRF view answering ``{"hello": "world"}`` twice,

* ``GET /open``: ``authentication_classes = []``, ``AllowAny`` (the baseline);
* ``GET /protected``: the same view with ``OIDCAuthentication`` and
  ``HasScope`` (``required_scopes = ["contacts"]``).

No middleware besides Django's own request handling, no database.  The
issuer and audience come from ``configure()`` or, for gunicorn, from
``BENCH_ISSUER`` / ``BENCH_AUDIENCE``::

    BENCH_ISSUER=http://127.0.0.1:PORT gunicorn --pythonpath bench 'djangoapp:application()'
"""

from __future__ import annotations

import os
from typing import Any, List, Optional

urlpatterns: List[Any] = []


def configure(issuer: str, audience: str = "contacts") -> None:
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="bench-not-secret", DEBUG=False, ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__, USE_TZ=True,
        DATABASES={}, LOGGING_CONFIG=None,
        # CommonMiddleware sets Content-Length (the load client reads it), on both views alike
        MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"],
        REST_FRAMEWORK={"UNAUTHENTICATED_USER": None,
                        "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]},
        OIDC_GUARD_ISSUER=issuer, OIDC_GUARD_AUDIENCE=audience,
    )
    django.setup()
    from django.urls import path
    from rest_framework.permissions import AllowAny
    from rest_framework.response import Response
    from rest_framework.views import APIView

    from oidc_guard.drf import HasScope, OIDCAuthentication

    class Open(APIView):
        authentication_classes: List[Any] = []
        permission_classes = [AllowAny]

        def get(self, request: Any) -> Response:
            return Response({"hello": "world"})

    class Protected(Open):
        authentication_classes = [OIDCAuthentication]
        permission_classes = [HasScope]
        required_scopes = ["contacts"]

    urlpatterns[:] = [path("open", Open.as_view()), path("protected", Protected.as_view())]


def application(issuer: Optional[str] = None, audience: Optional[str] = None) -> Any:
    """The WSGI application (gunicorn: ``'djangoapp:application()'``)."""
    configure(issuer or os.environ["BENCH_ISSUER"], audience or os.environ.get("BENCH_AUDIENCE", "contacts"))
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()
