"""The one place that decides which credential talks to Azure (ARM, Table Storage, e-mail).

Azure: `DefaultAzureCredential` (the managed identity in Functions, `az login` on a laptop), with the
user-assigned identity's client id when one is configured. The local emulator and stand-ins on loopback
accept any bearer token, so they get a static one and `azure-identity` (~0.5 s to import) is never loaded.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential


class StaticTokenCredential:
    """A bearer token for the local emulator only (it accepts any token)."""

    def __init__(self, token: str = "emulator-token") -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        from azure.core.credentials import AccessTokenInfo

        return AccessTokenInfo(self._token, int(time.time()) + 3600)


def is_loopback(endpoint: str) -> bool:
    host = (urlparse(endpoint).hostname or "").lower()
    return host in {"127.0.0.1", "localhost", "::1"}


def default_credential(endpoint: str, client_id: str | None = None) -> TokenCredential:
    """DefaultAzureCredential for Azure (managed identity in Functions, `az login` on a laptop)."""
    if is_loopback(endpoint):
        return StaticTokenCredential()
    from azure.identity import DefaultAzureCredential  # ~0.5 s import: only when talking to Azure

    return DefaultAzureCredential(managed_identity_client_id=client_id) if client_id else DefaultAzureCredential()
