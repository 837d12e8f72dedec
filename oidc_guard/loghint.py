"""A one-time hint when the reasons for refusals cannot be seen.

Why a token was refused is logged at INFO under ``oidc_guard`` (the reason,
never the token).  Python's logging shows nothing at INFO until the
application configures it: with ``flask run`` the console shows the 401 and
not why.  So the first time a request is refused while those INFO lines go
nowhere, one WARNING says how to see them (a WARNING is shown even with no
logging configured, by ``logging.lastResort`` on stderr).

No hint when the INFO lines are shown (a handler that takes INFO is reached
and the logger is enabled for INFO), and none when the application set the
level of ``oidc_guard`` (or the refusing sub-logger) above INFO itself:
quiet on purpose.  At most once per process.
"""

from __future__ import annotations

import logging
import threading
from typing import Optional

__all__ = ["note_refusal", "reasons_visible"]

_HINT = (
    "oidc_guard refused a request; the reason is logged at INFO under the 'oidc_guard' logger, "
    "which is not shown now. To see why tokens are refused: logging.basicConfig(level=logging.INFO), "
    "or logging.getLogger('oidc_guard').setLevel(logging.INFO) with a handler. (Shown once.)"
)

_lock = threading.Lock()
_hinted = False


def _reaches_info_handler(logger: logging.Logger) -> bool:
    """True when a record at INFO from ``logger`` reaches a handler of its
    own or of an ancestor that accepts INFO (as Logger.callHandlers walks
    them).  ``logging.lastResort`` is not such a handler: it shows WARNING
    and above only."""
    current: Optional[logging.Logger] = logger
    while current is not None:
        for handler in current.handlers:
            if handler.level <= logging.INFO:
                return True
        if not current.propagate:
            return False
        parent = current.parent
        current = parent if isinstance(parent, logging.Logger) else None
    return False


def _silenced_on_purpose(logger: logging.Logger) -> bool:
    """The application itself set the level of ``logger`` or of an
    ``oidc_guard`` ancestor above INFO
    (``logging.getLogger("oidc_guard").setLevel(logging.WARNING)``)."""
    current: Optional[logging.Logger] = logger
    while current is not None and (current.name == "oidc_guard" or current.name.startswith("oidc_guard.")):
        if current.level != logging.NOTSET:
            return current.level > logging.INFO
        parent = current.parent
        current = parent if isinstance(parent, logging.Logger) else None
    return False


def reasons_visible(logger: logging.Logger) -> bool:
    """Whether ``logger``'s INFO lines are shown anywhere."""
    return logger.isEnabledFor(logging.INFO) and _reaches_info_handler(logger)


def note_refusal(logger: logging.Logger) -> None:
    """Call after logging a refusal's reason at INFO on ``logger``: the
    first time in the process that the reason went unseen, log the hint at
    WARNING on ``oidc_guard``."""
    global _hinted
    if _hinted:  # the common path: one global read
        return
    if reasons_visible(logger) or _silenced_on_purpose(logger):
        return
    with _lock:
        if _hinted:
            return
        _hinted = True
    logging.getLogger("oidc_guard").warning(_HINT)
