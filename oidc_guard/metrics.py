"""OpenTelemetry metrics, off until :func:`enable` is called.

``oidc_guard.metrics.enable()`` (needs ``opentelemetry-api``: the ``metrics``
extra) creates three instruments on a meter named ``oidc_guard``:

* ``oidc_guard.decisions``, a counter, one per validation; attributes
  ``outcome`` (``accepted``, ``refused`` or ``unavailable``) and, for
  refusals and outages, ``reason``;
* ``oidc_guard.provider.requests``, a counter, one per outgoing call;
  attributes ``kind`` (``discovery``, ``jwks``, ``introspection`` or
  ``userinfo``) and ``outcome`` (``ok`` or ``error``);
* ``oidc_guard.provider.duration``, a histogram in seconds; attribute ``kind``.

Where they are counted:

* ``oidc_guard.decisions``: once per request that carries a credential, in
  :class:`~oidc_guard.wsgi.BearerMiddleware` (and so in the Flask
  extension), after the token was validated *and* its binding (DPoP, mTLS)
  checked: a token whose signature verifies but whose DPoP proof does not is
  one ``refused`` decision with reason ``dpop_proof``, never an ``accepted``
  and a ``refused``.  Direct calls of ``TokenValidator.validate_access_token``
  (the CLI, an application's own code) are not counted: the middleware is the
  one place every request goes through, and a validator called by another
  validator (``MultiIssuerValidator`` and its members) would otherwise count
  one token twice.  An adapter of another framework calls
  :func:`record_decision` with the same meaning.  Refusals of a decorator
  (scope, claims) come after the decision and are not decisions.
* ``oidc_guard.provider.*``: once per outgoing call, in
  ``oidc_guard.http`` (the one place that calls the provider).  ``error``
  means no usable answer: connection refused, timeout, TLS error, size limit,
  a refused redirect, an HTTP 5xx, and for discovery and JWKS also any other
  status than 200 or a body that is not a JSON object.  Any other answer
  (a UserInfo 401, an introspection answer) is ``ok``: what it means for the
  token is in ``oidc_guard.decisions``.

No attribute ever holds a token, a subject, a client id, a URL or a secret:
only the fixed words above and the ``reason``
codes.

Until :func:`enable` is called nothing is recorded, ``opentelemetry`` is
never imported, and the request path pays one ``is not None`` test of
``oidc_guard.metrics.active``.
"""

from __future__ import annotations

import threading
from typing import Any, Dict, Optional, Tuple

from ._bounded import memo_function
from .errors import ConfigurationError, ProviderError

__all__ = ["enable", "disable", "record_decision", "record_provider_call", "PROVIDER_KINDS"]

#: The ``kind`` attribute values of the provider instruments.
PROVIDER_KINDS = ("discovery", "jwks", "introspection", "userinfo")


_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]


class _Instruments:
    __slots__ = ("decisions", "requests", "duration")

    def __init__(self, meter: Any) -> None:
        self.decisions = meter.create_counter(
            "oidc_guard.decisions", unit="1",
            description="token validations by outcome (accepted, refused, unavailable) and reason")
        self.requests = meter.create_counter(
            "oidc_guard.provider.requests", unit="1",
            description="calls to the identity provider by kind and outcome (ok, error)")
        # Buckets for calls that take milliseconds to seconds (the SDK's
        # default boundaries, 0-10000, are made for milliseconds).
        self.duration = meter.create_histogram(
            "oidc_guard.provider.duration", unit="s",
            description="duration of the calls to the identity provider, by kind",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS)


#: ``None`` while metrics are off (the default): the request path tests this
#: and nothing else.  Set by :func:`enable`, cleared by :func:`disable`.
active: Optional[_Instruments] = None

_lock = threading.Lock()
_ACCEPTED: Dict[str, str] = {"outcome": "accepted"}
# Attribute dicts, made once per (outcome, reason) by _attributes (a
# memo_function of _MAX_ATTR_SETS entries): the reasons are the library's
# fixed codes, so this stays small, and bounded even if an application
# invents reasons.
_MAX_ATTR_SETS = 256


def enable(meter_provider: Any = None) -> None:
    """Turn metrics on for the whole process, on ``meter_provider`` (an
    OpenTelemetry ``MeterProvider``; default: the global one,
    ``opentelemetry.metrics.get_meter_provider()``).  Calling it again
    moves the instruments to the new provider.

    Raises :class:`~oidc_guard.ConfigurationError` when ``opentelemetry-api``
    is not installed (``pip install 'oidc_guard[metrics]'``).
    """
    global active
    try:
        from opentelemetry import metrics as otel_metrics
    except ImportError:
        raise ConfigurationError(
            "oidc_guard.metrics.enable() needs the OpenTelemetry API: pip install 'oidc_guard[metrics]' "
            "(opentelemetry-api), plus an SDK and exporter (opentelemetry-sdk)") from None
    from . import __version__

    provider = meter_provider if meter_provider is not None else otel_metrics.get_meter_provider()
    meter = provider.get_meter("oidc_guard", __version__)
    with _lock:
        active = _Instruments(meter)


def disable() -> None:
    """Turn metrics off again: from now on nothing is recorded."""
    global active
    with _lock:
        active = None


@memo_function(_MAX_ATTR_SETS)
def _attributes(outcome: str, reason: str) -> Dict[str, str]:
    # one dict per (outcome, reason), shared by every recording: never changed
    return {"outcome": outcome, "reason": reason}


def record_decision(error: Optional[BaseException]) -> None:
    """Count one decision: ``None`` for an accepted token, else the error
    the request is answered with (a :class:`~oidc_guard.ProviderError` is
    ``unavailable``, anything else ``refused``; the attribute ``reason`` is
    the error's ``reason``).  Does nothing while metrics are off."""
    instruments = active
    if instruments is None:
        return
    if error is None:
        attributes = _ACCEPTED
    else:
        reason = getattr(error, "reason", None)
        if not isinstance(reason, str):
            reason = "internal"
        attributes = _attributes("unavailable" if isinstance(error, ProviderError) else "refused", reason)
    instruments.decisions.add(1, attributes)


_KIND_ATTRS: Dict[str, Dict[str, str]] = {kind: {"kind": kind} for kind in PROVIDER_KINDS}
_CALL_ATTRS: Dict[Tuple[str, bool], Dict[str, str]] = {
    (kind, ok): {"kind": kind, "outcome": "ok" if ok else "error"} for kind in PROVIDER_KINDS for ok in (True, False)
}


def record_provider_call(kind: str, seconds: float, ok: bool) -> None:
    """Count one outgoing call of ``kind`` (one of :data:`PROVIDER_KINDS`)
    that took ``seconds``.  Does nothing while metrics are off."""
    instruments = active
    if instruments is None:
        return
    attributes = _CALL_ATTRS.get((kind, ok))
    if attributes is None:
        raise ValueError(f"unknown provider call kind {kind!r}; expected one of {PROVIDER_KINDS}")
    instruments.requests.add(1, attributes)
    instruments.duration.record(max(0.0, seconds), _KIND_ATTRS[kind])
