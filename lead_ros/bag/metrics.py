"""Open-loop metrics of a plan against the logged drive.

A bag with odometry holds what the vehicle actually did next. For a frame anchored at t,
the **logged future** is the odometry pose at t + 0.5 ... 4.0 s (``lead_ros.inputs.ego_state``'s
interpolation, the node's tolerance rules) expressed in the ISO 8855 ``base_link`` of the
pose at t. The plan is compared with it per horizon:

- L2 error at each horizon (m), ADE (mean of the 8), FDE (at 4.0 s);
- absolute heading error at each horizon, wrapped to (-pi, pi] (rad).

Summaries, overall and per command, use the two conventions of the end-to-end planning
literature: ``l2_at_T`` is the error at horizon T (UniAD, Hu et al., CVPR 2023);
``l2_avg_upto_T`` is the mean of the errors at all horizons up to T (ST-P3, Hu et al.,
ECCV 2022; VAD, Jiang et al., ICCV 2023), for T = 1, 2, 3, 4 s.

Open-loop metrics say how close a plan is to what one driver did, not whether it is safe or
drivable: NAVSIM's PDM score needs maps and other agents and is not computed here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lead_ros.frames import odometry_to_base_link, wrap_angle
from lead_ros.inputs.ego_state import PoseTrack
from lead_ros.observation import WAYPOINT_TIMES_S, Command

SUMMARY_HORIZONS_S = (1, 2, 3, 4)
NO_GROUND_TRUTH = "no_ground_truth"


@dataclass(frozen=True)
class LoggedFuture:
    """What the vehicle did after the anchor, in the anchor's ISO 8855 base_link."""

    waypoints: np.ndarray  # (8, 2) metres
    headings: np.ndarray  # (8,) radians


def logged_future(
    track: PoseTrack, stamp_ns: int, tolerance_ns: int, times_s: tuple[float, ...] = WAYPOINT_TIMES_S
) -> LoggedFuture | str:
    """The logged future of a frame at ``stamp_ns``, or why there is none."""
    anchor = track.pose_at(stamp_ns, tolerance_ns)
    if anchor.pose is None:
        return f"no odometry pose at the anchor ({anchor.error})"
    poses = []
    for t in times_s:
        lookup = track.pose_at(stamp_ns + round(t * 1e9), tolerance_ns)
        if lookup.pose is None:
            return f"no odometry pose at t + {t:g} s ({lookup.error})"
        poses.append(lookup.pose)
    points = np.array([p.xy for p in poses])
    waypoints, headings = odometry_to_base_link(anchor.pose.xy, anchor.pose.yaw, points, [p.yaw for p in poses])
    return LoggedFuture(waypoints, headings)


@dataclass(frozen=True)
class FrameMetrics:
    l2_m: np.ndarray  # (8,) per horizon
    heading_error_rad: np.ndarray  # (8,) absolute, wrapped

    @property
    def ade(self) -> float:
        return float(self.l2_m.mean())

    @property
    def fde(self) -> float:
        return float(self.l2_m[-1])

    def record(self, future: LoggedFuture) -> dict:
        """The keys ``frames.jsonl`` gains for a frame with ground truth."""
        return {
            "logged_future_iso8855": future.waypoints.tolist(),
            "logged_headings_iso8855": future.headings.tolist(),
            "l2_m": self.l2_m.tolist(),
            "ade_m": self.ade,
            "fde_m": self.fde,
            "heading_error_rad": self.heading_error_rad.tolist(),
        }


def frame_metrics(waypoints: np.ndarray, headings: np.ndarray, future: LoggedFuture) -> FrameMetrics:
    """Errors of an ISO 8855 plan against the logged future, per horizon."""
    l2 = np.hypot(*(np.asarray(waypoints, dtype=np.float64) - future.waypoints).T)
    heading = np.abs(wrap_angle(np.asarray(headings, dtype=np.float64) - future.headings))
    return FrameMetrics(l2, heading)


