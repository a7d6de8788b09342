"""What the node reports on /diagnostics: model, inputs, processing and command state."""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from std_msgs.msg import Header

from lead_ros.cameras.calibrations import RigCalibrations
from lead_ros.cameras.reprojection import COVERAGE_ERROR, COVERAGE_WARN
from lead_ros.inputs.arrivals import PublisherSequence
from lead_ros.inputs.command import CommandState
from lead_ros.planner import PlannerInfo

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR
INPUT_STALE_S = 1.0
# A rig camera's CameraInfo not received this long after configure: the cameras status is ERROR.
CAMERA_INFO_WAIT_S = 5.0
_LATENCY_WINDOW = 200
_TIMING_WINDOW = 5000
MAX_MESSAGE_CHARS = 300


@dataclass(frozen=True)
class FrameTiming:
    """Where one planned frame's time went (milliseconds)."""

    pipeline_latency_ms: float  # anchor stamp -> path published (node clock)
    queue_wait_ms: float  # synchronization complete -> worker pickup
    node_overhead_ms: float  # worker pickup -> path published, minus model inference
    inference_ms: float


@dataclass
class InputStats:
    sequence: PublisherSequence = field(default_factory=PublisherSequence)
    last_ns: int | None = None  # node clock when the newest message taken was received
    rejected: int = 0


class InputSnapshot(NamedTuple):
    """One input's figures (``PipelineStats.snapshot``)."""

    taken: int
    rejected: int
    rate_hz: float  # the publishers' rate where it can be derived, else the rate taken
    last_ns: int | None
    rate_source: str  # "published" or "taken"
    published: int  # by the publishers' numbers since the first message taken
    not_taken: int  # of those, replaced in DDS by newer ones before the node took them


