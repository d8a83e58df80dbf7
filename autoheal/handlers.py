"""What each trigger runs: thin adapters (functions/, the CLI) call these, nothing else.

`EventHandler` is the Event Grid trigger's whole logic and also what `vmss-autoheal handle-event` replays:
parse → classify → dedupe → coalesce → evaluate one scale set through the engine (the same way through as
the sweep). Malformed or foreign events are logged and dropped (never retried); transient ARM failures
raise so that Event Grid redelivers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import resource_ids, telemetry
from .engine import SweepResult, Target
from .events import Classification, MalformedEvent, Reason, Verdict, classify, parse_event
from .gateway import ArmError
from .model import iso
from .remediation.ledger import LedgerUnavailable
from .resource_ids import InvalidResourceId
from .runner import lagging
from .runtime import Runtime

if TYPE_CHECKING:
    from .fanout import SweepQueue
    from .scope import ScopeRuntimes

log = telemetry.get_logger("autoheal.events")
fanout_log = telemetry.get_logger("autoheal.fanout")

SEEN_EVENTS_TTL = 3600.0  # Event Grid retries for up to 24 h, but redeliveries cluster in the first hour
SEEN_EVENTS_MAX = 10_000
# A VM's scale set is set when the VM is created and rarely changes afterwards (an existing VM can be attached
# to, or detached from, a Flexible scale set: Azure/terraform-azurerm-avm-res-compute-virtualmachine 0.13.1
# "attaching a virtual machine to a Flex Orchestrated Scale Set"). So it is remembered for a bounded time,
# enough for a burst of events about one VM to read it once, and in a bounded map.
MEMBERSHIP_TTL = 300.0
MISSING_VM_TTL = 60.0  # a VM not found: the burst is over long before it could be created with that name
MEMBERSHIPS_MAX = 10_000


@dataclass(frozen=True)
class Membership:
    """What ARM said of one VM: the scale set it belongs to, or why it is left alone (a Reason code)."""

    scale_set_id: str
    problem: str
    reason: str
    ttl: float  # seconds to remember it (0: not at all)


class ExpiringMap:
    """A bounded map whose entries expire (oldest dropped first when full). Thread-safe."""

    def __init__(self, max_size: int, monotonic: Callable[[], float]) -> None:
        self._max_size = max_size
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._entries: OrderedDict[Any, tuple[float, Any]] = OrderedDict()

    def get(self, key: Any) -> Any:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= self._monotonic():
                del self._entries[key]
                return None
            return entry[1]

    def put(self, key: Any, value: Any, ttl: float) -> None:
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = (self._monotonic() + ttl, value)
            while len(self._entries) > self._max_size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True)
class EventOutcome:
    status: str  # evaluated | ignored | rejected | malformed | duplicate | coalesced | not-a-member | gone
    reason: str
    event_id: str = ""
    event_type: str = ""
    scale_set_id: str = ""
    actions: list[dict[str, Any]] = field(default_factory=list)
    code: str = ""  # reason code of an event left alone (`autoheal.events.Reason`, `resource_ids.IdProblem`)
    subject: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reasonCode": self.code,
            "reason": self.reason,
            "eventId": self.event_id,
            "eventType": self.event_type,
            "scaleSetId": self.scale_set_id,
            "actions": self.actions,
        }


class EventHandler:
    """Per-process: remembers recent event ids (at-least-once delivery) and recent evaluations (bursts)."""

    def __init__(self, runtime: Runtime, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.runtime = runtime
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._last_evaluation: dict[str, float] = {}
        self._memberships = ExpiringMap(MEMBERSHIPS_MAX, monotonic)
        self._vm_locks = [threading.Lock() for _ in range(32)]  # striped: bounded, one per VM key's hash

    def handle_all(self, payloads: Iterable[Any]) -> list[EventOutcome]:
        return [self.handle(payload) for payload in payloads]

    def handle(self, payload: Any) -> EventOutcome:
        outcome = self._handle(payload)
        if outcome.status != "evaluated":
            _log_dropped(outcome)
        return outcome

    def _handle(self, payload: Any) -> EventOutcome:
        runtime = self.runtime
        try:
            event = parse_event(payload)
            if runtime.settings.management_group:
                # Management-group scope: the event's own subscription's runtime, if that subscription is watched.
                found = self._runtime_of(event)
                if isinstance(found, EventOutcome):
                    return found
                runtime = found
            verdict = classify(event, runtime.settings.subscription_id)
        except MalformedEvent as exc:
            return EventOutcome(
                "malformed",
                str(exc),
                _field(payload, "id"),
                _type_of(payload),
                code=exc.code,
                subject=_field(payload, "subject"),
            )
        known: dict[str, Any] = {"event_id": event.id, "event_type": event.event_type, "subject": event.subject}
        if verdict.verdict is Verdict.IGNORE:
            return EventOutcome("ignored", verdict.reason, code=verdict.code, **known)
        if verdict.verdict is Verdict.REJECT:
            return EventOutcome("rejected", verdict.reason, code=verdict.code, **known)
        if self._duplicate(event.id):
            return EventOutcome("duplicate", "this event id was already handled", code=Reason.DUPLICATE, **known)
        if verdict.verdict is Verdict.LOOKUP_VM:
            verdict = self._scale_set_of_vm(verdict, runtime)
            if verdict.verdict is not Verdict.EVALUATE:
                return EventOutcome("not-a-member", verdict.reason, code=verdict.code, **known)
        return self._evaluate(verdict, runtime)

    def _runtime_of(self, event: Any) -> Runtime | EventOutcome:
        """The runtime of the subscription an event comes from, or the rejection of a subscription outside."""
        from .resource_ids import IdProblem
        from .scope import subscription_of

        scopes = scope_runtimes(self.runtime)
        data = event.data if isinstance(event.data, dict) else {}
        named = [str(event.subject), str(data.get("resourceUri") or ""), str(data.get("resourceInfo") or "")]
        subscription = next((found for found in map(subscription_of, named) if found), "")
        if subscription and scopes.in_scope(subscription):
            return scopes.runtime_for(subscription)
        return EventOutcome(
            "rejected",
            f"subscription {subscription or '(none named)'} is outside the management group "
            f"{self.runtime.settings.management_group} this deployment watches",
            event.id,
            event.event_type,
            code=IdProblem.FOREIGN_SUBSCRIPTION,
            subject=event.subject,
        )

    def _scale_set_of_vm(self, verdict: Classification, runtime: Runtime | None = None) -> Classification:
        runtime = runtime or self.runtime
        vm_name = verdict.details.get("vm", "")
        key = (runtime.settings.subscription_id.lower(), verdict.resource_group.lower(), vm_name.lower())
        # One read per VM per burst: concurrent events about one VM wait for the first one's answer.
        with self._vm_locks[hash(key) % len(self._vm_locks)]:
            membership = self._memberships.get(key)
            if membership is None:
                membership = self._read_membership(verdict, vm_name, runtime)
                if membership.ttl > 0:
                    self._memberships.put(key, membership, membership.ttl)
        if membership.problem:
            return Classification(Verdict.IGNORE, membership.reason, verdict.event, code=membership.problem)
        try:
            ids = resource_ids.parse(membership.scale_set_id, subscription_id=runtime.settings.subscription_id)
        except InvalidResourceId as exc:
            return Classification(
                Verdict.IGNORE,
                f"VM {vm_name} names scale set {membership.scale_set_id[:200]!r}: {exc}",
                verdict.event,
                code=exc.problem,
            )
        return Classification(
            Verdict.EVALUATE,
            f"{verdict.event.event_type.rsplit('.', 1)[-1]} on Flexible instance {vm_name}",
            verdict.event,
            scale_set_id=ids.scale_set_id,
            resource_group=ids.resource_group,
            scale_set=ids.name,
        )

    def _read_membership(self, verdict: Classification, vm_name: str, runtime: Runtime | None = None) -> Membership:
        """Which scale set the VM belongs to, read from ARM (a transient failure raises: redelivered)."""
        runtime = runtime or self.runtime
        try:
            vm = runtime.gateway.get_virtual_machine(verdict.resource_group, vm_name)
        except ArmError as exc:
            if exc.transient:
                self._forget(verdict.event.id, "")
                raise
            # A VM not found may be created soon: remembered briefly; other refusals (403) not at all.
            ttl = MISSING_VM_TTL if exc.not_found else 0.0
            return Membership("", Reason.VM_UNREADABLE, f"VM {vm_name} could not be read: {exc.code}", ttl)
        member_of = ((vm.get("properties") or {}).get("virtualMachineScaleSet") or {}).get("id")
        if not member_of:
            return Membership("", Reason.NOT_A_MEMBER, f"VM {vm_name} does not belong to a scale set", MEMBERSHIP_TTL)
        return Membership(str(member_of), "", "", MEMBERSHIP_TTL)

    def _evaluate(self, verdict: Classification, runtime: Runtime | None = None) -> EventOutcome:
        runtime = runtime or self.runtime
        event = verdict.event
        known: dict[str, Any] = {
            "event_id": event.id,
            "event_type": event.event_type,
            "scale_set_id": verdict.scale_set_id,
            "subject": event.subject,
        }
        if not self._claim_evaluation(verdict.scale_set_id.lower()):
            window = self.runtime.settings.event_coalesce_window.total_seconds()
            reason = f"{verdict.scale_set} was evaluated less than {window:.0f}s ago"
            return EventOutcome("coalesced", reason, code=Reason.COALESCED, **known)
        try:
            result = runtime.engine().sweep(
                Target(verdict.resource_group, verdict.scale_set), trigger="event", event_id=event.id
            )
        except ArmError as exc:
            self._forget(event.id, verdict.scale_set_id.lower())
            if exc.transient:
                log.warning("transient ARM failure on event %s, Event Grid will redeliver: %s", event.id, exc)
                raise
            log.error("event %s: ARM refused to read %s: %s", event.id, verdict.scale_set_id, exc)
            return EventOutcome("ignored", f"ARM error {exc.code}", code=Reason.ARM_REFUSED, **known)
        except LedgerUnavailable:
            self._forget(event.id, verdict.scale_set_id.lower())
            raise  # Table Storage down: Event Grid redelivers
        except Exception as exc:  # a bug: recorded once; redelivering would only repeat it
            telemetry.record_failure("internal")
            log.exception("event %s: internal error evaluating %s", event.id, verdict.scale_set_id)
            reason = f"internal error: {type(exc).__name__}"
            return EventOutcome("ignored", reason, code=Reason.EVALUATION_FAILED, **known)
        if not result.results:
            return EventOutcome("gone", "the scale set no longer exists", code=Reason.GONE, **known)
        scale_set = result.results[0]
        if scale_set.error:
            if scale_set.transient:
                self._forget(event.id, verdict.scale_set_id.lower())
                raise RuntimeError(f"evaluation of {verdict.scale_set_id} failed, to be redelivered: {scale_set.error}")
            log.error("event %s: %s could not be evaluated: %s", event.id, verdict.scale_set_id, scale_set.error)
            return EventOutcome("ignored", scale_set.error, code=Reason.EVALUATION_FAILED, **known)
        return EventOutcome(
            "evaluated", verdict.reason, event.id, event.event_type, verdict.scale_set_id, scale_set.decisions()
        )

    # -- process-local memory ---------------------------------------------------------------------------

    def _duplicate(self, event_id: str) -> bool:
        now = self._monotonic()
        with self._lock:
            while self._seen and (
                len(self._seen) > SEEN_EVENTS_MAX or next(iter(self._seen.values())) < now - SEEN_EVENTS_TTL
            ):
                self._seen.popitem(last=False)
            if event_id in self._seen:
                return True
            self._seen[event_id] = now
            return False

    def _claim_evaluation(self, key: str) -> bool:
        window = self.runtime.settings.event_coalesce_window.total_seconds()
        now = self._monotonic()
        with self._lock:
            last = self._last_evaluation.get(key)
            if last is not None and now - last < window:
                return False
            self._last_evaluation[key] = now
            return True

    def _forget(self, event_id: str, key: str) -> None:
        """A failed evaluation must not swallow the redelivery that retries it."""
        with self._lock:
            self._seen.pop(event_id, None)
            self._last_evaluation.pop(key, None)


def _field(payload: Any, name: str) -> str:
    value = payload.get(name) if isinstance(payload, dict) else None
    return _printable(value if isinstance(value, str) else "" if value is None else repr(value))


def _type_of(payload: Any) -> str:
    if not isinstance(payload, dict):
        return ""
    return _field(payload, "eventType") or _field(payload, "type")


def _printable(text: str, limit: int = 200) -> str:
    """Attacker-controlled text in a log line: bounded, one line, no control characters."""
    cut = text[:limit]
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in cut)
    return cleaned + ("…" if len(text) > limit else "")


_DROP_LEVELS = {"malformed": logging.WARNING, "rejected": logging.WARNING, "gone": logging.INFO}


def _log_dropped(outcome: EventOutcome) -> None:
    """One line per event left alone (id, type, subject, reason code, reason) and a counter per reason."""
    code = str(outcome.code or outcome.status)
    level = _DROP_LEVELS.get(outcome.status, logging.INFO)
    log.log(
        level,
        "event %s dropped (%s, %s): type=%s subject=%s: %s",
        _printable(outcome.event_id) or "(no id)",
        outcome.status,
        code,
        _printable(outcome.event_type) or "-",
        _printable(outcome.subject) or "-",
        _printable(outcome.reason, 400),
        extra=telemetry.dimensions(
            eventId=_printable(outcome.event_id),
            reasonCode=code,
            outcome=outcome.status,
            scaleSetId=outcome.scale_set_id,
        ),
    )
    telemetry.record_event_dropped(outcome.status, code)


_handler: EventHandler | None = None
_handler_lock = threading.Lock()


def event_handler(runtime: Runtime) -> EventHandler:
    """The process-wide handler (its memory of event ids must outlive one invocation)."""
    global _handler
    with _handler_lock:
        if _handler is None or _handler.runtime is not runtime:
            _handler = EventHandler(runtime)
        return _handler


def run_timer(runtime: Runtime, queue: SweepQueue | None = None) -> dict[str, Any]:
    """The timer's work: the subscription's sweep (subscription scope), or one queue message per subscription
    under the management group (management-group scope), each swept by `run_queue_slice` on some instance."""
    if not runtime.settings.management_group:
        return sweep_summary(run_sweep(runtime))
    return fan_out(runtime, queue)


def fan_out(runtime: Runtime, queue: SweepQueue | None = None) -> dict[str, Any]:
    """Enqueue this tick's slices: one message per subscription in scope (Resource Graph, excluded ones left out)."""
    from datetime import UTC, datetime

    from .fanout import SliceMessage, SweepQueue, describe, new_tick

    scopes = scope_runtimes(runtime)
    subscriptions = scopes.subscriptions(refresh=True)  # every tick looks again: new subscriptions join here
    now = runtime.clock()
    tick = new_tick(now)
    messages = [
        SliceMessage(s.subscription_id, runtime.settings.management_group, tick, iso(now) or "", s.name)
        for s in subscriptions
    ]
    owned = queue is None
    queue = queue or SweepQueue.from_settings(runtime.settings)
    try:
        queue.ensure()
        sent = queue.enqueue(messages)
    finally:
        if owned:
            queue.close()
    document = {**describe(messages), "managementGroup": runtime.settings.management_group, "enqueued": sent}
    document["excluded"] = list(runtime.settings.exclude_subscriptions)
    document["at"] = iso(datetime.now(UTC))
    try:
        runtime.ledger.save_status("last-fanout", document)
    except Exception as exc:  # a convenience for /status; the messages are out
        fanout_log.warning("could not store the fan-out summary: %s", exc)
    fanout_log.info(
        "tick %s: %d subscription(s) of management group %s enqueued on %s",
        tick,
        sent,
        runtime.settings.management_group,
        runtime.settings.sweep_queue,
    )
    return document


