"""The project's settings: environment variables and defaults of the Flask
example (``CONTACTS_API_*``), any ``OIDC_GUARD_*`` environment variable,
then a mapping (``create_app``)."""

from __future__ import annotations

import os
import sys
from typing import Any, Dict, Mapping, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.dirname(HERE)
if EXAMPLES not in sys.path:
    sys.path.insert(0, EXAMPLES)  # contacts_api (storage, validation, CORS) lives next door

from oidc_guard import config as guard_config  # noqa: E402

from contacts_api.app import DEFAULTS, MAX_CONTACTS_PER_OWNER, MAX_CONTENT_LENGTH, MAX_IMPORT_EMAILS  # noqa: E402


def build_settings(config: Optional[Mapping[str, Any]] = None, *, environ: bool = False) -> Dict[str, Any]:
    """Django settings: the example's keys (``OIDC_GUARD_*`` exactly as for
    Flask), then the framework's own.  ``environ=True`` (settings.py: gunicorn,
    manage.py) also takes every ``OIDC_GUARD_*`` environment variable
    (reference tokens, DPoP, ...), checked against the one table of
    settings; ``create_app(config)`` takes ``config`` instead, as the Flask
    example does."""
    values: Dict[str, Any] = {}
    for key, (env_name, default) in DEFAULTS.items():
        values[key] = os.environ.get(env_name, default)
    if environ:
        values.update(guard_config.from_environ())
    values.update(config or {})
    if "CONTACTS_DB_PATH" not in (config or {}) and "CONTACTS_API_DB" not in os.environ:
        values["CONTACTS_DB_PATH"] = os.path.join(HERE, "instance", "contacts.sqlite3")  # its own data
    origins = values["CORS_ALLOWED_ORIGINS"]
    if isinstance(origins, str):
        origins = origins.replace(",", " ").split()
    values["CORS_ALLOWED_ORIGINS"] = list(origins)
    values.setdefault("MAX_IMPORT_EMAILS", MAX_IMPORT_EMAILS)
    values.setdefault("MAX_CONTACTS_PER_OWNER", MAX_CONTACTS_PER_OWNER)
    values["CONTACTS_ISSUER"] = values["OIDC_GUARD_ISSUER"]
    legacy = values.pop("LEGACY_ISSUER", None)
    legacy_audience = values.pop("LEGACY_AUDIENCE", None)
    if legacy:
        # Migration mode (see the Flask example): both issuers, each with its
        # own audience; the new provider's introspection settings are its own.
        current: Dict[str, Any] = {"issuer": values.pop("OIDC_GUARD_ISSUER"),
                                   "audience": values.pop("OIDC_GUARD_AUDIENCE")}
        for key in [k for k in values if k.startswith("OIDC_GUARD_INTROSPECTION_")
                    or k in ("OIDC_GUARD_VALIDATION_MODE", "OIDC_GUARD_SHARED_CACHE")]:
            current[key[len("OIDC_GUARD_"):].lower()] = values.pop(key)
        values["OIDC_GUARD_ISSUERS"] = [
            current, {"issuer": legacy, "audience": legacy_audience or legacy.rstrip("/") + "/resources"}]
    values.update(
        SECRET_KEY=os.environ.get("CONTACTS_DJANGO_SECRET_KEY", "contacts-django-example-not-secret"),
        DEBUG=False,
        ALLOWED_HOSTS=["127.0.0.1", "localhost", "[::1]"],
        ROOT_URLCONF="contacts_django.urls",
        USE_TZ=True,
        DATABASES={},  # the contacts live in contacts_api's SQLite store
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "rest_framework",
                        "oidc_guard.django"],
        MIDDLEWARE=["contacts_django.views.SecurityHeaders", "django.middleware.common.CommonMiddleware",
                    "oidc_guard.django.BearerMiddleware"],
        REST_FRAMEWORK={
            "DEFAULT_AUTHENTICATION_CLASSES": ["oidc_guard.drf.OIDCAuthentication"],
            "DEFAULT_PERMISSION_CLASSES": ["oidc_guard.drf.HasScope"],
            "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
            "EXCEPTION_HANDLER": "contacts_django.views.json_errors",
            "UNAUTHENTICATED_USER": None,
        },
        DATA_UPLOAD_MAX_MEMORY_SIZE=MAX_CONTENT_LENGTH,
        APPEND_SLASH=False,
        LOGGING_CONFIG=None,
    )
    return values


def wrap() -> Any:
    """Django's WSGI application behind the Flask example's CORS middleware,
    outermost, so that every answer (the guard's 401/403/503 included)
    carries the headers the SPA needs to read it."""
    from django.conf import settings
    from django.core.wsgi import get_wsgi_application

    from contacts_api.app import CorsMiddleware

    return CorsMiddleware(get_wsgi_application(), settings.CORS_ALLOWED_ORIGINS)
