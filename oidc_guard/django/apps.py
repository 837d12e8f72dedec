"""``INSTALLED_APPS = [..., "oidc_guard.django"]``: the system check of the
``OIDC_GUARD_*`` settings (:mod:`oidc_guard.django.checks`) and the
``manage.py oidc_guard_check`` command.  Nothing here touches the network."""

from __future__ import annotations

from importlib.util import find_spec

from django.apps import AppConfig


class OIDCGuardConfig(AppConfig):  # type: ignore[misc]
    name = "oidc_guard.django"
    label = "oidc_guard"
    verbose_name = "oidc_guard"

    def ready(self) -> None:
        from django.core import checks

        from .checks import check_settings

        checks.register(check_settings, checks.Tags.security)
        # drf-spectacular finds its extensions by import: register ours
        # (the OIDCAuthentication security scheme) when it is installed.
        if find_spec("drf_spectacular") is not None and find_spec("rest_framework") is not None:
            from .. import drf_openapi  # noqa: F401
