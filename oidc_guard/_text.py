"""Bounded renderings of untrusted values (a ``kid``, an ``iss``, a member
of a provider's document) for error messages and logs: ``repr`` escapes
control characters and quotes, and the length is cut, so a hostile value can
neither forge log lines nor make an error message huge."""

from __future__ import annotations

from typing import Any

__all__ = ["show"]


def show(value: Any, limit: int = 64) -> str:
    """``repr(value)``, cut to ``limit`` characters (ending in ``...``)."""
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text
