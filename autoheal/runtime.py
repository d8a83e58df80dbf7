"""Long-lived clients for one process (a Functions worker or the CLI), built once from validated settings.

Clients are created on first use, so a cold start pays only for what the invocation needs (the timer
never imports the email SDK when e-mail is not configured; `diagnose` never opens the ledger).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .settings import Settings, load_settings

if TYPE_CHECKING:
    from .engine import Engine
    from .gateway import ComputeGateway
    from .gateway.resourcegraph import ResourceGraphGateway
    from .notify import Notifier
    from .remediation.ledger import Ledger
    from .sources import InventorySource


class Runtime:
    def __init__(
        self,
        settings: Settings,
        *,
        gateway: ComputeGateway | None = None,
        ledger: Ledger | None = None,
        notifier: Notifier | None = None,
        clock: Callable[[], datetime] | None = None,
        gateway_options: dict[str, Any] | None = None,
        graph: ResourceGraphGateway | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or (lambda: datetime.now(UTC))
        self._gateway = gateway
        self._ledger = ledger
        self._notifier = notifier
        self._graph: ResourceGraphGateway | None = graph  # a given one is shared (scope.py), not owned
        self._gateway_options = gateway_options or {}
        self._lock = threading.Lock()
        self._owned: list[Any] = []

    @property
    def gateway_options(self) -> dict[str, Any]:
        return dict(self._gateway_options)

    @property
    def gateway(self) -> ComputeGateway:
        with self._lock:
            if self._gateway is None:
                self._gateway = build_gateway(self.settings, **self._gateway_options)
                self._owned.append(self._gateway)
            return self._gateway

    @property
    def ledger(self) -> Ledger:
        with self._lock:
            if self._ledger is None:
                from .remediation.ledger import open_ledger

                ledger = open_ledger(self.settings)
                ledger.ensure_table()
                self._ledger = ledger
                self._owned.append(ledger)
            return self._ledger

    @property
    def notifier(self) -> Notifier:
        with self._lock:
            if self._notifier is None:
                from .notify import Notifier

                self._notifier = Notifier.from_settings(self.settings)
            return self._notifier

    @property
    def graph(self) -> ResourceGraphGateway | None:
        """Resource Graph for the sweep's inventory (None with AUTOHEAL_INVENTORY=compute)."""
        if self.settings.inventory != "resource-graph":
            return None
        with self._lock:
            if self._graph is None:
                self._graph = build_graph(self.settings)
                if self._graph is not None:
                    self._owned.append(self._graph)
            return self._graph

    def engine(self, **settings_overrides: Any) -> Engine:
        from .engine import Engine

        settings = self.settings.replace(**settings_overrides) if settings_overrides else self.settings
        return Engine(
            settings,
            self.gateway,
            self.ledger,
            notifier=self.notifier,
            clock=self.clock,
            inventory=inventory_source(self.gateway, self.graph, settings),
        )

    def close(self) -> None:
        for client in self._owned:
            client.close()
        self._owned.clear()


def inventory_source(
    gateway: ComputeGateway, graph: ResourceGraphGateway | None, settings: Settings | None = None
) -> InventorySource:
    """Resource Graph when there is one (AUTOHEAL_INVENTORY=resource-graph), else Compute's list; with the
    GET/LIST pre-screen of its suspects unless AUTOHEAL_SUSPECT_PRESCREEN=off."""
    from .sources import ComputeInventory, ResourceGraphInventory

    if graph is None:
        return ComputeInventory(gateway)
    prescreen = settings is not None and settings.suspect_prescreen == "get-list"
    concurrency = settings.sweep_concurrency if settings is not None else 8
    return ResourceGraphInventory(graph, gateway, prescreen=prescreen, concurrency=concurrency)


def build_graph(settings: Settings) -> ResourceGraphGateway | None:
    """Resource Graph for the sweep's inventory, as the settings describe it (None: list through Compute)."""
    if settings.inventory != "resource-graph":
        return None
    from .gateway.resourcegraph import ResourceGraphGateway

    return ResourceGraphGateway(
        settings.subscription_id,
        endpoint=settings.arm_endpoint,
        ca_bundle=settings.arm_ca_bundle or None,
        client_id=settings.client_id or None,
    )


