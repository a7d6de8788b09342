"""``lead-ros bench-node``: the node in-process under a camera stream (a benchmark, never a
timed test).

A publisher (by default in a separate process, as on a robot) sends four 1080x1920 rgb8
cameras at each requested rate plus 50 Hz odometry; the figures are the node's own per-frame
timings: pipeline latency (anchor stamp -> path published), queue wait (sync complete ->
worker pickup), node overhead (pickup -> publish minus inference: conversion, preprocessing,
path building), inference, the CPU time of the inference worker and its torch threads per
planned frame, drop accounting, and RSS after warm-up vs at the end of the run.
"""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from dataclasses import asdict, dataclass

import numpy as np
import psutil
import rclpy
from nav_msgs.msg import Odometry
from rclpy.parameter import Parameter
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


def _stats(values: list[float]) -> dict:
    if not values:
        return {}
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {"p50": round(float(p50), 2), "p90": round(float(p90), 2), "p99": round(float(p99), 2), "n": len(values)}


@dataclass
class RateReport:
    rate_hz: float
    duration_s: float
    frames_published: int
    frames_in: int  # synchronized frames offered to the worker
    processed: int
    dropped: int
    sync_failures: dict
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
    publisher_cores: float | None
    publisher: str  # "process" or "inline"
    rss_after_warmup_mib: float
    rss_end_mib: float
    rss_timeline_mib: list  # every RSS_SAMPLE_S after warm-up


def _publish_stream(driver, stop: threading.Event, rate_hz: float, counter: list[int]) -> None:
    cameras = {n: array_to_image(img, 0, f"cam_{n}") for n, img in zip(CAMERA_NAMES, reference_cameras(), strict=True)}
    topics = default_topics()
    publishers = {n: driver.create_publisher(type(m), topics[n], 5) for n, m in cameras.items()}
    odometry = driver.create_publisher(Odometry, topics["odometry"], 50)
    driver.create_publisher(UInt8, topics["command"], qos_profile(LATCHED)).publish(UInt8(data=1))
    period, odom_period = 1.0 / rate_hz, 1.0 / ODOMETRY_RATE_HZ
    next_frame = next_odom = time.monotonic()
    while not stop.is_set():
        now = time.monotonic()
        if now >= next_odom:
            msg = Odometry()
            msg.header.stamp = driver.get_clock().now().to_msg()
            msg.twist.twist.linear.x = 8.0
            odometry.publish(msg)
            next_odom += odom_period
        if now >= next_frame:
            stamp = ns_to_stamp(driver.get_clock().now().nanoseconds)
            for name in (*SIDE_CAMERAS, ANCHOR_CAMERA):  # the anchor last: a frame completes
                cameras[name].header.stamp = stamp
                publishers[name].publish(cameras[name])
            counter[0] += 1
            next_frame += period
        time.sleep(max(0.0, min(next_odom, next_frame) - time.monotonic()))


def _publisher_process(rate_hz: float, stop, published) -> None:
    """The camera/odometry stream in a process of its own (spawned; same DDS environment)."""
    context = rclpy.Context()
    rclpy.init(context=context)
    driver = rclpy.create_node("bench_publisher", context=context)
    counter = [0]
    try:
        _publish_stream(driver, stop, rate_hz, counter)
    finally:
        published.value = counter[0]
        driver.destroy_node()
        context.try_shutdown()


def _worker_cpu_s() -> float:
    """CPU seconds of the threads named like the inference worker (the torch/OpenMP threads
    it starts inherit its name)."""
    total = 0.0
    for thread in psutil.Process().threads():
        try:
            with open(f"/proc/self/task/{thread.id}/comm") as comm:
                if comm.read().strip() == WORKER_THREAD_NAME:
                    total += thread.user_time + thread.system_time
        except OSError:  # the thread ended meanwhile
            continue
    return total


