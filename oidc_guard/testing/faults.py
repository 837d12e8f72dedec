"""Fault injection for the development provider: what
:meth:`LocalIssuer.set_fault <oidc_guard.testing.LocalIssuer.set_fault>`
makes an endpoint do instead of (or before) its normal answer.

Test and development tool only; never use it in production.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, cast

from .jose import compact_json

__all__ = ["FAULT_KINDS", "Fault", "FaultTable"]

#: The endpoints a fault can be set on.
FAULT_KINDS = ("discovery", "jwks", "introspection", "userinfo")


@dataclass
class Fault:
    """One endpoint's misbehaviour: sleep ``delay`` seconds, then (unless
    only a delay is set) answer ``status`` / ``body`` / ``content_type`` /
    ``headers`` instead of the normal answer."""

    status: Optional[int] = None
    body: Any = None
    delay: Optional[float] = None
    content_type: Optional[str] = None
    headers: Dict[str, str] = field(default_factory=dict)

    @property
    def delay_only(self) -> bool:
        """True when the fault only slows the normal answer down."""
        return self.status is None and self.body is None and self.content_type is None and not self.headers

    @property
    def answer_status(self) -> int:
        return 200 if self.status is None else int(self.status)

    def answer_body(self, default: Any) -> bytes:
        """The body to send: ``body`` (bytes or str as is, a dict or list as
        JSON), else ``default`` (encoded the same way)."""
        body = self.body if self.body is not None else default
        if isinstance(body, (dict, list)):
            return compact_json(body)
        if isinstance(body, str):
            return body.encode("utf-8")
        return cast(bytes, body)  # bytes, sent as is

    @property
    def answer_content_type(self) -> str:
        return self.content_type or "application/json"


class FaultTable:
    """The faults in force, per endpoint kind (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: Dict[str, Fault] = {}

    def set(self, kind: str, status: Optional[int] = None, body: Any = None, delay: Optional[float] = None,
            content_type: Optional[str] = None, headers: Optional[Mapping[str, str]] = None) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError("fault kind must be 'discovery', 'jwks', 'introspection' or 'userinfo'")
        with self._lock:
            self._faults[kind] = Fault(status, body, delay, content_type, dict(headers or {}))

    def clear(self, kind: Optional[str] = None) -> None:
        with self._lock:
            if kind is None:
                self._faults.clear()
            else:
                self._faults.pop(kind, None)

    def get(self, kind: str) -> Optional[Fault]:
        with self._lock:
            return self._faults.get(kind)
