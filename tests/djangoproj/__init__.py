"""A small Django project for the Django / DRF adapter's tests
(tests/test_django*.py): settings, URLs and views.  Not named ``django``:
tests/ is on sys.path and would shadow the real package.

``setup()`` configures Django once per process; each test sets the
``OIDC_GUARD_*`` settings of its own issuer with ``override_settings``.
"""

import os


def setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djangoproj.settings")
    import django
    from django.conf import settings

    if not settings.configured or not getattr(setup, "done", False):
        django.setup()
        setup.done = True


def guard_settings(iss, **extra):
    """``override_settings`` for an issuer (a LocalIssuer): its URL and
    audience, realm contacts-api, plus ``extra`` (OIDC_GUARD_* keys)."""
    from django.test import override_settings

    values = {"OIDC_GUARD_ISSUER": iss.issuer, "OIDC_GUARD_AUDIENCE": iss.audience,
              "OIDC_GUARD_REALM": "contacts-api", "OIDC_GUARD_HTTP_TIMEOUT": 2}
    values.update(extra)
    return override_settings(**values)
