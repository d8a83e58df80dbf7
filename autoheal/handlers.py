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
from typing import Any

from . import resource_ids, telemetry
from .engine import SweepResult, Target
from .events import Classification, MalformedEvent, Reason, Verdict, classify, parse_event
from .gateway import ArmError
from .model import iso
from .remediation.ledger import LedgerUnavailable
from .resource_ids import InvalidResourceId
from .runner import lagging
from .runtime import Runtime

log = telemetry.get_logger("autoheal.events")

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
        try:
            event = parse_event(payload)
            verdict = classify(event, self.runtime.settings.subscription_id)
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
            verdict = self._scale_set_of_vm(verdict)
            if verdict.verdict is not Verdict.EVALUATE:
                return EventOutcome("not-a-member", verdict.reason, code=verdict.code, **known)
        return self._evaluate(verdict)

    def _scale_set_of_vm(self, verdict: Classification) -> Classification:
        vm_name = verdict.details.get("vm", "")
        key = (verdict.resource_group.lower(), vm_name.lower())
        # One read per VM per burst: concurrent events about one VM wait for the first one's answer.
        with self._vm_locks[hash(key) % len(self._vm_locks)]:
            membership = self._memberships.get(key)
            if membership is None:
                membership = self._read_membership(verdict, vm_name)
                if membership.ttl > 0:
                    self._memberships.put(key, membership, membership.ttl)
        if membership.problem:
            return Classification(Verdict.IGNORE, membership.reason, verdict.event, code=membership.problem)
        try:
            ids = resource_ids.parse(membership.scale_set_id, subscription_id=self.runtime.settings.subscription_id)
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

    def _read_membership(self, verdict: Classification, vm_name: str) -> Membership:
        """Which scale set the VM belongs to, read from ARM (a transient failure raises: redelivered)."""
        try:
            vm = self.runtime.gateway.get_virtual_machine(verdict.resource_group, vm_name)
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

    def _evaluate(self, verdict: Classification) -> EventOutcome:
        event = verdict.event
        if not self._claim_evaluation(verdict.scale_set_id.lower()):
            return EventOutcome(
                "coalesced",
                f"{verdict.scale_set} was evaluated less than "
                f"{self.runtime.settings.event_coalesce_window.total_seconds():.0f}s ago",
                event.id,
                event.event_type,
                verdict.scale_set_id,
                code=Reason.COALESCED,
                subject=event.subject,
            )
        try:
            result = self.runtime.engine().sweep(
                Target(verdict.resource_group, verdict.scale_set), trigger="event", event_id=event.id
            )
        except ArmError as exc:
            self._forget(event.id, verdict.scale_set_id.lower())
            if exc.transient:
                log.warning("transient ARM failure on event %s, Event Grid will redeliver: %s", event.id, exc)
                raise
            log.error("event %s: ARM refused to read %s: %s", event.id, verdict.scale_set_id, exc)
            return EventOutcome(
                "ignored",
                f"ARM error {exc.code}",
                event.id,
                event.event_type,
                verdict.scale_set_id,
                code=Reason.ARM_REFUSED,
                subject=event.subject,
            )
        except LedgerUnavailable:
            self._forget(event.id, verdict.scale_set_id.lower())
            raise  # Table Storage down: Event Grid redelivers
        except Exception as exc:  # a bug: recorded once; redelivering would only repeat it
            telemetry.record_failure("internal")
            log.exception("event %s: internal error evaluating %s", event.id, verdict.scale_set_id)
            return EventOutcome(
                "ignored",
                f"internal error: {type(exc).__name__}",
                event.id,
                event.event_type,
                verdict.scale_set_id,
                code=Reason.EVALUATION_FAILED,
                subject=event.subject,
            )
        if not result.results:
            return EventOutcome(
                "gone",
                "the scale set no longer exists",
                event.id,
                event.event_type,
                verdict.scale_set_id,
                code=Reason.GONE,
                subject=event.subject,
            )
        scale_set = result.results[0]
        if scale_set.error:
            if scale_set.transient:
                self._forget(event.id, verdict.scale_set_id.lower())
                raise RuntimeError(f"evaluation of {verdict.scale_set_id} failed, to be redelivered: {scale_set.error}")
            log.error("event %s: %s could not be evaluated: %s", event.id, verdict.scale_set_id, scale_set.error)
            return EventOutcome(
                "ignored",
                scale_set.error,
                event.id,
                event.event_type,
                verdict.scale_set_id,
                code=Reason.EVALUATION_FAILED,
                subject=event.subject,
            )
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


def run_sweep(runtime: Runtime) -> SweepResult:
    """The timer's work: every scale set in the subscription, then a summary for the status endpoint."""
    result = runtime.engine().sweep(trigger="sweep")
    summary = sweep_summary(result)
    try:
        runtime.ledger.save_status("last-sweep", summary)
    except Exception as exc:  # the summary is a convenience; never fail the sweep for it
        log.warning("could not store the sweep summary: %s", exc)
    log.info("sweep summary %s", summary)
    return result


def sweep_summary(result: SweepResult) -> dict[str, Any]:
    findings: dict[str, int] = {}
    actions: dict[str, int] = {}
    for scale_set in result.results:
        for finding in scale_set.findings:
            findings[finding.code.value] = findings.get(finding.code.value, 0) + 1
        for action in scale_set.decisions():
            actions[action["state"]] = actions.get(action["state"], 0) + 1
    return {
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


def status(runtime: Runtime, *, limit: int = 50) -> dict[str, Any]:
    """Last sweep and the live ledger records worth a look (newest first)."""
    ledger = runtime.ledger
    records = sorted(
        (r for r in ledger.all_records() if r.state.value != "resolved"),
        key=lambda r: r.updated_at.timestamp() if r.updated_at else 0,
        reverse=True,
    )[:limit]
    return {
        "subscriptionId": runtime.settings.subscription_id,
        "mode": runtime.settings.mode,
        # Settings that could not be used as given (a notification channel turned off, a typo'd name).
        "settingsProblems": list(runtime.settings.problems),
        "lastSweep": ledger.load_status("last-sweep"),
        # Records whose state was never announced (the next sweep offers them again).
        "unannounced": sum(1 for r in records if lagging(r)),
        "records": [
            {
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