def run_queue_slice(runtime: Runtime, body: str | bytes, *, dequeue_count: int = 1) -> dict[str, Any] | None:
    """The queue-triggered function's work: one subscription's sweep, with its budget and ledger partition.

    Idempotent: a tick this subscription already finished is acknowledged without a sweep (and the ledger
    refuses a second action on anything in flight anyway). A message that is not a slice raises
    `BadSliceMessage` (the host retries it, then moves it to the poison queue: nothing is lost). A subscription
    no longer in scope is left alone (logged). Anything else that fails raises, so the message comes back."""
    from .fanout import MAX_DEQUEUE_COUNT, BadSliceMessage, SliceMessage

    try:
        message = SliceMessage.from_json(body)
    except BadSliceMessage as exc:
        fanout_log.error(
            "queue message is not a sweep slice (%s); delivery %d of %d, then the poison queue %s-poison",
            exc,
            dequeue_count,
            MAX_DEQUEUE_COUNT,
            runtime.settings.sweep_queue,
        )
        raise
    scopes = scope_runtimes(runtime)
    if not scopes.in_scope(message.subscription_id):
        fanout_log.warning(
            "slice of tick %s for subscription %s skipped: it is no longer in the scope %s",
            message.tick,
            message.subscription_id,
            runtime.settings.management_group,
        )
        return None
    sub_runtime = scopes.runtime_for(message.subscription_id, message.name)
    done = sub_runtime.ledger.load_status("slice-done") or {}
    if done.get("tick") == message.tick:
        fanout_log.info("slice of tick %s for %s already done: redelivery acknowledged", message.tick, message.name)
        return None
    if dequeue_count > 1:
        fanout_log.warning(
            "slice of tick %s for %s delivered again (delivery %d of %d): a previous run failed or its instance died",
            message.tick,
            message.subscription_id,
            dequeue_count,
            MAX_DEQUEUE_COUNT,
        )
    result = run_sweep(sub_runtime, name=message.name or scopes.name_of(message.subscription_id))
    summary = sweep_summary(result, subscription_id=message.subscription_id, name=message.name)
    sub_runtime.ledger.save_status("slice-done", {"tick": message.tick, "correlationId": result.correlation_id})
    return summary


