"""One deployment for a management group: the subscriptions in scope, and a runtime per subscription.

A layer above the engine (which stays per subscription, as it always was): `ScopeRuntimes` finds the
subscriptions under the management group through Resource Graph (`resourcecontainers` at management-group
scope, paged, within ARG's quota), drops the excluded ones, and builds for each a `Runtime` whose settings name
that subscription, whose Compute gateway has that subscription's budget (Compute's buckets are per subscription
and region: learn.microsoft.com/azure/virtual-machines/compute-throttling-limits), and whose ledger is that
subscription's partition of the one table (`SubscriptionLedger`: live records are already partitioned by
`{subscription}|{group}|{name}`; status documents such as the sweep cursor get the subscription in their key).
Resource Graph is shared: its quota is per identity.

In subscription scope (the default) nothing here is used: the timer sweeps as it always did.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .notify import Change, Notifier, NotifyResult
from .remediation.ledger import Ledger, Record
from .remediation.store import RecordStore
from .remediation.transitions import notified
from .runtime import Runtime, build_graph
from .settings import Scope, Settings

if TYPE_CHECKING:
    from .gateway.resourcegraph import ResourceGraphGateway
    from .notify.content import Message
    from .remediation.record import HistoryEntry

log = logging.getLogger("autoheal.scope")

SUBSCRIPTIONS_TTL = 900.0  # seconds a discovered subscription list is trusted (new subscriptions join within it)
_SUBSCRIPTION_IN_ID = re.compile(r"/subscriptions/([0-9a-fA-F-]{36})(?:/|$)")


@dataclass(frozen=True)
class ScopeSubscription:
    subscription_id: str  # lower-cased GUID
    name: str  # display name (the GUID when unknown)


def subscription_of(text: str) -> str:
    """The lower-cased subscription GUID an ARM id (or an event subject) names, or ""."""
    match = _SUBSCRIPTION_IN_ID.search(text or "")
    return match.group(1).lower() if match else ""


def discover(settings: Settings, graph: ResourceGraphGateway) -> list[ScopeSubscription]:
    """The subscriptions the settings put in scope, excluded ones left out, in a stable order."""
    if not settings.management_group:
        sub = settings.subscription_id.lower()
        return [ScopeSubscription(sub, sub)] if sub else []
    excluded = {s.lower() for s in settings.exclude_subscriptions}
    found: dict[str, ScopeSubscription] = {}
    for subscription, name in graph.subscriptions_under(settings.management_group):
        key = subscription.lower()
        if key not in excluded:
            found[key] = ScopeSubscription(key, name)
    return [found[key] for key in sorted(found)]


# -- the ledger partition of one subscription -------------------------------------------------------------------


class SubscriptionLedger(Ledger):
    """One subscription's view of the shared ledger: its records (partition keys start with the subscription),
    its history, and its own status documents (cursor, last sweep) under `{name}|{subscription}`."""

    def __init__(self, inner: Ledger, subscription_id: str) -> None:
        super().__init__(getattr(inner, "_table", None))
        self.inner = inner
        self.subscription_id = subscription_id.lower()
        self._prefix = self.subscription_id + "|"

    @property
    def table_name(self) -> str:
        return self.inner.table_name

    def ensure_table(self) -> None:
        self.inner.ensure_table()

    def close(self) -> None:  # the shared ledger is closed by its owner
        return None

    def status_name(self, name: str) -> str:
        return f"{name}|{self.subscription_id}"

    def _mine(self, records: list[Record]) -> list[Record]:
        return [r for r in records if r.partition_key.startswith(self._prefix)]

    def get(self, scale_set_id: str, finding_code: str, target: str = "*") -> Record | None:
        return self.inner.get(scale_set_id, finding_code, target)

    def records_for(self, scale_set_id: str) -> list[Record]:
        return self.inner.records_for(scale_set_id)

    def records_by_scale_set(self, subscription_id: str) -> dict[str, list[Record]]:
        return self.inner.records_by_scale_set(subscription_id)

    def active_records(self) -> list[Record]:
        return self._mine(self.inner.active_records())

    def all_records(self) -> list[Record]:
        return self._mine(self.inner.all_records())

    def save_status(self, name: str, document: dict[str, Any]) -> None:
        self.inner.save_status(self.status_name(name), document)

    def load_status(self, name: str) -> dict[str, Any] | None:
        return self.inner.load_status(self.status_name(name))

    def create(self, record: Record, *, previous_state: str = "", history: bool = True) -> Record:
        return self.inner.create(record, previous_state=previous_state, history=history)

    def update(self, record: Record, *, previous_state: str | None = None, history: bool = True) -> Record:
        return self.inner.update(record, previous_state=previous_state, history=history)

    def save(self, record: Record, *, previous_state: str = "") -> Record:
        return self.inner.save(record, previous_state=previous_state)

    def history(self, scale_set: str | None = None, limit: int = 100) -> list[HistoryEntry]:
        mine = f"/subscriptions/{self.subscription_id}/"
        return [e for e in self.inner.history(scale_set, limit) if e.scale_set_id.lower().startswith(mine)]


# -- notifications that name the subscription ----------------------------------------------------------------


class ScopeNotifier(Notifier):
    """A Notifier whose messages name each scale set's subscription (a digest across the scope mixes them)."""

    names: dict[str, str]

    @classmethod
    def for_scope(cls, settings: Settings, names: dict[str, str], **overrides: Any) -> ScopeNotifier:
        notifier = cls.from_settings(settings, **overrides)
        assert isinstance(notifier, ScopeNotifier)
        notifier.names = names
        return notifier

    def _message(self, batch: list[Change], *, trigger: str, correlation_id: str, now: datetime) -> Message:
        message = super()._message(batch, trigger=trigger, correlation_id=correlation_id, now=now)
        items = []
        for item in message.items:
            sub = subscription_of(item.scale_set_id)
            label = self.names.get(sub, sub)
            shown = f"{label} ({sub})" if label != sub else sub
            items.append(dataclasses.replace(item, facts=(("Subscription", shown), *item.facts)))
        return dataclasses.replace(message, items=tuple(items))


