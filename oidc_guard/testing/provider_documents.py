"""The development provider's documents: the discovery document (OpenID
Connect Discovery 1.0 section 4) and the JWKS (RFC 7517 section 5), with
the faults that tests set on them.

Test and development tool only; never use it in production.
"""

from __future__ import annotations

from typing import List, Tuple

from .endpoint import Request, RequestHandler

__all__ = ["get_discovery", "get_jwks"]


def get_discovery(handler: RequestHandler, request: Request) -> None:
    _serve_document(handler, "discovery")


def get_jwks(handler: RequestHandler, request: Request) -> None:
    _serve_document(handler, "jwks")


def _serve_document(handler: RequestHandler, kind: str) -> None:
    """The document, after a fault's delay; a fault with a status, body,
    content type or headers answers with those instead (its default body:
    the document for a 2xx status, else ``{"error": "server_error"}``)."""
    provider = handler.provider
    fault = provider.fault(kind)
    if fault is not None and handler.sleep_fault_delay(fault):
        return  # the issuer was stopped meanwhile: answer nothing
    document = provider.discovery_document() if kind == "discovery" else provider.jwks()
    headers: List[Tuple[str, str]] = []
    if kind == "jwks" and provider.jwks_max_age is not None:
        headers.append(("Cache-Control", f"max-age={int(provider.jwks_max_age)}"))
    if fault is None or fault.delay_only:
        handler.respond_json(200, document, headers)
        return
    status = fault.answer_status
    body = fault.answer_body(document if 200 <= status < 300 else {"error": "server_error"})
    headers.extend(fault.headers.items())
    handler.respond(status, body, fault.answer_content_type, headers)