def run_sweep(runtime: Runtime, *, name: str = "") -> SweepResult:
    """The timer's work: every scale set in the subscription, then a summary for the status endpoint."""
    result = runtime.engine().sweep(trigger="sweep")
    summary = sweep_summary(result, subscription_id=runtime.settings.subscription_id, name=name)
    try:
        runtime.ledger.save_status("last-sweep", summary)
    except Exception as exc:  # the summary is a convenience; never fail the sweep for it
        log.warning("could not store the sweep summary: %s", exc)
    log.info("sweep summary %s", summary)
    return result


def sweep_summary(result: SweepResult, *, subscription_id: str = "", name: str = "") -> dict[str, Any]:
    findings: dict[str, int] = {}
    actions: dict[str, int] = {}
    for scale_set in result.results:
        for finding in scale_set.findings:
            findings[finding.code.value] = findings.get(finding.code.value, 0) + 1
        for action in scale_set.decisions():
            actions[action["state"]] = actions.get(action["state"], 0) + 1
    return {
        **({"subscriptionId": subscription_id} if subscription_id else {}),
        **({"subscriptionName": name} if name and name != subscription_id else {}),
        "correlationId": result.correlation_id,
        "startedAt": iso(result.started_at),
        "durationSeconds": round(result.duration_s, 3),
        "scaleSets": len(result.results),
        "readScaleSets": sum(1 for r in result.results if not r.deferred),
        "deferredScaleSets": sum(1 for r in result.results if r.deferred),
        "suspects": result.suspects,
        "coverage": result.coverage,
        "unreadScaleSets": sum(1 for r in result.results if r.error),
        "findings": findings,
        "actions": actions,
        "arm": result.arm,
        "notified": result.notified,
        # Nothing logged and forgotten: what failed is counted here and in the metric autoheal.failures.
        "failures": {"notification": result.notify_failures, "history": result.history_failures},
    }