def _index(horizon_s: float, times_s: tuple[float, ...] = WAYPOINT_TIMES_S) -> int:
    return times_s.index(float(horizon_s))


@dataclass
class MetricsSummary:
    """Accumulates frame metrics overall and per command; ``summary()`` is ``summary.json``'s
    ``metrics``."""

    _by_command: dict[str, list[FrameMetrics]] = field(default_factory=dict)
    no_ground_truth: int = 0

    def add(self, command: Command | str, metrics: FrameMetrics) -> None:
        name = command.name.lower() if isinstance(command, Command) else command
        self._by_command.setdefault(name, []).append(metrics)

    def summary(self) -> dict:
        every = [m for frames in self._by_command.values() for m in frames]
        return {
            "overall": summarize(every),
            "per_command": {c.name.lower(): summarize(self._by_command.get(c.name.lower(), [])) for c in Command},
            NO_GROUND_TRUTH: self.no_ground_truth,
        }


def summarize(frames: list[FrameMetrics]) -> dict:
    """Means over frames (None without frames), with the frame count."""
    if not frames:
        keys = [f"l2_at_{t}s" for t in SUMMARY_HORIZONS_S] + [f"l2_avg_upto_{t}s" for t in SUMMARY_HORIZONS_S]
        return {"frames": 0, **dict.fromkeys(keys), "ade": None, "fde": None, "heading_error_mean_rad": None}
    l2 = np.stack([m.l2_m for m in frames])
    result: dict = {"frames": len(frames)}
    for t in SUMMARY_HORIZONS_S:
        result[f"l2_at_{t}s"] = float(l2[:, _index(t)].mean())
    for t in SUMMARY_HORIZONS_S:
        result[f"l2_avg_upto_{t}s"] = float(l2[:, : _index(t) + 1].mean())
    result["ade"] = float(l2.mean())
    result["fde"] = float(l2[:, -1].mean())
    result["heading_error_mean_rad"] = float(np.stack([m.heading_error_rad for m in frames]).mean())
    return result


def merge_metrics(summaries: list[dict]) -> dict:
    """``MetricsSummary.summary()`` of several bags merged into the one over all their frames:
    every figure is a mean over frames, so the merge weighs each bag's by its frame count."""

    def merge(groups: list[dict]) -> dict:
        total = sum(g["frames"] for g in groups)
        merged = summarize([])
        merged["frames"] = total
        if total:
            for key in merged:
                if key != "frames":
                    merged[key] = sum(g[key] * g["frames"] for g in groups if g["frames"]) / total
        return merged

    return {
        "overall": merge([s["overall"] for s in summaries]),
        "per_command": {c.name.lower(): merge([s["per_command"][c.name.lower()] for s in summaries]) for c in Command},
        NO_GROUND_TRUTH: sum(s[NO_GROUND_TRUTH] for s in summaries),
    }


def format_table(metrics: dict) -> str:
    """The metrics as a text table: one row per group with frames."""
    columns = [f"l2_at_{t}s" for t in SUMMARY_HORIZONS_S] + [f"l2_avg_upto_{t}s" for t in SUMMARY_HORIZONS_S]
    columns += ["ade", "fde", "heading_error_mean_rad"]
    widths = [max(len(c) + 2, 10) for c in columns]
    header = f"{'group':<10}{'frames':>7}" + "".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True))
    rows = [header]
    groups = [("overall", metrics["overall"]), *metrics["per_command"].items()]
    for name, values in groups:
        cells = "".join(
            f"{'-' if values[c] is None else format(values[c], '.3f'):>{w}}"
            for c, w in zip(columns, widths, strict=True)
        )
        rows.append(f"{name:<10}{values['frames']:>7}{cells}")
    rows.append(f"frames without 4 s of logged odometry ({NO_GROUND_TRUTH}): {metrics[NO_GROUND_TRUTH]}")
    return "\n".join(rows)