class PipelineStats:
    """Counters shared by callbacks, the worker and the diagnostics timer (thread safe)."""

    def __init__(self, inputs: tuple[str, ...]) -> None:
        self._lock = threading.Lock()
        self.inputs = {name: InputStats() for name in inputs}
        self.failures: Counter[str] = Counter()
        self.consecutive_failures = 0
        self.planned = 0
        self.superseded = 0  # frames not planned because a newer one was (all ways)
        self.never_taken = 0  # of those: anchor images replaced in DDS before they were taken
        self.over_budget = 0
        self.latencies_ms: deque[float] = deque(maxlen=_LATENCY_WINDOW)
        self.last_latency_ms: float | None = None
        self.last_inference_ms: float | None = None
        self.last_error = ""
        self.degraded: Counter[str] = Counter()  # planned frames with an output left out, by reason
        self.filled: Counter[str] = Counter()  # planned frames with this camera filled black
        self.filling: tuple[str, ...] = ()  # cameras filled black in the last planned frame
        self.exceptions: Counter[str] = Counter()  # "<place>: <exception type>" -> count
        self.last_exception = ""
        self.timings: deque[FrameTiming] = deque(maxlen=_TIMING_WINDOW)

    def track(self, name: str) -> None:
        """Count an input known only at configure (a rig camera's CameraInfo)."""
        with self._lock:
            self.inputs.setdefault(name, InputStats())

    def received(self, name: str, clock_ns: int, sequence: int | None = None, publisher=None) -> int:
        """A message taken, received at ``clock_ns`` (node clock); returns how many of its
        publisher's messages before it were never taken."""
        with self._lock:
            stats = self.inputs[name]
            stats.last_ns = clock_ns
            return stats.sequence.observe(sequence, clock_ns, publisher)

    def frames_superseded(self, count: int = 1, never_taken: bool = False) -> None:
        """Frames not planned because a newer one was; ``never_taken``: their anchor image was
        replaced in DDS before the node took it."""
        with self._lock:
            self.superseded += count
            self.never_taken += count if never_taken else 0

    def rejected(self, name: str) -> None:
        with self._lock:
            self.inputs[name].rejected += 1

    def failed(self, reason: str, detail: str) -> None:
        with self._lock:
            self.failures[reason] += 1
            self.consecutive_failures += 1
            self.last_error = f"{reason}: {detail}"

    def cameras_filled(self, names: tuple[str, ...]) -> None:
        """A planned frame with these cameras filled black (``missing_camera_policy: fill_black``)."""
        with self._lock:
            self.filled.update(names)
            self.filling = tuple(names)

    def degraded_frame(self, reason: str) -> None:
        with self._lock:
            self.degraded[reason] += 1

    def unexpected(self, place: str, error: BaseException) -> bool:
        """Count an exception that escaped a callback, timer or the worker; True the first
        time this (place, exception type) is seen (it is logged then)."""
        key = f"{place}: {type(error).__name__}"
        with self._lock:
            self.exceptions[key] += 1
            self.last_exception = f"{key}: {' '.join(str(error).split())}"[:MAX_MESSAGE_CHARS]
            return self.exceptions[key] == 1

    def succeeded(self, processing_ms: float, timing: FrameTiming, budget_ms: float) -> None:
        with self._lock:
            self.planned += 1
            self.consecutive_failures = 0
            self.latencies_ms.append(processing_ms)
            self.last_latency_ms = processing_ms
            self.last_inference_ms = timing.inference_ms
            self.over_budget += processing_ms > budget_ms
            self.timings.append(timing)

    def timing_samples(self) -> list[FrameTiming]:
        with self._lock:
            return list(self.timings)

    def received_total(self) -> int:
        with self._lock:
            return sum(s.sequence.taken for s in self.inputs.values())

    def snapshot(self) -> dict:
        with self._lock:
            latencies = list(self.latencies_ms)
            return {
                "inputs": {name: self._input_snapshot(stats) for name, stats in self.inputs.items()},
                "superseded": self.superseded,
                "never_taken": self.never_taken,
                "failures": dict(self.failures),
                "consecutive_failures": self.consecutive_failures,
                "planned": self.planned,
                "over_budget": self.over_budget,
                "last_ms": self.last_latency_ms,
                "p95_ms": float(np.percentile(latencies, 95)) if latencies else None,
                "last_inference_ms": self.last_inference_ms,
                "last_error": self.last_error,
                "degraded": dict(self.degraded),
                "filled": dict(self.filled),
                "filling": self.filling,
                "exceptions": dict(self.exceptions),
                "last_exception": self.last_exception,
            }

    @staticmethod
    def _input_snapshot(stats: InputStats) -> InputSnapshot:
        sequence = stats.sequence
        rate = sequence.rate()
        published = rate.published_hz is not None
        return InputSnapshot(
            sequence.taken,
            stats.rejected,
            rate.published_hz if rate.published_hz is not None else rate.taken_hz,
            stats.last_ns,
            "published" if published else "taken",
            sequence.published,
            sequence.unseen,
        )


def _kv(values: dict) -> list[KeyValue]:
    return [KeyValue(key=k, value=str(v)) for k, v in values.items()]


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


class ClockWatch:
    """Notices a node clock (``/clock`` under ``use_sim_time``) that stopped while messages
    keep arriving. Fed by the diagnostics timer, which runs on the steady clock."""

    def __init__(self, periods: int = 2) -> None:
        self.periods = periods
        self._clock_ns: int | None = None
        self._received = -1
        self._still = 0  # timer ticks in a row with messages in and the clock standing

    def update(self, clock_ns: int, received_total: int) -> int:
        """Ticks in a row the clock has stood still while messages arrived (0: it moves)."""
        standing = clock_ns == self._clock_ns
        arriving = received_total > self._received >= 0
        self._still = self._still + 1 if (standing and arriving) else 0
        self._clock_ns, self._received = clock_ns, received_total
        return self._still

    def stopped(self, clock_ns: int, received_total: int) -> bool:
        return self.update(clock_ns, received_total) >= self.periods


