"""``lead-ros evaluate-bag``: run the planner over recorded drives without a ROS graph.

Messages stream through the same ``InputIntake`` (synchronization, command tracking) and
the same message conversion as the live node, with the bag's record time as the clock.
Outputs per bag: an MCAP bag with the planned paths (stamped like the node's), a JSONL
record per frame, a summary JSON, a contact sheet, a video and a metrics plot.

Each planned frame is measured against the logged drive (``lead_ros.bag.metrics``): its
record waits until the bag's odometry has passed the frame's last horizon (or the bag
ends), so records stay in stream order and memory stays bounded.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import sys
import time
from collections import Counter, deque
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import StoragePlugin, Writer, WriterError
from rosbags.typesys import get_typestore
from tqdm import tqdm

from lead_ros.bag.metrics import (
    NO_GROUND_TRUTH,
    LoggedFuture,
    MetricsSummary,
    format_table,
    frame_metrics,
    logged_future,
    merge_metrics,
)
from lead_ros.bag.output import BagOutputError, claim_output_dir, write_failure, write_json
from lead_ros.bag.pictures import Picture, PlanPictures, write_metrics_plot
from lead_ros.bag.reader import (
    BagInputError,
    ReadStats,
    bag_camera_settings,
    check_bag_inputs,
    check_bag_path,
    expected_classes,
    stream_messages,
    type_name,
)
from lead_ros.cameras.calibrations import RigCalibrations
from lead_ros.inputs.ego_state import PoseTrack
from lead_ros.inputs.sync import SyncFailure
from lead_ros.node_config import NodeConfig
from lead_ros.observation import WAYPOINT_TIMES_S
from lead_ros.planner import Planner
from lead_ros.ros.decoding import odometry_pose, stamp_to_ns
from lead_ros.ros.distro import RUNNING
from lead_ros.ros.intake import InputIntake, InputRejected, ReadyFrame
from lead_ros.ros.outputs import BEV_PREFIX, OBJECTS, FrameNotPlanned, dispatch, plan_frame, plan_messages
from lead_ros.ros.topics import BY_KEY

# The node's output topics under its default name: where the output bag holds the plans.
OUTPUT_PATH_TOPIC = BY_KEY["path"].qualified()
OUTPUT_OBJECTS_TOPIC = BY_KEY[OBJECTS].qualified()
log = logging.getLogger("lead_ros.evaluate")
PICTURE_FPS = 10.0
FUTURE_NS = round(WAYPOINT_TIMES_S[-1] * 1e9)  # the last horizon a frame's metrics need


@dataclass(frozen=True)
class EvaluationOptions:
    config: NodeConfig
    topics: dict[str, str]
    reorder_window_ns: int = 1_000_000_000
    write_inputs: bool = False
    pictures: bool = True
    progress: bool = True
    # Recorded stamps may legitimately differ from record time (simulator bags), so the
    # node's max_input_age_s applies offline only when asked for (--max-input-age-s).
    max_input_age_s: float = 0.0
    # Settings taken from each bag's camera connections (camera_mode, image_transport):
    # those the user did not state.
    follow_bag: tuple[str, ...] = ()
    # Run perception: BEV grids and boxes into the output bag (the node's topics and
    # messages), boxes and class pixel counts into frames.jsonl, the BEV map in the pictures.
    perception: bool = False


FOLLOWABLE = ("camera_mode", "image_transport")


def options_for_bag(bag: Path, options: EvaluationOptions) -> EvaluationOptions:
    """The options with ``follow_bag`` settings taken from the bag's camera connections;
    one info line says what was taken."""
    if not options.follow_bag:
        return options
    told = {k: v for k, v in bag_camera_settings(bag, options.topics).items() if k in options.follow_bag}
    if not told:
        return options
    log.info(
        "%s: %s (from the bag's camera topics; state them with --camera-mode/--image-transport or a "
        "params file to override)",
        bag,
        ", ".join(f"{k} {v}" for k, v in told.items()),
    )
    return replace(options, config=replace(options.config, **told))


def _percentiles(values: list[float]) -> dict | None:
    if not values:
        return None
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "mean": float(np.mean(values))}


class _Evaluation:
    """State of one bag's evaluation: outputs, counters, and the event handling."""

    def __init__(self, bag: Path, out_dir: Path, planner: Planner, options: EvaluationOptions) -> None:
        self.bag, self.out_dir, self.planner, self.options = bag, out_dir, planner, options
        self.intake = InputIntake(replace(options.config, max_input_age_s=options.max_input_age_s))
        self.intake.calibrations = RigCalibrations.from_config(options.config)
        self.skipped: Counter = Counter()
        self.rejected: Counter = Counter()
        self.planned = 0
        self.synchronized = 0
        self.timings: dict[str, list[float]] = {"preprocess_ms": [], "inference_ms": [], "total_ms": []}
        self.bag_path = out_dir / "output_bag"
        self.writer_open = False
        self.writer = Writer(self.bag_path, version=RUNNING.bag_version, storage_plugin=StoragePlugin.MCAP)
        self.records_path = out_dir / "frames.jsonl"
        self.records = self.records_path.open("wb", buffering=0)
        self.records_written = self._records_bytes = 0
        self.pictures = PlanPictures(out_dir, PICTURE_FPS, planner.info.untrained) if options.pictures else None
        # The logged drive: every odometry pose, kept long enough for the frames still waiting.
        self.tolerance_ns = self.intake.policy.tolerance_ns
        self.truth = PoseTrack("odometry pose", FUTURE_NS + options.reorder_window_ns + 5_000_000_000)
        self.metrics = MetricsSummary()
        self.series: list[tuple[int, float, float, str]] = []  # stamp, l2 at 2 s and 4 s, command
        self._waiting: deque[tuple[dict, Picture | None]] = deque()  # records in stream order

    def open(self) -> None:
        self.writer.open()
        self.writer_open = True
        typestore = get_typestore(RUNNING.typestore)
        # The outputs written, by topic key: the plan, and with --perception what the model perceived.
        self.outputs = ["path"]
        if self.options.perception:
            self.outputs += [f"{BEV_PREFIX}{name}" for name in self.options.config.perception_classes] + [OBJECTS]
        self.output_connections = {
            key: self.writer.add_connection(BY_KEY[key].qualified(), BY_KEY[key].types[0], typestore=typestore)
            for key in self.outputs
        }
        self.input_connections = {}
        if self.options.write_inputs:
            for key, cls in expected_classes(self.options.config).items():
                topic = self.options.topics[key]
                self.input_connections[topic] = self.writer.add_connection(topic, type_name(cls), typestore=typestore)

    def handle(self, events, log_ns: int) -> None:
        self._log_ns = log_ns
        dispatch(events, self)

    def frame_failed(self, failure: SyncFailure) -> None:
        self._skip(failure.stamp_ns, failure.reason, failure.detail)

    def input_rejected(self, rejected: InputRejected) -> None:
        self.rejected[f"{rejected.input}: {rejected.reason}"] += 1
        if rejected.fails_frame:
            self._skip(rejected.stamp_ns, rejected.reason, rejected.detail)

    def frame_ready(self, ready: ReadyFrame) -> None:
        self._plan(ready, self._log_ns)

    def add_logged_pose(self, msg) -> None:
        """An odometry message of the bag, as ground truth; releases the records it decides."""
        stamp_ns = stamp_to_ns(msg.header.stamp)
        if stamp_ns > 0:
            pose = odometry_pose(msg)
            self.truth.add_pose(stamp_ns, pose.x, pose.y, pose.z, pose.yaw, msg.header.frame_id)
            self._release()

    def _skip(self, stamp_ns: int | None, reason: str, detail: str) -> None:
        self.skipped[reason] += 1
        self._record({"stamp_ns": stamp_ns, "status": "skipped", "reason": reason, "detail": detail})

    def _plan(self, ready: ReadyFrame, log_ns: int) -> None:
        self.synchronized += 1
        frame = ready.frame
        start = time.perf_counter()
        result = plan_frame(self.planner, ready, self.options.config, self.intake.reprojection, self.options.perception)
        if isinstance(result, FrameNotPlanned):
            self._skip(frame.stamp_ns, result.reason, result.detail)
            return
        plan, filled = result.plan, result.filled
        total_ms = 1e3 * (time.perf_counter() - start)
        out = plan_messages(plan, ready, self.options.config, self.outputs)
        for key in self.outputs:  # in this order, as evaluate-bag always wrote them
            if key in out.messages:
                message = serialize_message(out.messages[key])
                self._write_bag(self.writer.write, self.output_connections[key], log_ns, message)
        boxes = out.boxes
        self.planned += 1
        self.timings["preprocess_ms"].append(plan.timings.preprocess_ms)
        self.timings["inference_ms"].append(plan.timings.inference_ms)
        self.timings["total_ms"].append(total_ms)
        record = {
            "stamp_ns": frame.stamp_ns,
            "status": "planned",
            "command": ready.command.name.lower(),
            "command_source": ready.command_source,
            "command_input": ready.command_input,
            "route_lateral_m": ready.route_lateral_m,
            "speed_mps": frame.speed_mps,
            "acceleration_mps2": frame.acceleration_mps2,
            "acceleration_estimated": frame.acceleration_estimated,
            "filled_cameras": list(filled),
            "waypoints_iso8855": plan.waypoints.tolist(),
            "headings_iso8855": plan.headings.tolist(),
            "times_s": list(plan.times_s),
            "timings_ms": {
                "preprocess": plan.timings.preprocess_ms,
                "inference": plan.timings.inference_ms,
                "total": total_ms,
            },
        }
        if plan.perception is not None:
            record["perception"] = {
                "boxes_iso8855": [b.as_dict() for b in boxes],
                "bev_class_pixels": plan.perception.class_pixel_counts(),
            }
        labels = plan.perception.bev_labels if plan.perception is not None else None
        self._record(record, Picture(plan.model_image, plan.waypoints, plan.headings, labels, boxes))

    def _record(self, record: dict, picture: Picture | None = None) -> None:
        """Queue a record; a planned frame's (with what its picture needs) waits for its ground truth."""
        self._waiting.append((record, picture))
        self._release()

    def _release(self, final: bool = False) -> None:
        """Write the waiting records whose ground truth is decided (all when ``final``)."""
        newest = self.truth.newest_ns
        while self._waiting:
            record, picture = self._waiting[0]
            if picture is not None and not final and (newest is None or newest < record["stamp_ns"] + FUTURE_NS):
                return
            self._waiting.popleft()
            if picture is not None:
                self._measure(record, picture)
            self._append_record(json.dumps(record).encode() + b"\n")

    def _append_record(self, line: bytes) -> None:
        """One whole line of ``frames.jsonl``, written through (unbuffered), so what was
        evaluated survives a failure later on; a write that fails midway is cut back, so the
        file never ends in a partial record."""
        with _writing(self.records_path):
            try:
                view = memoryview(line)
                while view:
                    view = view[self.records.write(view) :]
            except OSError:
                os.ftruncate(self.records.fileno(), self._records_bytes)
                raise
        self._records_bytes += len(line)
        self.records_written += 1

    def _measure(self, record: dict, picture: Picture) -> None:
        """Add the frame's logged future and errors to its record, the summary and the pictures."""
        future = logged_future(self.truth, record["stamp_ns"], self.tolerance_ns)
        caption = f"{record['command']}  v={record['speed_mps']:.1f} m/s  t={record['stamp_ns'] / 1e9:.2f} s"
        if isinstance(future, LoggedFuture):
            measured = frame_metrics(picture.waypoints, picture.headings, future)
            record.update(measured.record(future))
            self.metrics.add(record["command"], measured)
            self.series.append((record["stamp_ns"], float(measured.l2_m[3]), measured.fde, record["command"]))
            caption += f"  ADE {measured.ade:.2f} m  FDE {measured.fde:.2f} m"
        else:
            record[NO_GROUND_TRUTH] = future
            self.metrics.no_ground_truth += 1
        if self.pictures is not None:
            self.pictures.add(picture, caption, future.waypoints if isinstance(future, LoggedFuture) else None)

    def write_input(self, topic: str, log_ns: int, raw: bytes) -> None:
        connection = self.input_connections.get(topic)
        if connection is not None:
            self._write_bag(self.writer.write, connection, log_ns, raw)

    def _write_bag(self, operation, *args) -> None:
        with _writing(self.bag_path):
            operation(*args)

    def close(self) -> tuple[list[Path], BaseException | None]:
        """Finish every output as far as possible: the files written and the first write
        failure (None). Never raises, so a failure that ended the evaluation is not replaced
        by the next one while closing (a full disk fails every later write too)."""
        first: BaseException | None = None

        def attempt(step):
            nonlocal first
            try:
                return step()
            except (OSError, WriterError) as error:
                first = first or error
                return None

        attempt(lambda: self._release(final=True))
        attempt(self.records.close)
        if self.writer_open:  # interrupted or failed before it opened: nothing to finish
            attempt(lambda: self._write_bag(self.writer.close))
        written = (attempt(self.pictures.close) or []) if self.pictures is not None else []
        if self.pictures is not None and self.series:
            start = self.series[0][0]
            plot = attempt(
                lambda: write_metrics_plot(
                    self.out_dir / "metrics.png",
                    [(t - start) / 1e9 for t, *_ in self.series],
                    [s[1] for s in self.series],
                    [s[2] for s in self.series],
                    [s[3] for s in self.series],
                    self.planner.info.untrained,
                )
            )
            written += [plot] if plot is not None else []
        return written, first


