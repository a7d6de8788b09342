"""Compare planned paths frame by frame (by anchor stamp): two bags of paths (live vs
offline), or two ``evaluate-bag`` outputs of the same bag (``lead-ros compare-evaluations``:
two checkpoints, fp32 vs bf16, CPU vs GPU, ...)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from nav_msgs.msg import Path as PathMsg
from rclpy.serialization import deserialize_message
from rosbags.highlevel import AnyReader
from rosbags.typesys import get_typestore

from lead_ros.frames import wrap_angle
from lead_ros.ros.decoding import stamp_to_ns
from lead_ros.ros.distro import RUNNING


def read_paths(bag: Path, topic: str) -> dict[int, np.ndarray]:
    """Header stamp -> (N, 3) array of [x, y, yaw] for every Path on ``topic``."""
    paths = {}
    with AnyReader([bag], default_typestore=get_typestore(RUNNING.typestore)) as reader:
        connections = [c for c in reader.connections if c.topic == topic]
        for _, _, raw in reader.messages(connections=connections):
            msg = deserialize_message(bytes(raw), PathMsg)
            poses = [
                (p.pose.position.x, p.pose.position.y, 2 * math.atan2(p.pose.orientation.z, p.pose.orientation.w))
                for p in msg.poses
            ]
            paths[stamp_to_ns(msg.header.stamp)] = np.array(poses)
    return paths


@dataclass(frozen=True)
class PathComparison:
    common: int
    only_first: list[int]
    only_second: list[int]
    max_abs_position_m: float  # largest waypoint distance over all common frames
    max_abs_heading_rad: float
    per_frame: dict[int, tuple[float, float]] = field(default_factory=dict)  # stamp -> (m, rad)

    def matches(self, tolerance: float = 1e-4) -> bool:
        return self.max_abs_position_m <= tolerance and self.max_abs_heading_rad <= tolerance


def compare_paths(first: dict[int, np.ndarray], second: dict[int, np.ndarray]) -> PathComparison:
    """Per common stamp: the largest waypoint distance (m) and heading difference (rad) of two
    (N, 3) [x, y, yaw] plans; paths of different lengths differ infinitely."""
    common = sorted(set(first) & set(second))
    per_frame = {}
    for stamp in common:
        a, b = first[stamp], second[stamp]
        if a.shape != b.shape:
            per_frame[stamp] = (math.inf, math.inf)
            continue
        wrapped = wrap_angle(a[:, 2] - b[:, 2])
        per_frame[stamp] = (float(np.hypot(*(a[:, :2] - b[:, :2]).T).max()), float(np.abs(wrapped).max()))
    return PathComparison(
        len(common),
        sorted(set(first) - set(second)),
        sorted(set(second) - set(first)),
        max((p for p, _ in per_frame.values()), default=0.0),
        max((h for _, h in per_frame.values()), default=0.0),
        per_frame,
    )


class NotAnEvaluation(ValueError):
    """A directory that is not the output of ``evaluate-bag`` for one bag."""


@dataclass(frozen=True)
class EvaluationOutput:
    directory: Path
    summary: dict
    plans: dict[int, np.ndarray]  # anchor stamp -> (8, 3) ISO 8855 [x, y, heading]


def read_evaluation(directory: Path) -> EvaluationOutput:
    """An ``evaluate-bag`` output of one bag: ``summary.json`` and ``frames.jsonl``."""
    summary_path, frames_path = directory / "summary.json", directory / "frames.jsonl"
    if not directory.is_dir():
        raise NotAnEvaluation(f"{directory} is not an evaluate-bag output: not a directory")
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        lines = frames_path.read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines if line.strip()]
    except (OSError, json.JSONDecodeError) as error:
        folder = summary_path.is_file() and not frames_path.exists()
        hint = " (a folder of bags: compare its per-bag subdirectories)" if folder else ""
        raise NotAnEvaluation(
            f"{directory} is not an evaluate-bag output of one bag: {getattr(error, 'strerror', None) or error}{hint}"
        ) from None
    if not isinstance(summary, dict) or "planned" not in summary:
        raise NotAnEvaluation(f"{directory} is not an evaluate-bag output: summary.json has no 'planned' count")
    plans = {
        r["stamp_ns"]: np.column_stack((np.array(r["waypoints_iso8855"]), np.array(r["headings_iso8855"])))
        for r in records
        if r.get("status") == "planned"
    }
    return EvaluationOutput(directory, summary, plans)


def input_difference(a: EvaluationOutput, b: EvaluationOutput) -> str | None:
    """Why two outputs do not come from the same drive (one line), or None. Topics read by
    both must hold the same messages (``summary.json`` ``input.messages_sha256``); outputs
    that do not record their input (older versions) cannot be checked and pass."""
    digests_a = a.summary.get("input", {}).get("messages_sha256")
    digests_b = b.summary.get("input", {}).get("messages_sha256")
    if digests_a is None or digests_b is None:
        return None
    common = sorted(set(digests_a) & set(digests_b))
    differing = [topic for topic in common if digests_a[topic] != digests_b[topic]]
    if common and not differing:
        return None
    what = f"different messages on {', '.join(differing)}" if differing else "no input topic in common"
    return (
        f"{a.directory} and {b.directory} come from different drives ({a.summary.get('bag')} and "
        f"{b.summary.get('bag')}: {what}); frame-by-frame comparison needs the same drive "
        "(--allow-different-inputs compares them anyway)"
    )


def _cell(value) -> str:
    return f"{'-':>12}" if value is None else f"{value:12.4f}" if isinstance(value, float) else f"{value:>12}"


def format_evaluation_comparison(a: EvaluationOutput, b: EvaluationOutput, comparison: PathComparison) -> str:
    """Metric tables side by side, frames present in one only, and per-frame differences."""
    lines = []
    for name, output in (("A", a), ("B", b)):
        s = output.summary
        sha = ",".join(h[:12] for h in s.get("weights_sha256", []))
        lines.append(
            f"{name}: {output.directory}  bag {s.get('bag')}  weights {s.get('weights')} ({sha})  "
            f"device {s.get('device')}  precision {s.get('precision')}  planned {s['planned']}"
        )
    metrics_a, metrics_b = a.summary.get("metrics"), b.summary.get("metrics")
    if metrics_a and metrics_b:
        lines.append(f"\n{'metric':<34}{'A':>12}{'B':>12}{'B - A':>12}")
        groups = [("overall", metrics_a["overall"], metrics_b["overall"])]
        groups += [(c, metrics_a["per_command"][c], metrics_b["per_command"][c]) for c in metrics_a["per_command"]]
        for group, values_a, values_b in groups:
            if not (values_a["frames"] or values_b["frames"]):
                continue
            for key in values_a:
                va, vb = values_a[key], values_b.get(key)
                delta = "" if va is None or vb is None else f"{vb - va:+12.4f}"
                lines.append(f"{group + ' ' + key:<34}{_cell(va)}{_cell(vb)}{delta}")
    else:
        lines.append("\n(no metrics in one of the outputs: an evaluation without a logged drive)")
    lines.append(
        f"\nframes: {comparison.common} in common, {len(comparison.only_first)} only in A, "
        f"{len(comparison.only_second)} only in B"
    )
    for name, stamps in (("A", comparison.only_first), ("B", comparison.only_second)):
        if stamps:
            lines.append(f"only in {name}: " + " ".join(str(t) for t in stamps))
    lines.append("per frame: anchor stamp (ns), max waypoint difference (m), max heading difference (rad)")
    lines += [f"  {stamp}  {m:.3e}  {rad:.3e}" for stamp, (m, rad) in sorted(comparison.per_frame.items())]
    lines.append(f"largest: {comparison.max_abs_position_m:.3e} m, {comparison.max_abs_heading_rad:.3e} rad")
    return "\n".join(lines)