def build_gateway(settings: Settings, **overrides: Any) -> ComputeGateway:
    """The Compute gateway as the settings describe it (endpoint, identity, LRO polling, pacing)."""
    from .gateway import ComputeBudget, ComputeGateway

    # Benchmarks against an emulator whose Compute buckets refill K times faster tell each budget the same K
    # (a fresh budget per gateway: each subscription's own).
    time_scale = float(overrides.pop("budget_time_scale", 1.0))
    options: dict[str, Any] = {
        "endpoint": settings.arm_endpoint,
        "ca_bundle": settings.arm_ca_bundle or None,
        "client_id": settings.client_id or None,
        "polling_interval": float(settings.lro_poll_seconds),
        "lro_timeout": settings.lro_timeout.total_seconds(),
        "max_connections": max(32, 2 * settings.sweep_concurrency),
        "reads_reserve": settings.arm_reads_reserve,
        "budget": ComputeBudget(share=settings.compute_read_share / 100, time_scale=time_scale),
        "activity_log_lookback": settings.activity_log_lookback,
        **overrides,
    }
    return ComputeGateway(settings.subscription_id, **options)


_current: Runtime | None = None
_current_lock = threading.Lock()


def get_runtime() -> Runtime:
    """The process-wide runtime, built from the app settings on first use (validated, with clear errors)."""
    global _current
    with _current_lock:
        if _current is None:
            from . import telemetry

            settings = load_settings()
            if not settings.subscription_id and not settings.management_group:
                from .settings import SettingsError

                raise SettingsError(
                    "AZURE_SUBSCRIPTION_ID is required: the subscription this deployment watches "
                    "(or AUTOHEAL_SCOPE naming a management group)"
                )
            telemetry.enable_azure_sdk_tracing()
            _current = Runtime(settings)
        return _current


def set_runtime(runtime: Runtime | None) -> None:
    """Replace (or drop) the process-wide runtime; tests use this between scenarios."""
    global _current
    with _current_lock:
        if _current is not None and _current is not runtime:
            _current.close()
        _current = runtime


# -- warm-up: what the first event needs, off the indexing path --------------------------------------------

# Modules the event path imports lazily (measured with bench/cold_start.py: the SDK's Compute client, the
# Table client, the HTTP stack, notification channels). Importing them at module level would slow indexing
# (the host waits for it); importing them on the first event makes that event pay about a second.
WARM_MODULES = (
    "requests",
    "autoheal.http",
    "azure.core.rest",
    "azure.core.polling",
    "azure.core.tracing.decorator",
    "azure.mgmt.core.polling.arm_polling",
    "azure.mgmt.core.tools",
    "azure.mgmt.compute",
    "azure.data.tables",
    "azure.eventgrid",
    "autoheal.engine",
    "autoheal.sources",
    "autoheal.notify",
    "autoheal.notify.teams",
    "autoheal.notify.email",
    "autoheal.notify.outcome_events",
    "autoheal.remediation.ledger",
    "_strptime",
)
_warmup: threading.Thread | None = None
_warmup_seconds: float | None = None


def warm_up() -> None:
    """Import what the first event needs and, when the app settings are complete, build the runtime with its
    clients (Compute's SDK client, the ledger's table) so the first event finds them ready. Never raises:
    whatever fails here is met again, and reported, by the first invocation."""
    global _warmup_seconds
    import importlib
    import logging
    import time

    log = logging.getLogger("autoheal.warmup")
    started = time.perf_counter()
    for name in WARM_MODULES:
        try:
            importlib.import_module(name)
        except Exception as exc:  # an optional channel's SDK may be missing: the first use says so
            log.debug("warm-up: could not import %s: %s", name, exc)
    try:
        runtime = get_runtime()
        runtime.gateway.client  # noqa: B018 -- builds the SDK client (no request is sent)
        runtime.notifier  # noqa: B018
        runtime.ledger  # noqa: B018 -- opens the table (one idempotent create)
    except Exception as exc:
        log.debug("warm-up: the runtime is left to the first invocation: %s", exc)
    _warmup_seconds = time.perf_counter() - started
    log.debug("warm-up done in %.3fs", _warmup_seconds)


def start_warmup() -> threading.Thread:
    """Run `warm_up` once per process in a daemon thread (the Functions worker calls this at start-up)."""
    global _warmup
    with _current_lock:
        if _warmup is None:
            _warmup = threading.Thread(target=warm_up, name="autoheal-warmup", daemon=True)
            _warmup.start()
        return _warmup


def wait_for_warmup(timeout: float | None = None) -> bool:
    """True when the warm-up has finished (or was never started)."""
    thread = _warmup
    if thread is not None:
        thread.join(timeout)
    return thread is None or not thread.is_alive()


def warmup_seconds() -> float | None:
    """How long the warm-up took (None: not finished, or not started)."""
    return _warmup_seconds
