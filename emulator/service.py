"""`Emulator`: the fleet state, the ARM pipeline and the HTTPS server, started and stopped together."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from .activitylog import ActivityLog, ActivityLogFront
from .api import ArmApi, control_response
from .arg_getlist import ArgGetList, ArgGetListFront
from .clock import Clock
from .compute import ComputeBackend
from .compute_limits import HEADER_FORMS
from .errors import ArmError
from .faults import FaultPlan, parse_plan
from .messages import Request, Response
from .platform import Platform
from .ratelimit import ComputeThrottle
from .replay import Exchange, ReplayBackend
from .resourcegraph import ResourceGraph, ResourceGraphFront
from .server import HttpsServer
from .state import FleetState
from .stats import RequestLog
from .tls import make_tls

FleetSource = dict[str, Any] | str | Path | None


class Emulator:
    """A running emulator. Use `Emulator.start(...)` (a context manager) rather than the constructor."""

    def __init__(
        self, state: FleetState, log: RequestLog, server: HttpsServer, ca_bundle: str, compute: ComputeThrottle
    ) -> None:
        self._state = state
        self._log = log
        self.compute_throttle = compute
        self._server = server
        self.ca_bundle = ca_bundle
        self.endpoint = f"https://{server.server_address[0]}:{server.port}"
        self.resource_graph: ResourceGraph | None = None  # set by start(); replays have none
        self.activity_log: ActivityLog | None = None  # set by start(): writes with their caller (activitylog.py)
        self.arg_getlist: ArgGetList | None = None  # set by start(); replays have none

    # --- lifecycle ---------------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        fleet: FleetSource = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        page_size: int = 100,
        create_delay: float = 0.0,
        lro_polls: int = 1,
        lro_seconds: float = 60.0,
        clock: Clock | None = None,
        compute_refill_scale: float = 1.0,
        compute_capacity_scale: float = 1.0,
        rate_limit_header_form: str | None = None,
    ) -> Emulator:
        """Serve `fleet` (a fleet document or a path to one; None = an empty subscription) over HTTPS.

        `rate_limit_header_form` ("windowed" | "repeated" | "suffix") overrides the fleet's
        `rateLimitHeaderForm`, for every fleet this emulator loads.

        Compute's throttling buckets use Azure's numbers; `compute_refill_scale` (e.g. 10.0: ten times
        faster) and `compute_capacity_scale` change them for tests that must run fast."""
        state = FleetState(
            clock or Clock(),
            page_size=page_size,
            create_delay=create_delay,
            lro_polls=lro_polls,
            lro_seconds=lro_seconds,
        )
        if rate_limit_header_form is not None and rate_limit_header_form not in HEADER_FORMS:
            raise ValueError(f"rate_limit_header_form must be one of {list(HEADER_FORMS)}")
        state.load(fleet)
        log = RequestLog()
        holder: list[Emulator] = []
        backend = ComputeBackend(state, lambda: holder[0].endpoint)
        compute = ComputeThrottle(refill_scale=compute_refill_scale, capacity_scale=compute_capacity_scale)
        api = ArmApi(
            backend,
            faults=lambda: state.faults,
            subscription_id=lambda: state.subscription_id,
            log=log,
            control=lambda request: holder[0]._control(request),
            journal=state.journal,
            compute=compute,
            header_form=lambda: rate_limit_header_form or state.rate_limit_header_form,
        )
        graph = ResourceGraph(state, log)  # Resource Graph beside ARM's pipeline: its own quota (resourcegraph.py)
        graph.configure_from_fleet(fleet)
        activity = ActivityLog(
            state.clock, lambda: state.faults, lambda: state.subscription_id, log, lambda: state.subscriptions
        )
        activity.configure_from_fleet(fleet)
        getlist = ArgGetList(state, backend, log)  # ?useResourceGraph=true on Compute GETs (arg_getlist.py)
        getlist.configure_from_fleet(fleet)
        front = ActivityLogFront(activity, ArgGetListFront(getlist, ResourceGraphFront(graph, api)))
        emulator = cls._serve(front, state, log, host, port, compute)
        emulator.resource_graph = graph
        emulator.activity_log = activity
        emulator.arg_getlist = getlist
        holder.append(emulator)
        return emulator

    @classmethod
    def replay(
        cls,
        exchanges: list[Exchange],
        *,
        subscription_id: str = "{subscription-id}",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> Emulator:
        """Answer recorded exchanges (conformance tests) behind the normal pipeline."""
        state = FleetState(Clock())
        state.load({"subscriptionId": subscription_id, "scaleSets": []})
        log = RequestLog()
        backend = ReplayBackend(exchanges)
        holder: list[Emulator] = []
        compute = ComputeThrottle()
        api = ArmApi(
            backend,
            faults=lambda: state.faults,
            subscription_id=lambda: state.subscription_id,
            log=log,
            control=lambda request: holder[0]._control(request),
            resolve=backend.resolve,
            compute=compute,
        )
        emulator = cls._serve(api, state, log, host, port, compute)
        holder.append(emulator)
        return emulator

    @classmethod
    def _serve(
        cls, api: Any, state: FleetState, log: RequestLog, host: str, port: int, compute: ComputeThrottle
    ) -> Emulator:
        tls = make_tls()
        server = HttpsServer((host, port), api, tls.context)
        server.start()
        return cls(state, log, server, tls.ca_bundle, compute)

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the Python API ----------------------------------------------------------------------------

    @property
    def subscription_id(self) -> str:
        return self._state.subscription_id

    @property
    def subscription_ids(self) -> list[str]:
        """Every subscription of the fleet, as written, in fleet order (one for a single-subscription fleet)."""
        return list(self._state.subscriptions.values())

    @property
    def clock(self) -> Clock:
        return self._state.clock

    @property
    def port(self) -> int:
        return self._server.port

    def stats(self) -> dict[str, Any]:
        return {**self._log.snapshot(), **self.compute_throttle.snapshot()}

    def reset_stats(self) -> None:
        """Zero the counters (Compute's buckets keep their tokens, as Azure's would)."""
        self._log.reset()
        self.compute_throttle.reset_counters()

    def journal(self) -> dict[str, Any]:
        """Every write answered and its outcome, and the capacity timeline per scale set (emulator/journal.py)."""
        return self._state.journal.document()

    def reset_journal(self) -> None:
        self._state.journal.reset()

    def load_fleet(self, fleet: FleetSource) -> None:
        """Another fleet is another world: Compute's buckets start full again."""
        self._state.load(fleet)
        if self.resource_graph is not None:
            self.resource_graph.configure_from_fleet(fleet)
        if self.activity_log is not None:
            self.activity_log.configure_from_fleet(fleet)
        if self.arg_getlist is not None:
            self.arg_getlist.configure_from_fleet(fleet)
        self.compute_throttle.reset()

    def set_faults(self, plan: dict[str, Any] | FaultPlan | None) -> None:
        self._state.set_faults(plan)

    def fleet(self) -> dict[str, Any]:
        """The current fleet as a fleet document."""
        return self._state.document()

    def scale_set(self, resource_group: str, name: str, subscription: str | None = None) -> dict[str, Any]:
        """The scale set's current ARM payload (a copy)."""
        with self._state.lock:
            self._state.run_due()
            return copy.deepcopy(self._require(resource_group, name, subscription).resource)

    def instance_view(self, resource_group: str, name: str, subscription: str | None = None) -> dict[str, Any]:
        with self._state.lock:
            self._state.run_due()
            target = self._require(resource_group, name, subscription)
            return copy.deepcopy(Platform(self._state).instance_view(target))

    def instances(self, resource_group: str, name: str, subscription: str | None = None) -> list[dict[str, Any]]:
        """The scale set's instances as stored (with instance views), in instance order (copies)."""
        with self._state.lock:
            self._state.run_due()
            return copy.deepcopy([vm.payload for vm in self._require(resource_group, name, subscription).vms.values()])

    def platform_suspends_repairs(self, resource_group: str, name: str) -> None:
        """What Azure does after repeated failed repairs: AutomaticRepairs becomes Suspended, and the Activity Log
        gets the setOrchestrationServiceState event Microsoft's repairs-state alert fires on, from the platform
        (caller "Microsoft.Compute": unverified, no public capture of such an event exists)."""
        from .activitylog import seed

        with self._state.lock:
            self._state.run_due()
            target = self._require(resource_group, name)
            now = self.clock.now()
            Platform(self._state)._set_service_state(target, "Suspended", now)
            resource_id = str(target.resource["id"])
        if self.activity_log is not None:
            self.activity_log.add({**seed(resource_id, "Microsoft.Compute", now), "claims": {}})

    def _require(self, resource_group: str, name: str, subscription: str | None = None):  # type: ignore[no-untyped-def]
        found = self._state.find_scale_set(resource_group, name, subscription)

        if found is None:
            raise KeyError(f"no scale set {resource_group}/{name}")
        return found

    # --- /_emulator control endpoints (no auth) ----------------------------------------------------

    def _control(self, request: Request) -> Response:
        action = "/".join(request.segments[1:]).lower()
        try:
            if request.method == "GET" and action == "stats":
                return control_response(self.stats())
            if request.method == "POST" and action == "reset-stats":
                self.reset_stats()
                return control_response(self.stats())
            if request.method == "GET" and action == "journal":
                return control_response(self.journal())
            if request.method == "POST" and action == "reset-journal":
                self.reset_journal()
                return control_response({"reset": True})
            if request.method == "GET" and action == "fleet":
                return control_response(self.fleet())
            if request.method == "POST" and action == "fleet":
                self.load_fleet(json.loads(request.body or b"{}"))
                return control_response({"loaded": True})
            if request.method == "POST" and action == "faults":
                self.set_faults(parse_plan(json.loads(request.body or b"{}")))
                return control_response({"faults": json.loads(request.body or b"{}")})
            if request.method == "POST" and action == "clock":
                return control_response(self._clock_command(json.loads(request.body or b"{}")))
        except (ValueError, KeyError, TypeError) as error:
            return control_response({"error": {"code": "BadRequest", "message": str(error)}}, 400)
        except ArmError as error:
            return control_response(error.envelope(), error.status)
        return control_response({"error": {"code": "NotFound", "message": f"no control endpoint {action}"}}, 404)

    def _clock_command(self, command: dict[str, Any]) -> dict[str, Any]:
        if command.get("freeze"):
            self.clock.freeze()
        if command.get("unfreeze"):
            self.clock.unfreeze()
        if command.get("advance"):
            self.clock.advance(float(command["advance"]))
        return {"now": self.clock.now().isoformat(), "frozen": self.clock.frozen}