@contextmanager
def _writing(path: Path):
    """Name ``path`` in an OSError raised without a file name (a buffered file's write or
    flush, a bag writer's), so the user learns which output failed."""
    try:
        yield
    except OSError as error:
        if error.filename is None:
            raise OSError(error.errno, error.strerror or str(error), str(path)) from error
        raise


class BagReadError(Exception):
    """The bag's storage failed while it was being read (corrupt sqlite3 pages, a damaged
    MCAP chunk, an I/O error); the message is one line."""


def _guarded_read(messages):
    """``messages``, with any failure of the reader raised as ``BagReadError``."""
    iterator = iter(messages)
    while True:
        try:
            message = next(iterator)
        except StopIteration:
            return
        except BagInputError:  # our own finding about the bag (exit 2), not a storage failure
            raise
        except Exception as error:  # apsw.CorruptError, rosbags' ReaderError, OSError, ...
            raise BagReadError(f"{type(error).__name__}: {' '.join(str(error).split())}") from error
        yield message


def evaluate_bag(bag: Path, out_dir: Path, planner: Planner, options: EvaluationOptions) -> dict:
    """Evaluate one bag into ``out_dir`` (which must exist and be empty); returns the summary."""
    classes = expected_classes(options.config)
    stats = ReadStats()
    evaluation = _Evaluation(bag, out_dir, planner, options)
    anchor_topic = options.topics[evaluation.intake.policy.anchor]
    frames_read = messages_done = 0
    last_log_ns = 0
    started = time.perf_counter()
    failure: dict | None = None  # what ended the evaluation early
    try:
        # Replaced at the end: until then (a kill, a full disk) the output says it is incomplete.
        write_json(
            out_dir / "summary.json",
            {"bag": str(bag), "incomplete": True, "error": "the evaluation did not finish (running, killed or failed)"},
        )
        evaluation.open()
        messages = _guarded_read(stream_messages(bag, options.topics, classes, options.reorder_window_ns, stats))
        progress = tqdm(messages, desc=bag.name, unit="msg", disable=not (options.progress and sys.stderr.isatty()))
        intake = evaluation.intake
        for message in progress:
            last_log_ns = message.log_ns
            evaluation.write_input(message.topic, message.log_ns, message.raw)
            if message.key == "odometry":
                evaluation.add_logged_pose(message.msg)
            frames_read += message.topic == anchor_topic
            events = intake.message(message.key, message.msg, message.log_ns)
            evaluation.handle(events, message.log_ns)
            messages_done += 1
        evaluation.handle(intake.flush(), last_log_ns)
    except BagReadError as error:
        failure = {"stage": "read", "error": f"reading {bag} failed after {messages_done} messages: {error}"}
    except (OSError, WriterError) as error:
        failure = {"stage": "write", "error": write_failure(error, out_dir, "evaluation output")}
    finally:
        pictures, close_error = evaluation.close()
    if failure is None and close_error is not None:
        failure = {"stage": "write", "error": write_failure(close_error, out_dir, "evaluation output")}
    elapsed = time.perf_counter() - started
    info = planner.info
    summary = {
        "bag": str(bag),
        "input": {"bag": str(bag.resolve()), "topics": options.topics, "messages_sha256": stats.fingerprint()},
        "frames_read": frames_read,
        "synchronized": evaluation.synchronized,
        "planned": evaluation.planned,
        "skipped": sum(evaluation.skipped.values()),
        "skipped_by_reason": dict(evaluation.skipped),
        "rejected_inputs": dict(evaluation.rejected),
        "decode_failures": dict(stats.decode_failures),
        "messages_read": dict(stats.messages_read),
        "missing_topics": stats.missing_topics,
        "skipped_connections": stats.skipped_connections,
        "latency_ms": {k: _percentiles(v) for k, v in evaluation.timings.items()},
        "wall_time_s": elapsed,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "frames_per_second": evaluation.planned / elapsed if elapsed > 0 else None,
        "metrics": evaluation.metrics.summary(),
        "weights": info.weights,
        "weights_sha256": list(info.weights_sha256),
        "device": info.device,
        "precision": info.precision,
        "runtime": info.runtime,
        "untrained": info.untrained,
        "outputs": {
            "bag": str(evaluation.bag_path),
            "frames": str(out_dir / "frames.jsonl"),
            "pictures": [str(p) for p in pictures],
        },
    }
    if failure is not None:
        position = {
            "messages_evaluated": messages_done,
            "last_record_time_ns": last_log_ns,
            "frames_written": evaluation.records_written,
        }
        summary.update(incomplete=True, error=failure["error"], position=position)
    try:
        write_json(out_dir / "summary.json", summary)
    except OSError as error:
        if failure is None:
            raise BagOutputError(write_failure(error, out_dir, "evaluation output")) from error
        # The output is already incomplete and says so in the error; a full disk may refuse this too.
    if failure is not None and failure["stage"] == "write":
        raise BagOutputError(failure["error"])
    if failure is not None:
        log.error(
            "%s; the %d frames evaluated so far are kept in %s, summary.json marks the bag incomplete",
            failure["error"],
            evaluation.records_written,
            out_dir,
        )
        return summary
    log.info("%s: open-loop metrics against the logged drive (m, rad)\n%s", bag, format_table(summary["metrics"]))
    return summary


