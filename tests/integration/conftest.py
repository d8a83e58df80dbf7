"""Fixtures shared by the integration tests: one remediation rig (the emulator, Azurite, the engine)."""

from __future__ import annotations

import pytest

from emulator import fleetgen
from tests.integration.rig import Rig, remediate_settings


@pytest.fixture
def make_rig(start_emulator, gateway_for, ledger):
    """`make_rig(*scale_sets, faults=..., features=..., emulator_options=..., gateway_options=..., **settings)` →
    a `Rig`."""

    def make(*scale_sets, faults=None, features=None, emulator_options=None, gateway_options=None, **settings):
        emu = start_emulator(
            fleetgen.fleet(*scale_sets, faults=faults, registered_features=features), **(emulator_options or {})
        )
        return Rig(emu, gateway_for(emu, **(gateway_options or {})), ledger, remediate_settings(emu, **settings))

    return make


@pytest.fixture
def no_sdk_retries(monkeypatch):
    """CLI runs against the emulator fail fast: azure-core's retries (6 by default, 0.8 s backoff) are off, so a
    test meets each injected fault once instead of waiting through the SDK's backoff."""
    from autoheal import cli, runtime

    original = runtime.build_gateway

    def build(settings, **overrides):
        return original(settings, **{"retry_total": 0, **overrides})

    monkeypatch.setattr(cli, "build_gateway", build)
    monkeypatch.setattr(runtime, "build_gateway", build)


@pytest.fixture(scope="session")
def queue_storage():
    """Azurite's Queue service (the management-group fan-out's real queue) for this test session."""
    from tests.azurite import azurite_queue

    with azurite_queue() as conn:
        yield conn


@pytest.fixture(scope="session")
def app_functions():
    """The registered functions of function_app.app (get_functions() may be called once per app)."""
    from tests.helpers import registered_functions

    return registered_functions()
