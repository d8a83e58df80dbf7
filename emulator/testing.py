"""Test helpers: a static bearer token and a ComputeManagementClient aimed at an emulator.

Only tests import this module (it pulls in azure-mgmt-compute, ~0.6 s)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from azure.core.credentials import AccessToken, AccessTokenInfo

if TYPE_CHECKING:
    from azure.mgmt.compute import ComputeManagementClient

    from .service import Emulator


class StaticTokenCredential:
    """Any bearer token will do for the emulator; supports azure-core's old and new token protocols."""

    def __init__(self, token: str = "emulator-token") -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        return AccessTokenInfo(self.token, int(time.time()) + 3600)


def compute_client(emulator: Emulator, **kwargs: Any) -> ComputeManagementClient:
    """A real SDK client for `emulator`; LROs poll without waiting unless `polling_interval` is given."""
    from azure.mgmt.compute import ComputeManagementClient

    kwargs.setdefault("polling_interval", 0)
    kwargs.setdefault("subscription_id", emulator.subscription_id)
    return ComputeManagementClient(
        StaticTokenCredential(),
        base_url=emulator.endpoint,
        connection_verify=emulator.ca_bundle,
        **kwargs,
    )
