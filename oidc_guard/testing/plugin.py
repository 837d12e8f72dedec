"""The pytest plugin: fixtures ``oidc_issuer`` and ``oidc_issuer_factory``
and the ``oidc_issuer`` marker.

The entry point ``pytest11: oidc_guard = oidc_guard.testing`` loads the
package, which re-exports :func:`pytest_configure` from here. pytest is only
imported when pytest itself loads the plugin.
"""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any, Callable, Iterator, List

from .issuer import LocalIssuer

if TYPE_CHECKING:
    import pytest

__all__ = ["pytest_configure"]


def _make_fixture_module() -> types.ModuleType:
    """Build the plugin object holding the fixtures. It is done inside
    :func:`pytest_configure` so that pytest is only imported when pytest
    itself loads this plugin (pytest reads fixtures from a module's dict)."""
    import pytest

    fixture = pytest.fixture

    @fixture
    def oidc_issuer(request: "pytest.FixtureRequest") -> Iterator[LocalIssuer]:
        """A started :class:`LocalIssuer` (stopped after the test).
        Configure it with ``@pytest.mark.oidc_issuer(algs=("ES256",), ...)``
        (keyword arguments of LocalIssuer)."""
        marker = request.node.get_closest_marker("oidc_issuer")
        kwargs = dict(marker.kwargs) if marker else {}
        issuer = LocalIssuer(**kwargs).start()
        try:
            yield issuer
        finally:
            issuer.stop()

    @fixture
    def oidc_issuer_factory() -> Iterator[Callable[..., LocalIssuer]]:
        """Call with LocalIssuer keyword arguments to get more started
        issuers; all are stopped after the test."""
        started: List[LocalIssuer] = []

        def make(**kwargs: Any) -> LocalIssuer:
            issuer = LocalIssuer(**kwargs).start()
            started.append(issuer)
            return issuer

        try:
            yield make
        finally:
            for issuer in started:
                issuer.stop()

    module = types.ModuleType(_FIXTURE_PLUGIN_NAME, "oidc_guard's LocalIssuer fixtures")
    module.oidc_issuer = oidc_issuer  # type: ignore[attr-defined]
    module.oidc_issuer_factory = oidc_issuer_factory  # type: ignore[attr-defined]
    return module


_FIXTURE_PLUGIN_NAME = "oidc_guard.testing.fixtures"


def pytest_configure(config: "pytest.Config") -> None:
    config.addinivalue_line(
        "markers", "oidc_issuer(**kwargs): LocalIssuer keyword arguments for the oidc_issuer fixture"
    )
    if not config.pluginmanager.has_plugin(_FIXTURE_PLUGIN_NAME):
        config.pluginmanager.register(_make_fixture_module(), _FIXTURE_PLUGIN_NAME)
