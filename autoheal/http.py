"""One pooled HTTP session setup for the Azure SDK clients (ARM and Table Storage).

requests re-reads proxy variables and ~/.netrc on every request unless `trust_env` is off: on a sweep of
thousands of calls that is measurable CPU. The proxies are read once here instead, so an HTTPS_PROXY in
the environment still applies.
"""

from __future__ import annotations

import urllib.request
from typing import Any


def pooled_session(max_connections: int = 32) -> Any:
    import requests

    session = requests.Session()
    session.trust_env = False
    session.proxies.update(urllib.request.getproxies())
    # Sized for the sweep's concurrency: past the pool size every extra worker pays a new TLS handshake.
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=max_connections, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def transport(max_connections: int = 32, **options: Any) -> Any:
    """An azure-core transport over `pooled_session` (options: e.g. connection_verify)."""
    from azure.core.pipeline.transport import RequestsTransport

    return RequestsTransport(session=pooled_session(max_connections), session_owner=True, **options)