@dataclass(frozen=True)
class DiagnosticsContext:
    node_name: str
    hardware_id: str
    budget_ms: float  # resolved at configure when the parameter is 0 (auto)
    max_consecutive_failures: int
    budget_auto: bool = False


def build_diagnostics(
    context: DiagnosticsContext,
    lifecycle_state: str,
    info: PlannerInfo | None,
    model_error: str,
    snapshot: dict,
    queue: dict,
    command_input: str,
    command: CommandState,
    now_ns: int,
    stamp,
    clock_stopped: bool = False,
    calibrations: RigCalibrations | None = None,
    configured_s: float = 0.0,
) -> DiagnosticArray:
    """Five statuses: model, inputs, processing, command, cameras. Outside the active state the
    node does not plan by design, so silent inputs and idle processing are no fault then."""
    name = context.node_name
    active = lifecycle_state == "active"

    def status(suffix: str, level: int, message: str, values: dict) -> DiagnosticStatus:
        return DiagnosticStatus(
            level=level, name=f"{name}: {suffix}", message=message, hardware_id=context.hardware_id, values=_kv(values)
        )

    if info is None:
        model = (
            status("model", ERROR, f"configure failed: {model_error}", {"lifecycle_state": lifecycle_state})
            if model_error
            else status("model", OK, f"no model loaded ({lifecycle_state})", {"lifecycle_state": lifecycle_state})
        )
    else:
        model = status(
            "model",
            OK,
            "untrained synthetic weights loaded" if info.untrained else "model loaded",
            {
                "weights": info.weights,
                "sha256": ",".join(info.weights_sha256),
                "device": info.device,
                "precision": info.precision,
                "runtime": info.runtime,
                "ensemble_size": info.ensemble_size,
                "untrained": info.untrained,
                "token_dim": info.config.token_dim,
                "lifecycle_state": lifecycle_state,
            },
        )

    input_values, stale = {}, []
    for input_name, figures in snapshot["inputs"].items():
        last_ns = figures.last_ns
        age = None if last_ns is None else (now_ns - last_ns) / 1e9
        input_values[f"{input_name} rate_hz"] = f"{figures.rate_hz:.2f}"
        input_values[f"{input_name} rate_source"] = figures.rate_source
        input_values[f"{input_name} age_s"] = "never received" if age is None else f"{age:.2f}"
        input_values[f"{input_name} taken"] = figures.taken
        input_values[f"{input_name} not_taken"] = figures.not_taken
        input_values[f"{input_name} rejected"] = figures.rejected
        # The command (route) and CameraInfo are held until replaced, so their age is no fault
        # (the command and the cameras have their own status).
        held = input_name in ("command", "route") or input_name.endswith("_camera_info")
        if active and not held and (age is None or age > INPUT_STALE_S):
            stale.append(input_name)
    message = f"no recent messages on: {', '.join(stale)}" if stale else "all inputs live"
    if clock_stopped:
        message = "the node clock (/clock with use_sim_time) has not advanced while messages arrive" + (
            f"; {message}" if stale else ""
        )
    input_values["clock_stopped"] = clock_stopped
    inputs = status("inputs", WARN if stale or clock_stopped else OK, message, input_values)

    failures = snapshot["failures"]
    level, message = OK, "planning"
    if snapshot["last_ms"] is not None and snapshot["last_ms"] > context.budget_ms:
        level, message = WARN, f"last frame took {snapshot['last_ms']:.0f} ms > budget {context.budget_ms:.0f} ms"
    if snapshot["consecutive_failures"]:
        level = max(level, WARN)
        message = f"{snapshot['consecutive_failures']} failed frames in a row; last: {snapshot['last_error']}"
    if snapshot["consecutive_failures"] >= context.max_consecutive_failures:
        level = ERROR
    if snapshot["planned"] == 0 and not failures:
        message = "waiting for synchronized frames"
    if not active:
        level, message = OK, f"{lifecycle_state}: not planning"
    exceptions = snapshot["exceptions"]
    if exceptions:  # a bug in lead_ros: reported in every state until the node restarts
        level = ERROR
        message = f"{sum(exceptions.values())} unexpected exception(s); last: {snapshot['last_exception']}"
    processing = status(
        "processing",
        level,
        message,
        {
            "planned": snapshot["planned"],
            "superseded_frames": snapshot["superseded"],
            "superseded_never_taken": snapshot["never_taken"],
            "queued_frames": queue["put"],
            "sync_and_input_failures": sum(failures.values()),
            **{f"failed {reason}": n for reason, n in sorted(failures.items())},
            **{f"degraded {reason}": n for reason, n in sorted(snapshot["degraded"].items())},
            "unexpected_exceptions": sum(exceptions.values()),
            **{f"exception {key}": n for key, n in sorted(exceptions.items())},
            "last_latency_ms": _ms(snapshot["last_ms"]),
            "p95_latency_ms": _ms(snapshot["p95_ms"]),
            "last_inference_ms": _ms(snapshot["last_inference_ms"]),
            "over_budget_frames": snapshot["over_budget"],
            "budget_ms": context.budget_ms,
            "budget_source": "auto (per device)" if context.budget_auto else "processing_budget_ms",
            "lifecycle_state": lifecycle_state,
        },
    )
    command_name = command.command.name.lower()
    lateral = "n/a" if command.lateral_m is None else f"{command.lateral_m:.2f}"
    command_status = status(
        "command",
        OK if command.source == "received" else WARN,
        f"{command_name} ({command.source})" + (f", route lateral {lateral} m" if command_input == "route" else ""),
        {"command": command_name, "source": command.source, "command_input": command_input, "route_lateral_m": lateral},
    )
    filling = snapshot["filling"] if active else ()
    level, message, values = cameras_report(calibrations, snapshot["filled"], filling, configured_s)
    cameras = status("cameras", level, message, values)
    return DiagnosticArray(header=Header(stamp=stamp), status=[model, inputs, processing, command_status, cameras])