_scopes: dict[int, ScopeRuntimes] = {}
_scopes_lock = threading.Lock()


def scope_runtimes(runtime: Runtime) -> ScopeRuntimes:
    """The process-wide per-subscription runtimes of a management-group deployment (one per parent runtime)."""
    from .scope import ScopeRuntimes

    with _scopes_lock:
        found = _scopes.get(id(runtime))
        if found is None or found.parent is not runtime:
            found = ScopeRuntimes(runtime)
            _scopes[id(runtime)] = found
        return found


def forget_scope_runtimes(runtime: Runtime) -> None:
    with _scopes_lock:
        found = _scopes.pop(id(runtime), None)
    if found is not None:
        found.close()


def subscription_figures(summary: dict[str, Any] | None) -> dict[str, Any]:
    """Coverage, spend and findings of one subscription's last sweep, for /status and the CLI."""
    if not summary:
        return {"lastSweep": None}
    coverage = summary.get("coverage") or {}
    compute = (summary.get("arm") or {}).get("compute") or {}
    return {
        "lastSweep": summary.get("startedAt"),
        "coverage": {
            "scaleSets": summary.get("scaleSets"),
            "read": summary.get("readScaleSets"),
            "deferred": summary.get("deferredScaleSets"),
            "sweepsPerLap": coverage.get("sweepsPerLap"),
            "lastLapSeconds": coverage.get("lastLapSeconds"),
        },
        "spend": {
            "computeTokens": compute.get("spent") or {},
            # the lowest share left of any Compute bucket this subscription's sweep saw
            "lowestShareLeft": min(
                (
                    b["lowestShareLeft"]
                    for b in (compute.get("buckets") or {}).values()
                    if b.get("lowestShareLeft") is not None
                ),
                default=None,
            ),
        },
        "findings": summary.get("findings") or {},
        "actions": summary.get("actions") or {},
    }


