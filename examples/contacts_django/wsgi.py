"""``gunicorn contacts_django.wsgi:application`` (run from examples/)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contacts_django.settings")

from contacts_django.config import wrap  # noqa: E402

application = wrap()
