"""Session-wide stand-ins: Azurite for Table Storage and the ARM emulator, with real SDK clients."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from emulator import Emulator
from tests.azurite import azurite_table


@pytest.fixture(scope="session")
def azurite() -> Iterator[str]:
    """Connection string of an in-memory Azurite started for this test session."""
    with azurite_table() as conn:
        yield conn


@pytest.fixture
def ledger(azurite):
    """A fresh, empty ledger table for one test."""
    from autoheal.remediation.ledger import Ledger

    table = Ledger.from_connection_string(azurite, f"ledger{uuid.uuid4().hex[:16]}")
    table.ensure_table()
    yield table
    table.close()


@pytest.fixture
def start_emulator() -> Iterator[Callable[..., Emulator]]:
    """Start ARM emulators inside a test; all are stopped afterwards."""
    started: list[Emulator] = []

    def start(fleet: Any = None, **kwargs: Any) -> Emulator:
        instance = Emulator.start(fleet, **kwargs)
        started.append(instance)
        return instance

    yield start
    for instance in started:
        instance.stop()


@pytest.fixture
def gateway_for() -> Iterator[Callable[..., Any]]:
    """The project's Compute gateway (real SDK client over HTTPS) aimed at an emulator."""
    from autoheal.gateway import ComputeGateway

    made: list[ComputeGateway] = []

    def make(emu: Emulator, **overrides: Any) -> ComputeGateway:
        options: dict[str, Any] = {
            "endpoint": emu.endpoint,
            "ca_bundle": emu.ca_bundle,
            "polling_interval": 0,
            "retry_total": 3,
            "retry_backoff_factor": 0.01,
            "lro_timeout": 30,
        }
        options.update(overrides)
        gateway = ComputeGateway(emu.subscription_id, **options)
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        gateway.close()


@pytest.fixture
def graph_for() -> Iterator[Callable[..., Any]]:
    """The project's Resource Graph gateway (real SDK client over HTTPS) aimed at an emulator; closed after."""
    from autoheal.gateway import ResourceGraphGateway

    made: list[ResourceGraphGateway] = []

    def make(emu: Emulator, **overrides: Any) -> ResourceGraphGateway:
        gateway = ResourceGraphGateway(emu.subscription_id, endpoint=emu.endpoint, ca_bundle=emu.ca_bundle, **overrides)
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        gateway.close()


@pytest.fixture
def demo_emulator() -> Iterator[Emulator]:
    """The ARM emulator serving the demo fleet (emulator/fleets/demo.py), one per test."""
    from emulator.fleets import demo

    with Emulator.start(demo.PATH) as emu:
        yield emu
