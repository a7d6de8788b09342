"""``lead-ros bench-node``: the node in-process under a camera stream (a benchmark, never a
timed test).

A publisher (by default in a separate process, as on a robot) sends four 1080x1920 cameras,
rgb8 ``Image`` or JPEG ``CompressedImage`` (``transport``), at each requested rate plus 50 Hz
odometry; the figures are the node's own per-frame timings: pipeline latency (anchor stamp
-> path published), queue wait (sync complete -> worker pickup), node overhead (pickup ->
publish minus inference: conversion, preprocessing, path building), inference, the CPU time
of the inference worker and its threads per planned frame, where every frame published went
(planned, or skipped by reason), CPU cores by thread bucket, and RSS after warm-up vs at the
end of the run.

CPU buckets (CPU-seconds per wall second over the measured window, from ``/proc`` per
thread): ``input_cores`` the thread that spins the node (every callback, and the drains that
take camera images), ``dds_cores`` Fast DDS's threads (``dds.*``), ``inference_cores`` the
worker (``lead_infer``) and the threads the planner started when it was made (ONNX Runtime's
pool), ``other_cores`` the rest of the node's process, ``publisher_cores`` the publisher.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import threading
import time
from dataclasses import asdict, dataclass

import cv2
import numpy as np
import psutil
import rclpy
from nav_msgs.msg import Odometry
from rclpy.parameter import Parameter
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import UInt8

from lead_ros.camera_layout import ANCHOR_CAMERA, CAMERA_NAMES, SIDE_CAMERAS
from lead_ros.planner import Planner
from lead_ros.ros.background_spin import BackgroundSpin
from lead_ros.ros.encoding import array_to_image, ns_to_stamp
from lead_ros.ros.interfaces import qos_profile
from lead_ros.ros.node import WORKER_THREAD_NAME, LeadPlannerNode
from lead_ros.ros.topics import LATCHED, default_topics
from lead_ros.tools.bench import run_bench
from lead_ros.tools.synthetic_cameras import reference_cameras

ODOMETRY_RATE_HZ = 50.0
MODEL_HEIGHT = 270  # four 16:9 cameras stitch and resize to 270 x 1920
QUIET_RUNS = 10
WARMUP_S = 10.0
RSS_SAMPLE_S = 10.0
MATCH_TIMEOUT_S = 30.0
SETTLE_S = 4.0  # after the stream: the frame in flight and the last pending anchor are decided
TRANSPORTS = {"raw": "raw", "jpeg": "compressed"}  # bench name -> the node's image_transport


def _stats(values: list[float]) -> dict:
    if not values:
        return {}
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {"p50": round(float(p50), 2), "p90": round(float(p90), 2), "p99": round(float(p99), 2), "n": len(values)}


@dataclass
class RateReport:
    rate_hz: float
    duration_s: float
    transport: str  # raw (rgb8 Image) or jpeg (CompressedImage)
    frames_published: int
    frames_in: int  # synchronized frames offered to the worker
    processed: int
    dropped: int  # frames replaced in the worker's queue (part of superseded)
    sync_failures: dict
    # Every frame published, by what became of it (whole run, after the stream settled):
    superseded: int  # a newer frame was planned instead (queue, or an image replaced in DDS)
    superseded_never_taken: int  # of those: the anchor image itself was never taken
    skipped: dict  # reason -> frames (superseded included)
    frames_accounted: int  # planned + skipped
    unaccounted_fraction: float  # (published - accounted) / published
    planned_vs_capacity: float  # frames planned in the window x median inference / window length
    input_cores: float
    dds_cores: float
    inference_cores: float
    other_cores: float
    pipeline_latency_ms: dict
    queue_wait_ms: dict
    node_overhead_ms: dict
    inference_ms: dict
    worker_cpu_s_per_frame: float  # CPU of the worker thread and the torch threads it started
    # Where the 2 cores went, CPU seconds per wall second over the measured window: the worker,
    # the rest of the node process (DDS reception, callbacks, sync), the publisher (process mode).
    worker_cores: float
    # The same planner timed quietly just before the stream (lead-ros bench's measurement, 270 rows):
    quiet_inference_ms: float
    quiet_cpu_s_per_inference: float
    inference_vs_quiet: float  # p50 inference in the node / quiet p50
    cpu_vs_quiet: float  # worker CPU per planned frame / quiet CPU per inference
    node_other_cores: float
    publisher_cores: float
    publisher: str  # "process" or "inline"
    rss_after_warmup_mib: float
    rss_end_mib: float
    rss_timeline_mib: list  # every RSS_SAMPLE_S after warm-up


def _camera_messages(transport: str) -> dict:
    """The reference cameras as the messages a driver sends (JPEG encoded once)."""
    messages = {}
    for name, image in zip(CAMERA_NAMES, reference_cameras(), strict=True):
        if transport == "jpeg":
            ok, data = cv2.imencode(".jpg", np.ascontiguousarray(image[..., ::-1]))
            assert ok, "JPEG encoding failed"
            messages[name] = CompressedImage(format="jpeg", data=data.tobytes())
        else:
            messages[name] = array_to_image(image, 0, f"cam_{name}")
    return messages


class _Drivers:
    """The stream's publishers of ``parts`` (camera names, "odometry"), one DDS participant.
    By default each camera and the odometry (with the command) publish from a process of
    their own, as separate drivers on a robot, on a shared schedule (frame slots on the wall
    clock, so the four cameras of a frame carry the same stamp). With all in one
    participant, odometry sent behind four 6 MB images waited for Fast DDS's repair (source
    to reception p50 0.3 s, p90 0.8 s) and so did images of the cameras sharing it; with
    several participants in one process, now and then one never matched the node's
    subscriptions in 30 s."""

    def __init__(self, transport: str, parts: tuple[str, ...]) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(f"bench_{'_'.join(parts)}", context=self.context)
        topics = default_topics()
        self.cameras = {name: m for name, m in _camera_messages(transport).items() if name in parts}
        self.camera_publishers = {
            name: self.node.create_publisher(type(message), topics[name], 5) for name, message in self.cameras.items()
        }
        self.odometry = None
        if "odometry" in parts:
            self.odometry = self.node.create_publisher(Odometry, topics["odometry"], 50)
            self.node.create_publisher(UInt8, topics["command"], qos_profile(LATCHED)).publish(UInt8(data=1))

    def close(self) -> None:
        self.node.destroy_node()
        self.context.try_shutdown()


def _publish_stream(stop, streaming, rate_hz: float, counter, transport: str, parts: tuple[str, ...]) -> None:
    """Odometry at 50 Hz and/or the four cameras at ``rate_hz`` (``parts``), once every
    subscription matched (then ``streaming`` is set; nothing published is lost to discovery:
    each frame published is accounted for); ``counter.value``: frames published."""
    drivers = _Drivers(transport, parts)
    try:
        _stream(drivers, stop, streaming, rate_hz, counter)
    finally:
        drivers.close()


def _stream(drivers: _Drivers, stop, streaming, rate_hz: float, counter) -> None:
    publishers, odometry, cameras = drivers.camera_publishers, drivers.odometry, drivers.cameras
    deadline = time.monotonic() + MATCH_TIMEOUT_S
    matched = [*publishers.values(), *([odometry] if odometry is not None else [])]

    def unmatched() -> list[str]:
        return [p.topic_name for p in matched if p.get_subscription_count() == 0]

    while unmatched():
        if time.monotonic() > deadline or stop.is_set():
            raise RuntimeError(f"bench-node: no subscription matched {', '.join(unmatched())} in {MATCH_TIMEOUT_S:g} s")
        time.sleep(0.05)
    streaming.set()
    period, odom_period = 1.0 / rate_hz, 1.0 / ODOMETRY_RATE_HZ
    # Frame slots on the wall clock: every camera's process publishes slot k at the same
    # moment with the same stamp (the node clock is the system clock here).
    next_frame = math.ceil(time.time() / period) * period
    next_odom = time.time()
    while not stop.is_set():
        now = time.time()
        if odometry is not None and now >= next_odom:
            msg = Odometry()
            msg.header.stamp = drivers.node.get_clock().now().to_msg()
            msg.twist.twist.linear.x = 8.0
            odometry.publish(msg)
            next_odom += odom_period
        if cameras and now >= next_frame:
            stamp = ns_to_stamp(round(next_frame * 1e9))
            for name in (*SIDE_CAMERAS, ANCHOR_CAMERA):  # the anchor last: a frame completes
                if name in cameras:
                    cameras[name].header.stamp = stamp
                    publishers[name].publish(cameras[name])
            counter.value += 1
            next_frame += period
        due = [t for t, on in ((next_odom, odometry is not None), (next_frame, bool(cameras))) if on]
        time.sleep(max(0.0, min(due) - time.time()))


@dataclass
class _Count:
    """What ``multiprocessing.Value`` offers, for the publisher thread."""

    value: int = 0


def _thread_ids() -> set[int]:
    return {thread.id for thread in psutil.Process().threads()}


def _buckets_cpu_s(input_threads: set[int], inference_threads: set[int]) -> dict[str, float]:
    """CPU seconds so far of this process's threads by bucket (see the module doc): the
    worker's and its children's by their OS name, Fast DDS's by theirs (``dds.*``)."""
    totals = dict.fromkeys(("input", "dds", "inference", "other"), 0.0)
    for thread in psutil.Process().threads():
        try:
            with open(f"/proc/self/task/{thread.id}/comm") as comm:
                name = comm.read().strip()
        except OSError:  # the thread ended meanwhile
            continue
        if thread.id in input_threads:
            bucket = "input"
        elif name == WORKER_THREAD_NAME or thread.id in inference_threads:
            bucket = "inference"
        elif name.startswith("dds."):
            bucket = "dds"
        else:
            bucket = "other"
        totals[bucket] += thread.user_time + thread.system_time
    return totals