class CollectingNotifier(Notifier):
    """Hands a subscription's changes to one digest across the scope instead of sending them (the CLI's
    `sweep --management-group`): `ScopeRuntimes.flush` sends them and records what was delivered."""

    def __init__(self, sink: list[Change], lock: threading.Lock) -> None:
        super().__init__(())
        self._sink = sink
        self._sink_lock = lock

    def notify(
        self, changes: list[Change], *, trigger: str, correlation_id: str, now: datetime | None = None
    ) -> NotifyResult:
        with self._sink_lock:
            self._sink.extend(changes)
        return NotifyResult([], 0, [])


# -- per-subscription runtimes -----------------------------------------------------------------------------------


class ScopeRuntimes:
    """The subscriptions of a management-group deployment and a `Runtime` for each, built once per process.

    `digest_across_scope`: the changes of every subscription without a route are collected and sent as one
    digest by `flush()` (the CLI); otherwise each subscription's run sends its own, naming the subscription
    (the queue-triggered function, where each message is its own invocation)."""

    def __init__(
        self,
        parent: Runtime,
        *,
        graph: ResourceGraphGateway | None = None,
        digest_across_scope: bool = False,
        runtime_factory: Callable[[Settings, SubscriptionLedger, Notifier], Runtime] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        notifier_options: dict[str, Any] | None = None,
    ) -> None:
        self.parent = parent
        self.settings = parent.settings
        self._graph = graph
        self._own_graph = graph is None
        self.digest_across_scope = digest_across_scope
        self._factory = runtime_factory
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._runtimes: dict[str, Runtime] = {}
        self._known: list[ScopeSubscription] = []
        self._known_at: float | None = None
        self._names: dict[str, str] = {}
        self._collected: list[Change] = []
        self._collected_lock = threading.Lock()
        self._routes = {r.subscription_id.lower(): r for r in self.settings.notify_routes}
        self._notifier_options = dict(notifier_options or {})  # Notifier.from_settings overrides (local sinks' CA)

    @property
    def management_group(self) -> str:
        return self.settings.management_group

    @property
    def graph(self) -> ResourceGraphGateway:
        with self._lock:
            if self._graph is None:
                graph = build_graph(self.settings.replace(inventory="resource-graph"))
                assert graph is not None
                self._graph = graph
            return self._graph

    def subscriptions(self, *, refresh: bool = False) -> list[ScopeSubscription]:
        """The subscriptions in scope (Resource Graph, cached for SUBSCRIPTIONS_TTL seconds)."""
        now = self._monotonic()
        with self._lock:
            fresh = self._known_at is not None and now - self._known_at < SUBSCRIPTIONS_TTL
            if fresh and not refresh:
                return list(self._known)
        found = discover(self.settings, self.graph)
        with self._lock:
            self._known, self._known_at = found, now
            self._names.update({s.subscription_id: s.name for s in found})
        return list(found)

    def in_scope(self, subscription_id: str) -> bool:
        """Is this subscription watched? An unknown one triggers one fresh look (it may have just joined)."""
        key = subscription_id.lower()
        if key in {s.lower() for s in self.settings.exclude_subscriptions}:
            return False
        if any(s.subscription_id == key for s in self.subscriptions()):
            return True
        with self._lock:
            recently = self._known_at is not None and self._monotonic() - self._known_at < 60
        return not recently and any(s.subscription_id == key for s in self.subscriptions(refresh=True))

    def name_of(self, subscription_id: str) -> str:
        return self._names.get(subscription_id.lower(), subscription_id.lower())

    def runtime_for(self, subscription_id: str, name: str = "") -> Runtime:
        key = subscription_id.lower()
        with self._lock:
            if name:
                self._names[key] = name
            found = self._runtimes.get(key)
            if found is not None:
                return found
            settings = self.settings.replace(subscription_id=key, scope=Scope("subscription", key))
            ledger = SubscriptionLedger(self.parent.ledger, key)
            notifier = self._notifier_for(key, settings)
            if self._factory is not None:
                runtime = self._factory(settings, ledger, notifier)
            else:
                graph = self._graph.for_subscription(key) if self._graph is not None else None
                runtime = Runtime(
                    settings,
                    ledger=ledger,
                    notifier=notifier,
                    clock=self.parent.clock,
                    gateway_options=self.parent.gateway_options,
                    graph=graph if settings.inventory == "resource-graph" else None,
                )
            self._runtimes[key] = runtime
            return runtime

    def _notifier_for(self, subscription: str, settings: Settings) -> Notifier:
        route = self._routes.get(subscription)
        if route is not None:  # this subscription's own channels, and only them
            routed = settings.replace(
                teams_webhook_url=route.teams_webhook_urls[0] if route.teams_webhook_urls else "",
                email_recipients=route.email_recipients,
                email_endpoint=settings.email_endpoint if route.email_recipients else "",
                smtp_host=settings.smtp_host if route.email_recipients else "",
            )
            return ScopeNotifier.for_scope(routed, self._names, **self._notifier_options)
        if self.digest_across_scope:
            return CollectingNotifier(self._collected, self._collected_lock)
        return ScopeNotifier.for_scope(settings, self._names, **self._notifier_options)

    def flush(self, *, trigger: str, correlation_id: str) -> int:
        """Send the collected changes of the whole scope as one digest; record what was delivered."""
        with self._collected_lock:
            changes, self._collected[:] = list(self._collected), []
        if not changes:
            return 0
        notifier = ScopeNotifier.for_scope(self.settings, self._names, **self._notifier_options)
        outcome = notifier.notify(changes, trigger=trigger, correlation_id=correlation_id, now=self.parent.clock())
        store = RecordStore(self.parent.ledger)
        for record in outcome.delivered:
            try:
                store.save(notified(record))
            except Exception as exc:  # the message went out; at worst it is re-sent after the dedupe window
                log.warning("could not mark %s %s as notified: %s", record.scale_set_id, record.row_key, exc)
        return len(outcome.delivered)

    def close(self) -> None:
        with self._lock:
            runtimes, self._runtimes = list(self._runtimes.values()), {}
            graph, self._graph = (self._graph if self._own_graph else None), None
        for runtime in runtimes:
            runtime.close()
        if graph is not None:
            graph.close()
