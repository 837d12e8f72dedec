"""The settings the ``oidc-guard`` commands read from the environment: the
introspection client (id, secret, endpoint, authentication method), read
in one place for ``validate`` and ``discover``.  Only the environment: a
secret on a command line lands in shell history and ``ps``.  Internal to
the command line; :mod:`oidc_guard.cli` re-exports the names."""

from __future__ import annotations

import inspect
import os
from typing import Any, Dict, Mapping

from ._common import UsageError

__all__ = ["ENV_CLIENT_ID", "ENV_CLIENT_SECRET", "ENV_ENDPOINT", "ENV_AUTH_METHOD", "introspection_settings",
           "validator_parameters"]

ENV_CLIENT_ID = "OIDC_GUARD_INTROSPECTION_CLIENT_ID"
ENV_CLIENT_SECRET = "OIDC_GUARD_INTROSPECTION_CLIENT_SECRET"
ENV_ENDPOINT = "OIDC_GUARD_INTROSPECTION_ENDPOINT"
ENV_AUTH_METHOD = "OIDC_GUARD_INTROSPECTION_AUTH_METHOD"


def introspection_settings(*, secret_required: bool = True) -> Dict[str, Any]:
    """The introspection settings of the environment, as TokenValidator
    keywords: the one source for ``validate`` and ``discover``.  Only the
    environment: a secret on a command line lands in shell history and
    ``ps``.  ``secret_required=False`` (discover, which sends nothing)
    accepts the client id alone and returns no secret."""
    accepted = validator_parameters()
    kwargs: Dict[str, Any] = {}
    client_id = os.environ.get(ENV_CLIENT_ID)
    secret = os.environ.get(ENV_CLIENT_SECRET)
    if client_id or secret:
        if "introspection_client_id" not in accepted:
            raise UsageError(f"{ENV_CLIENT_ID} is set, but this oidc_guard cannot introspect reference tokens")
        if secret_required and not (client_id and secret):
            raise UsageError(f"set both {ENV_CLIENT_ID} and {ENV_CLIENT_SECRET}")
        if client_id:
            kwargs["introspection_client_id"] = client_id
        if secret and client_id:
            kwargs["introspection_client_secret"] = secret
    endpoint = os.environ.get(ENV_ENDPOINT)
    if endpoint and "introspection_endpoint" in accepted:
        kwargs["introspection_endpoint"] = endpoint
    auth_method = os.environ.get(ENV_AUTH_METHOD)
    if auth_method and "introspection_auth_method" in accepted:
        kwargs["introspection_auth_method"] = auth_method
    return kwargs


def validator_parameters() -> Mapping[str, Any]:
    """The keywords :class:`oidc_guard.TokenValidator` accepts (a setting it
    does not know is refused as a usage error, not passed on)."""
    from ..validator import TokenValidator

    return inspect.signature(TokenValidator.__init__).parameters
