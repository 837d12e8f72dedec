"""The contacts example API (see ``app.py``).

Run it on its own (development server, loopback only)::

    CONTACTS_API_ISSUER=http://127.0.0.1:5000 \
        flask --app "examples.contacts_api:create_app()" run --port 5001

or start the whole demo (provider + API + SPA) with ``python examples/demo.py``.
"""

from .app import create_app

__all__ = ["create_app"]
