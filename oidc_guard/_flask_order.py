"""The Flask decorator-order check: ``@require_scope(...)`` written *above*
``@app.get(...)`` protects nothing, and this finds it.

The route decorator runs first, registers the undecorated function and
returns it unchanged, and only then does our decorator wrap it - the
wrapper is bound to the module name, the application serves the original.

Every function one of our decorators wraps is recorded here (weakly: the
record never keeps a function alive), and every wrapper names what it
wraps.  A view registered in ``app.view_functions`` that one of our
decorators wrapped, while no wrapper of it is registered in the same app,
is that mistake (a function registered undecorated on purpose *and*
decorated under another endpoint is fine: its wrapper is registered too).
Checked by ``init_app`` (views registered so far) and before the first
request (Flask refuses new routes after it): ConfigurationError naming the
view, so the route fails closed instead of being silently public.

Shared by :mod:`oidc_guard.flask` only.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable, List

from flask import Flask

from .errors import ConfigurationError

__all__ = ["record_wrapped", "check_view_order", "view_order_check_once"]

_WRAPPED: "weakref.WeakKeyDictionary[Callable[..., Any], bool]" = weakref.WeakKeyDictionary()
_WRAPS_ATTRIBUTE = "__oidc_guard_wraps__"


def record_wrapped(view: Callable[..., Any], wrapper: Callable[..., Any]) -> None:
    try:
        _WRAPPED[view] = True
    except TypeError:  # a callable that cannot be weakly referenced: not checked
        return
    setattr(wrapper, _WRAPS_ATTRIBUTE, view)


def _protected_originals(app: Flask) -> List[Callable[..., Any]]:
    """Functions that a registered view reaches through one of our wrappers
    (following ``__wrapped__`` through other decorators too)."""
    out: List[Callable[..., Any]] = []
    for view in app.view_functions.values():
        seen = 0
        node: Any = view
        while node is not None and seen < 100:  # bounded: __wrapped__ chains can loop
            wrapped = getattr(node, _WRAPS_ATTRIBUTE, None)
            if wrapped is not None:
                out.append(wrapped)
            node = getattr(node, "__wrapped__", None)
            seen += 1
    return out


def check_view_order(app: Flask) -> None:
    """ConfigurationError if a view of ``app`` was decorated by oidc_guard
    only after Flask registered it (see the module doc)."""
    protected = _protected_originals(app)
    wrong = []
    for endpoint, view in app.view_functions.items():
        try:
            decorated = view in _WRAPPED
        except TypeError:
            continue
        if decorated and not any(view is original for original in protected):
            name = f"{getattr(view, '__module__', '?')}.{getattr(view, '__qualname__', repr(view))}"
            wrong.append(f"{name} (endpoint {endpoint!r})")
    if wrong:
        raise ConfigurationError(
            "these views are registered unprotected because an oidc_guard decorator sits above the "
            f"route decorator: {', '.join(sorted(wrong))}. Put @require_token / @require_scope(...) "
            "below @app.route / @app.get / @bp.get, directly above the def"
        )


def view_order_check_once(app: Flask) -> Callable[[], None]:
    """A before_request hook that checks ``app`` once, at its first request
    (and again at every request while the check fails: fail closed)."""
    checked = False

    def check_view_order_once() -> None:
        nonlocal checked
        if not checked:
            check_view_order(app)
            checked = True

    return check_view_order_once
