"""The contacts API again, as a Django project with Django REST framework
views protected by ``oidc_guard.drf`` (and ``oidc_guard.django``): the same
routes, scopes and answers as ``examples/contacts_api`` (Flask), so the
single-page app and the worker can call either.

=====================  ==============  =====================================================
route                  needs           what it does
=====================  ==============  =====================================================
GET  /health           nothing         liveness; never touches the identity provider
POST /contacts/import  scope contacts  associate e-mail addresses with the caller's account
GET  /contacts         scope contacts  the caller's own contacts, nobody else's
POST /wte/jobs         scope wte       record a back-end job (client tokens welcome)
GET  /coordinate       scope coordinate  the "coordinate" app's entry point
GET  /me               a user token    the caller's UserInfo profile (OIDC Core 5.3)
POST /session/handoff  any valid token  the SPA's id_token checked against this request's
                                       access token (OIDC Core 3.2.2.11)
=====================  ==============  =====================================================

Run it (loopback, development provider of ``examples/demo.py`` on :5000)::

    cd examples && CONTACTS_API_ISSUER=http://127.0.0.1:5000 \\
        gunicorn -b 127.0.0.1:5001 contacts_django.wsgi:application

or ``python examples/contacts_django/manage.py oidc_guard_check``.  The
configuration variables are the Flask example's (``CONTACTS_API_ISSUER``,
``CONTACTS_API_AUDIENCE``, ...; see ``contacts_django/config.py``).

The storage (``contacts_api/db.py``), the e-mail validation and the CORS
middleware are the Flask example's own, imported from there (so that the two
APIs cannot drift apart); that import needs Flask installed too.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

__all__ = ["create_app"]


def create_app(config: Optional[Mapping[str, Any]] = None) -> Any:
    """The WSGI application (CORS outermost, as in the Flask example).
    Django has one set of settings per process: call this once."""
    import django
    from django.conf import settings

    from .config import build_settings

    if settings.configured:
        raise RuntimeError("Django is already configured in this process: one contacts_django app per process")
    values = build_settings(config)
    settings.configure(**values)
    django.setup()
    from .config import wrap

    return wrap()
