"""Session-wide stand-ins: Azurite for Table Storage (the ARM emulator fixtures live beside it)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

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
