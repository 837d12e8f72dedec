"""The contacts example API as a FastAPI app (see ``app.py``); the Flask one
is ``examples/contacts_api``, whose storage and rules it shares.

Run it on its own (loopback only)::

    CONTACTS_API_ISSUER=http://127.0.0.1:5000 \
        uvicorn --factory contacts_fastapi:create_app --app-dir examples --port 5001
"""

from .app import create_app

__all__ = ["create_app"]
