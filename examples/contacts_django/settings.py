"""``DJANGO_SETTINGS_MODULE=contacts_django.settings`` (gunicorn, manage.py):
the settings of :func:`contacts_django.config.build_settings` from the
environment (``CONTACTS_API_*`` and ``OIDC_GUARD_*``)."""

from contacts_django.config import build_settings

globals().update(build_settings(environ=True))
