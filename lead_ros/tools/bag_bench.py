"""``lead-ros bench-bag``: offline evaluation throughput against the bare ``Planner`` on the
same frames, and peak RSS against bag length (each evaluation in its own process)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

from lead_ros.bag.sample_bag import CAMERA_RATE_HZ, JPEG_QUALITY, draw_camera, write_sample_bag
from lead_ros.camera_layout import CAMERA_NAMES
from lead_ros.observation import Command, Observation
from lead_ros.planner import Planner

PARAMS = Path(__file__).resolve().parents[2] / "config" / "sample.yaml"


def _evaluate(bag: Path, out: Path, weights: str, device: str) -> dict:
    command = [
        sys.executable,
        "-m",
        "lead_ros.tools.cli",
        "evaluate-bag",
        str(bag),
        "--weights",
        weights,
        "--out",
        str(out),
        "--device",
        device,
        "--params-file",
        str(PARAMS),
    ]
    subprocess.run(command, check=True, capture_output=True)
    return json.loads((out / "summary.json").read_text())


def bare_planner_fps(planner: Planner, frames: int) -> float:
    """The planner alone on the sample's frames, decoded up front (what a bag adds is the rest)."""
    observations = []
    for i in range(frames):
        t = i / CAMERA_RATE_HZ
        cameras = []
        for k in range(len(CAMERA_NAMES)):
            _, jpeg = cv2.imencode(".jpg", draw_camera(k, t)[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            cameras.append(cv2.imdecode(jpeg, cv2.IMREAD_COLOR))
        observations.append(Observation(6.0, 1.0, Command.STRAIGHT, cameras=tuple(cameras), encoding="bgr8"))
    start = time.perf_counter()
    for observation in observations:
        planner.plan(observation)
    return frames / (time.perf_counter() - start)


def run(weights: str, device: str, durations: list[float]) -> dict:
    results = {"runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        for duration in durations:
            bag = write_sample_bag(Path(tmp) / f"bag_{duration:g}s", duration)
            summary = _evaluate(bag, Path(tmp) / f"out_{duration:g}s", weights, device)
            results["runs"].append(
                {
                    "duration_s": duration,
                    "frames": summary["planned"],
                    "eval_fps": summary["frames_per_second"],
                    "peak_rss_mib": round(summary["peak_rss_mib"], 1),
                }
            )
    planner = Planner(weights, device)
    frames = results["runs"][0]["frames"]
    results["bare_planner_fps"] = bare_planner_fps(planner, frames)
    results["throughput_ratio"] = results["runs"][0]["eval_fps"] / results["bare_planner_fps"]
    first, last = results["runs"][0], results["runs"][-1]
    results["peak_rss_growth"] = last["peak_rss_mib"] / first["peak_rss_mib"] - 1.0
    results["bare_planner_fps"] = round(results["bare_planner_fps"], 3)
    return results


def main(weights: str, device: str, durations: list[float]) -> int:
    print(json.dumps(run(weights, device, durations), indent=2))
    return 0