def cameras_report(
    calibrations: RigCalibrations | None, filled: dict[str, int], filling: tuple[str, ...], configured_s: float = 0.0
) -> tuple[int, str, dict]:
    """The cameras status: with a rig, the CameraInfo still awaited (WARN, ERROR naming the
    camera after ``CAMERA_INFO_WAIT_S`` since configure) and each camera's coverage (WARN below
    ``COVERAGE_WARN``, ERROR below ``COVERAGE_ERROR``); the cameras filled black, WARN while it
    lasts (the last planned frame had them filled), with a counter per camera."""
    level, problems = OK, []
    values: dict = {"camera_rig": calibrations.rig.source if calibrations else "none (taken as nuPlan's cameras)"}
    if calibrations is not None:
        values["virtual_distortion"] = calibrations.virtual_distortion
        values["calibration_rebuilds"] = calibrations.rebuilds
        if calibrations.missing:
            late = configured_s > CAMERA_INFO_WAIT_S
            level = ERROR if late else WARN
            waited = f" after {configured_s:.0f} s" if late else ""
            topics = ", ".join(f"~/input/cameras/{name}/camera_info" for name in calibrations.missing)
            problems.append(f"no CameraInfo{waited} on {topics}: nothing is planned")
        reprojection = calibrations.reprojection
        for name, coverage in (reprojection.coverage if reprojection else {}).items():
            values[f"{name} coverage"] = f"{100 * coverage:.1f}%"
            if coverage < COVERAGE_WARN:
                level = max(level, ERROR if coverage < COVERAGE_ERROR else WARN)
                problems.append(f"{name} covers {100 * coverage:.0f}% of its nuPlan view")
    for name, count in sorted(filled.items()):
        values[f"{name} filled_black"] = count
    if filling:
        level = max(level, WARN)
        problems.insert(0, f"degraded: {', '.join(filling)} missing, filled black")
    return level, "; ".join(problems) or "cameras ok", values