@dataclass(frozen=True)
class PlannerSpec:
    """How each (worker) process builds its planner."""

    weights: str
    device: str
    precision: str
    runtime: str = "auto"

    def build(self, config: NodeConfig) -> Planner:
        return Planner.from_config(config, self.weights, self.device, self.precision, self.runtime)


def find_bags(paths: list[Path]) -> list[Path]:
    """Bags given directly, or every bag inside a directory of bags."""
    bags = []
    for path in paths:
        if path.is_dir() and not (path / "metadata.yaml").is_file():
            inside = sorted(
                p for p in path.iterdir() if (p / "metadata.yaml").is_file() or p.suffix in (".mcap", ".db3")
            )
            if not inside:
                check_bag_path(path)  # raises with the reason
            bags.extend(inside)
        else:
            bags.append(check_bag_path(path))
    return bags


def bag_output_dirs(bags: list[Path], out_dir: Path) -> list[Path]:
    """``out_dir/<bag name>`` per bag (numbered where two bags share a name)."""
    names = [b.name for b in bags]
    return [out_dir / (name if names.count(name) == 1 else f"{i:02d}_{name}") for i, name in enumerate(names)]


def evaluate_one(bag: Path, out_dir: Path, planner: Planner, options: EvaluationOptions) -> dict:
    """One bag of several (every engine): its summary, or ``{"bag", "error"}`` with the
    one-line error when it cannot be evaluated; the other bags go on."""
    try:
        options = options_for_bag(bag, options)
        check_bag_inputs(bag, options.topics, expected_classes(options.config))
        out_dir.mkdir(parents=True, exist_ok=True)
        return evaluate_bag(bag, out_dir, planner, options)
    except (BagInputError, BagOutputError) as error:
        return {"bag": str(bag), "error": str(error)}


