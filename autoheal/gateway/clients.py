"""How every gateway builds its azure-mgmt client: one endpoint, credential, CA bundle, transport and retry set.

Compute, Resource Graph and the Activity Log clients differ only in the SDK class, the per-retry policies
they install (policies.py) and a few client-specific options; everything else is decided here once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ..credentials import default_credential

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.core.pipeline.policies import HTTPPolicy, RetryPolicy

DEFAULT_ENDPOINT = "https://management.azure.com"
# ARM's token audience: the same whatever endpoint the requests go to (the emulator, a sovereign cloud).
ARM_SCOPE = "https://management.azure.com/.default"

_C = TypeVar("_C")


@dataclass
class ArmConnection:
    """Where and as whom a gateway talks to ARM, and how it retries. Mutable on purpose: a test may lower
    `retry_total` before the client is built."""

    endpoint: str
    credential: TokenCredential
    ca_bundle: str | None = None
    retry_total: int = 3
    retry_backoff_factor: float = 0.8
    max_connections: int = 4

    @classmethod
    def of(
        cls,
        endpoint: str,
        credential: TokenCredential | None,
        client_id: str | None,
        ca_bundle: str | None,
        retry_total: int,
        retry_backoff_factor: float,
        max_connections: int = 4,
    ) -> ArmConnection:
        """The connection a gateway's constructor arguments describe (no credential: the default one)."""
        endpoint = endpoint.rstrip("/")
        return cls(
            endpoint,
            credential or default_credential(endpoint, client_id),
            ca_bundle,
            retry_total,
            retry_backoff_factor,
            max_connections,
        )

    def build(
        self,
        client_class: Callable[..., _C],
        *args: Any,
        per_retry_policies: list[HTTPPolicy],  # type: ignore[type-arg]
        retry_policy: type[RetryPolicy] | None = None,  # type: ignore[type-arg]
        **options: Any,
    ) -> _C:
        """`client_class(credential, *args, ...)` over a pooled transport with `per_retry_policies`. Retries are
        azure-core's RetryPolicy with this connection's settings, or `retry_policy` built with them."""
        from ..http import transport

        transport_options: dict[str, Any] = {"connection_verify": self.ca_bundle} if self.ca_bundle else {}
        kwargs: dict[str, Any] = {
            "base_url": self.endpoint,
            "transport": transport(self.max_connections, **transport_options),
            "per_retry_policies": per_retry_policies,
        }
        retry = {"retry_total": self.retry_total, "retry_backoff_factor": self.retry_backoff_factor}
        if retry_policy is None:
            kwargs.update(retry)
        else:
            kwargs["retry_policy"] = retry_policy(**retry)
        if not self.endpoint.startswith(DEFAULT_ENDPOINT):
            kwargs["credential_scopes"] = [ARM_SCOPE]
        kwargs.update(options)
        return client_class(self.credential, *args, **kwargs)