def _scope_status(runtime: Runtime) -> dict[str, Any]:
    from .scope import SubscriptionLedger

    scopes = scope_runtimes(runtime)
    rows = []
    for sub in scopes.subscriptions():
        ledger = SubscriptionLedger(runtime.ledger, sub.subscription_id)
        rows.append(
            {"subscriptionId": sub.subscription_id, "name": sub.name}
            | subscription_figures(ledger.load_status("last-sweep"))
        )
    return {
        "managementGroup": runtime.settings.management_group,
        "excludedSubscriptions": list(runtime.settings.exclude_subscriptions),
        "lastFanout": runtime.ledger.load_status("last-fanout"),
        "subscriptions": rows,
    }


def status(runtime: Runtime, *, limit: int = 50) -> dict[str, Any]:
    """Last sweep and the live ledger records worth a look (newest first); per subscription in a
    management-group scope."""
    ledger = runtime.ledger
    records = sorted(
        (r for r in ledger.all_records() if r.state.value != "resolved"),
        key=lambda r: r.updated_at.timestamp() if r.updated_at else 0,
        reverse=True,
    )[:limit]
    document: dict[str, Any] = {
        "subscriptionId": runtime.settings.subscription_id,
        "mode": runtime.settings.mode,
        # Settings that could not be used as given (a notification channel turned off, a typo'd name).
        "settingsProblems": list(runtime.settings.problems),
        "lastSweep": ledger.load_status("last-sweep"),
        # Records whose state was never announced (the next sweep offers them again).
        "unannounced": sum(1 for r in records if lagging(r)),
    }
    if runtime.settings.management_group:
        document["scope"] = _scope_status(runtime)
    return document | {
        "records": [
            {
                "subscriptionId": r.scale_set_id.split("/")[2].lower() if r.scale_set_id.count("/") > 2 else "",
                "scaleSetId": r.scale_set_id,
                "findingCode": r.finding_code,
                "target": r.target,
                "action": r.action,
                "state": r.state.value,
                "reason": r.reason,
                "reasonCode": r.reason_code,
                "attempts": r.attempts,
                "instanceIds": r.instance_ids,
                "updatedAt": iso(r.updated_at),
            }
            for r in records
        ],
    }