def _evaluate_in_worker(bag: Path, out_dir: Path, spec: PlannerSpec, options: EvaluationOptions, threads: int) -> dict:
    torch.set_num_threads(threads)
    with spec.build(options.config) as planner:
        return evaluate_one(bag, out_dir, planner, options)


def evaluate_bags(
    paths: list[Path],
    out_dir: Path,
    spec: PlannerSpec,
    options: EvaluationOptions,
    jobs: int = 1,
    overwrite: bool = False,
) -> dict:
    """Evaluate one bag into ``out_dir``, or several into ``out_dir/<bag>/`` plus an overall
    ``summary.json`` and ``fleet_summary.json``. A bag that fails is reported; others go on.
    With ``jobs`` > 1, each process uses (cores / jobs) torch threads."""
    bags = find_bags(paths)
    with claim_output_dir(out_dir, overwrite, [*paths, *bags]):
        return _evaluate_found_bags(bags, out_dir, spec, options, jobs)


def _evaluate_found_bags(
    bags: list[Path], out_dir: Path, spec: PlannerSpec, options: EvaluationOptions, jobs: int
) -> dict:
    if len(bags) == 1:
        options = options_for_bag(bags[0], options)
        check_bag_inputs(bags[0], options.topics, expected_classes(options.config))  # before the slow model load
        with spec.build(options.config) as planner:
            return evaluate_bag(bags[0], out_dir, planner, options)
    started = time.perf_counter()
    outs = bag_output_dirs(bags, out_dir)
    if jobs > 1:
        threads = max(1, (os.cpu_count() or 1) // jobs)
        quiet = replace(options, progress=False)
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            summaries = list(
                pool.map(
                    _evaluate_in_worker, bags, outs, [spec] * len(bags), [quiet] * len(bags), [threads] * len(bags)
                )
            )
    else:
        with spec.build(options.config) as planner:
            summaries = [evaluate_one(bag, out, planner, options) for bag, out in zip(bags, outs, strict=True)]
    for summary in summaries:
        if "error" in summary and not summary.get("incomplete"):  # an incomplete bag logged its own line
            log.error("%s", summary["error"])
    done = [s for s in summaries if "error" not in s]
    overall = {
        "bags": len(bags),
        "failed_bags": [s for s in summaries if "error" in s],
        "planned": sum(s["planned"] for s in done),
        "skipped": sum(s["skipped"] for s in done),
        "frames_read": sum(s["frames_read"] for s in done),
        "per_bag": [str(o / "summary.json") for o, s in zip(outs, summaries, strict=True) if "error" not in s],
    }
    write_json(out_dir / "summary.json", overall)
    fleet = fleet_summary(summaries, time.perf_counter() - started, engine="local", workers=jobs)
    write_json(out_dir / "fleet_summary.json", fleet)
    log.info("fleet summary (%s)\n%s", out_dir / "fleet_summary.json", format_fleet_summary(fleet))
    return overall


def fleet_summary(
    summaries: list[dict], wall_time_s: float, engine: str, workers: int, per_worker_fps: dict | None = None
) -> dict:
    """What several bags add up to (``fleet_summary.json``, both engines): bags succeeded,
    failed (with their errors) and interrupted, frames by outcome, the metrics over all
    frames of all bags, frames per second."""
    done = [s for s in summaries if "error" not in s and not s.get("interrupted")]
    by_reason: Counter = Counter()
    for summary in done:
        by_reason.update(summary["skipped_by_reason"])
    planned = sum(s["planned"] for s in done)
    return {
        "engine": engine,
        "workers": workers,
        "bags": len(summaries),
        "succeeded": [s["bag"] for s in done],
        "failed": [{"bag": s["bag"], "error": s["error"]} for s in summaries if "error" in s],
        "interrupted": [s["bag"] for s in summaries if s.get("interrupted")],
        "frames": {
            "read": sum(s["frames_read"] for s in done),
            "planned": planned,
            "skipped": sum(s["skipped"] for s in done),
            "skipped_by_reason": dict(by_reason),
        },
        "metrics": merge_metrics([s["metrics"] for s in done]),
        "frames_per_second": {
            "overall": planned / wall_time_s if wall_time_s > 0 else None,
            "per_worker": per_worker_fps or {},
        },
        "wall_time_s": wall_time_s,
    }


def format_fleet_summary(fleet: dict) -> str:
    """The fleet summary as printed: bags, frames, speed, then the metrics table."""
    frames = fleet["frames"]
    lines = [
        f"engine {fleet['engine']} ({fleet['workers']} workers): {len(fleet['succeeded'])} of {fleet['bags']} bags "
        f"succeeded, {len(fleet['failed'])} failed, {len(fleet['interrupted'])} interrupted",
        *(f"  failed: {f['error']}" for f in fleet["failed"]),
        *(f"  interrupted: {bag}" for bag in fleet["interrupted"]),
        f"frames: {frames['read']} read, {frames['planned']} planned, {frames['skipped']} skipped "
        f"{frames['skipped_by_reason'] or ''}".rstrip(),
        f"speed: {fleet['frames_per_second']['overall'] or 0:.2f} frames/s overall, wall time "
        f"{fleet['wall_time_s']:.1f} s"
        + "".join(f", {k} {v:.2f} frames/s" for k, v in fleet["frames_per_second"]["per_worker"].items()),
        format_table(fleet["metrics"]),
    ]
    return "\n".join(lines)