def _threads_cpu_s(ids: set[int]) -> float:
    return sum(t.user_time + t.system_time for t in psutil.Process().threads() if t.id in ids)


def _cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def bench_rate(
    context,
    planner: Planner,
    rate_hz: float,
    duration_s: float,
    separate_publisher: bool = True,
    transport: str = "raw",
    inference_threads: frozenset[int] = frozenset(),
) -> RateReport:
    """One run; ``inference_threads``: the threads the planner started when it was made."""
    process = psutil.Process()
    # Reliable cameras: best effort (the default, sensor_data) loses most raw 1080p images in
    # transport here (a plain subscriber received 24-64 of 96 per camera), which left the
    # node almost nothing to plan; reliable delivers every one the node can take.
    parameters = [Parameter("camera_qos", value="reliable"), Parameter("image_transport", value=TRANSPORTS[transport])]
    node = LeadPlannerNode(planner=planner, context=context, parameter_overrides=parameters)
    node.bring_up()
    # The shipped process spins the node with a SingleThreadedExecutor; so does the benchmark
    # (rclpy's MultiThreadedExecutor busy-loops while a mutually exclusive group is busy).
    spin = BackgroundSpin(node)
    if separate_publisher:  # each camera and the odometry from a process of its own
        spawn = multiprocessing.get_context("spawn")
        stop, published = spawn.Event(), spawn.Value("i", 0)  # frames: the anchor camera's count
        streams = [
            ((name,), published if name == ANCHOR_CAMERA else spawn.Value("i", 0), spawn.Event())
            for name in (*CAMERA_NAMES, "odometry")
        ]
        publishers = [
            spawn.Process(target=_publish_stream, args=(stop, ready, rate_hz, count, transport, parts), daemon=True)
            for parts, count, ready in streams
        ]
    else:  # one thread, one participant
        stop, published, ready = threading.Event(), _Count(), threading.Event()
        streams = [((*CAMERA_NAMES, "odometry"), published, ready)]
        publishers = [
            threading.Thread(
                target=_publish_stream, args=(stop, ready, rate_hz, published, transport, streams[0][0]), daemon=True
            )
        ]
    quiet = run_bench(planner, iters=QUIET_RUNS, heights=(MODEL_HEIGHT,), warmup=1)
    quiet_ms, quiet_cpu_s = (
        quiet.inference_by_height[MODEL_HEIGHT].p50_ms,
        quiet.inference_cpu_s_by_height[MODEL_HEIGHT],
    )
    for publisher in publishers:
        publisher.start()
    for _, _, ready in streams:
        if not ready.wait(MATCH_TIMEOUT_S + 30.0):  # the drivers' participants discovered (seconds)
            raise RuntimeError("bench-node: the camera stream did not start")
    time.sleep(min(WARMUP_S, duration_s / 2))
    rss_warm = process.memory_info().rss / 2**20
    publisher_processes = [psutil.Process(p.pid) for p in publishers] if separate_publisher else []
    input_threads, inference = {spin.thread.native_id}, set(inference_threads)
    publisher_thread = set() if separate_publisher else {publishers[0].native_id}

    def publisher_cpu_s() -> float:
        if publisher_processes:
            return sum(_cpu_s(p) for p in publisher_processes)
        return _threads_cpu_s(publisher_thread)

    window_start = time.monotonic()
    buckets_warm = _buckets_cpu_s(input_threads, inference)
    cpu_warm, planned_warm = buckets_warm["inference"], node.stats.snapshot()["planned"]
    process_warm = _cpu_s(process)
    publisher_warm = publisher_cpu_s()
    timeline, end = [], time.monotonic() + max(0.0, duration_s - WARMUP_S)
    while time.monotonic() < end:
        time.sleep(min(RSS_SAMPLE_S, max(0.0, end - time.monotonic())))
        timeline.append(round(process.memory_info().rss / 2**20, 1))
    buckets_end = _buckets_cpu_s(input_threads, inference)
    cpu_end, planned_end = buckets_end["inference"], node.stats.snapshot()["planned"]
    process_end = _cpu_s(process)
    publisher_end = publisher_cpu_s()
    window = max(1e-9, time.monotonic() - window_start)
    if not separate_publisher:  # its thread is in this process's buckets: out of "other"
        buckets_warm["other"] -= publisher_warm
        buckets_end["other"] -= publisher_end
    stop.set()
    for publisher in publishers:
        publisher.join()
    time.sleep(SETTLE_S)  # the frame in flight and the last pending anchor are decided
    spin.close()
    node.close()
    rss_end = process.memory_info().rss / 2**20
    snapshot = node.stats.snapshot()
    timings = node.stats.timing_samples()
    frames_published = published.value
    skipped = {**snapshot["failures"], "superseded": snapshot["superseded"]}
    accounted = snapshot["planned"] + sum(skipped.values())
    median_inference_s = float(np.median([t.inference_ms for t in timings])) / 1e3 if timings else 0.0

    def cores(bucket: str) -> float:
        return round((buckets_end[bucket] - buckets_warm[bucket]) / window, 3)

    report = RateReport(
        rate_hz=rate_hz,
        duration_s=duration_s,
        transport=transport,
        frames_published=frames_published,
        frames_in=node.queue.put_count,
        processed=snapshot["planned"],
        dropped=node.queue.dropped_count,
        sync_failures=snapshot["failures"],
        superseded=snapshot["superseded"],
        superseded_never_taken=snapshot["never_taken"],
        skipped=skipped,
        frames_accounted=accounted,
        unaccounted_fraction=round((frames_published - accounted) / max(1, frames_published), 4),
        planned_vs_capacity=round((planned_end - planned_warm) * median_inference_s / window, 3),
        input_cores=cores("input"),
        dds_cores=cores("dds"),
        inference_cores=cores("inference"),
        other_cores=cores("other"),
        pipeline_latency_ms=_stats([t.pipeline_latency_ms for t in timings]),
        queue_wait_ms=_stats([t.queue_wait_ms for t in timings]),
        node_overhead_ms=_stats([t.node_overhead_ms for t in timings]),
        inference_ms=_stats([t.inference_ms for t in timings]),
        worker_cpu_s_per_frame=round((cpu_end - cpu_warm) / max(1, planned_end - planned_warm), 3),
        worker_cores=round((cpu_end - cpu_warm) / window, 3),
        quiet_inference_ms=round(quiet_ms, 2),
        quiet_cpu_s_per_inference=quiet_cpu_s,
        inference_vs_quiet=round(float(np.median([t.inference_ms for t in timings])) / quiet_ms, 3) if timings else 0.0,
        cpu_vs_quiet=round((cpu_end - cpu_warm) / max(1, planned_end - planned_warm) / quiet_cpu_s, 3),
        node_other_cores=round((process_end - process_warm - (cpu_end - cpu_warm)) / window, 3),
        publisher_cores=round((publisher_end - publisher_warm) / window, 3),
        publisher="process" if separate_publisher else "inline",
        rss_after_warmup_mib=round(rss_warm, 1),
        rss_end_mib=round(rss_end, 1),
        rss_timeline_mib=timeline,
    )
    node.destroy_node()
    return report


def run(
    weights: str,
    device: str,
    precision: str,
    runs: list[tuple[str, float, float]],
    separate_publisher: bool = True,
    runtime: str = "auto",
) -> list[dict]:
    """``runs``: (transport, rate Hz, seconds) each."""
    before = _thread_ids()
    planner = Planner(weights, device, precision, runtime=runtime)
    started = frozenset(_thread_ids() - before)  # the runtime's thread pool
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        return [
            asdict(bench_rate(context, planner, rate, duration, separate_publisher, transport, started))
            for transport, rate, duration in runs
        ]
    finally:
        context.try_shutdown()
        planner.close()


def format_reports(reports: list[dict]) -> str:
    return json.dumps(reports, indent=2)