def _cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def bench_rate(
    context, planner: Planner, rate_hz: float, duration_s: float, separate_publisher: bool = True
) -> RateReport:
    process = psutil.Process()
    # Reliable cameras: best effort (the default, sensor_data) loses most raw 1080p images in
    # transport here (a plain subscriber received 24-64 of 96 per camera), which left the
    # node almost nothing to plan; reliable delivers every one the node can take.
    reliable = [Parameter("camera_qos", value="reliable")]
    node = LeadPlannerNode(planner=planner, context=context, parameter_overrides=reliable)
    node.bring_up()
    driver = rclpy.create_node("bench_driver", context=context)
    # The shipped process spins the node with a SingleThreadedExecutor; so does the benchmark
    # (rclpy's MultiThreadedExecutor busy-loops while a mutually exclusive group is busy).
    spin = BackgroundSpin(node, driver)
    if separate_publisher:
        spawn = multiprocessing.get_context("spawn")
        stop, published = spawn.Event(), spawn.Value("i", 0)
        publisher = spawn.Process(target=_publisher_process, args=(rate_hz, stop, published), daemon=True)
    else:
        stop, counter = threading.Event(), [0]
        publisher = threading.Thread(target=_publish_stream, args=(driver, stop, rate_hz, counter), daemon=True)
    quiet = run_bench(planner, iters=QUIET_RUNS, heights=(MODEL_HEIGHT,), warmup=1)
    quiet_ms, quiet_cpu_s = (
        quiet.inference_by_height[MODEL_HEIGHT].p50_ms,
        quiet.inference_cpu_s_by_height[MODEL_HEIGHT],
    )
    publisher.start()
    time.sleep(min(WARMUP_S, duration_s / 2))
    rss_warm = process.memory_info().rss / 2**20
    publisher_process = psutil.Process(publisher.pid) if separate_publisher else None
    window_start = time.monotonic()
    cpu_warm, planned_warm = _worker_cpu_s(), node.stats.snapshot()["planned"]
    process_warm = _cpu_s(process)
    publisher_warm = _cpu_s(publisher_process) if publisher_process else 0.0
    timeline, end = [], time.monotonic() + max(0.0, duration_s - WARMUP_S)
    while time.monotonic() < end:
        time.sleep(min(RSS_SAMPLE_S, max(0.0, end - time.monotonic())))
        timeline.append(round(process.memory_info().rss / 2**20, 1))
    cpu_end, planned_end = _worker_cpu_s(), node.stats.snapshot()["planned"]
    process_end = _cpu_s(process)
    publisher_end = _cpu_s(publisher_process) if publisher_process else 0.0
    window = max(1e-9, time.monotonic() - window_start)
    stop.set()
    publisher.join()
    time.sleep(2.0)  # let the frame in flight finish
    spin.close()
    node.close()
    rss_end = process.memory_info().rss / 2**20
    snapshot = node.stats.snapshot()
    timings = node.stats.timing_samples()
    report = RateReport(
        rate_hz=rate_hz,
        duration_s=duration_s,
        frames_published=published.value if separate_publisher else counter[0],
        frames_in=node.queue.put_count,
        processed=snapshot["planned"],
        dropped=node.queue.dropped_count,
        sync_failures=snapshot["failures"],
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
        publisher_cores=round((publisher_end - publisher_warm) / window, 3) if publisher_process else None,
        publisher="process" if separate_publisher else "inline",
        rss_after_warmup_mib=round(rss_warm, 1),
        rss_end_mib=round(rss_end, 1),
        rss_timeline_mib=timeline,
    )
    node.destroy_node()
    driver.destroy_node()
    return report


def run(
    weights: str,
    device: str,
    precision: str,
    runs: list[tuple[float, float]],
    separate_publisher: bool = True,
    runtime: str = "auto",
) -> list[dict]:
    planner = Planner(weights, device, precision, runtime=runtime)
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        return [asdict(bench_rate(context, planner, rate, duration, separate_publisher)) for rate, duration in runs]
    finally:
        context.try_shutdown()
        planner.close()


def format_reports(reports: list[dict]) -> str:
    return json.dumps(reports, indent=2)
