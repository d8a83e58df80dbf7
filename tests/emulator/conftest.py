"""Fixtures for the ARM emulator's own tests: emulators on free ports, real SDK clients, raw HTTPS."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

import emulator
from emulator import Emulator, fleetgen
from emulator.testing import compute_client
from tests.builders import NOW

SAMPLE_FLEET = Path(emulator.__file__).parent / "fleets" / "sample.json"
API = "2026-04-01"


def small_fleet(**faults: Any) -> dict:
    """rg-app/web (Uniform, 4 instances, repairs on, instance 1 unhealthy) and rg-app/jobs (Flexible, 3)."""
    return fleetgen.fleet(
        fleetgen.scale_set("web", capacity=4, automatic_repairs=True, unhealthy=[1], now=NOW),
        fleetgen.scale_set("jobs", orchestration="Flexible", capacity=3, automatic_repairs=True, now=NOW),
        faults=faults or None,
    )


@pytest.fixture
def emu(start_emulator: Callable[..., Emulator]) -> Emulator:
    return start_emulator(small_fleet())


@pytest.fixture
def client(emu: Emulator):
    return compute_client(emu)


class Raw:
    """Plain HTTPS calls for what the SDK does not send (bad tokens, old api-versions, odd paths)."""

    def __init__(self, instance: Emulator) -> None:
        self.emulator = instance
        self.session = requests.Session()

    def __call__(
        self,
        method: str,
        path: str,
        *,
        api_version: str | None = API,
        token: str | None = "Bearer test",
        params: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        query = dict(params or {})
        if api_version is not None:
            query["api-version"] = api_version
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = token
        url = path if path.startswith("https://") else self.emulator.endpoint + path
        # verify per request: REQUESTS_CA_BUNDLE in the environment would override a session-level setting.
        return self.session.request(
            method, url, params=query, headers=headers, timeout=10, verify=self.emulator.ca_bundle, **kwargs
        )

    def sub(self, suffix: str = "") -> str:
        return f"/subscriptions/{self.emulator.subscription_id}{suffix}"

    def vmss(self, name: str = "web", suffix: str = "", resource_group: str = "rg-app") -> str:
        provider = f"/resourceGroups/{resource_group}/providers/Microsoft.Compute"
        return self.sub(f"{provider}/virtualMachineScaleSets/{name}{suffix}")


@pytest.fixture
def raw(emu: Emulator) -> Raw:
    return Raw(emu)
