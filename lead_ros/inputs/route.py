"""The driving command derived from a route, by NAVSIM's rule.

NAVSIM (OpenScene ``driving_command.py``, ``get_driving_command``) derives the command from
the route: project the ego position onto the route centerline (arc length ``s``), take the
centerline pose at ``s`` and the centerline point at ``s + lookahead`` (20 m), and express
that point in the frame of the pose at ``s``. Lateral ``y >= threshold`` (2 m) is **left**,
``y <= -threshold`` is **right**, anything between is **straight**; no usable route is
**unknown** (the caller then uses its default command). Frames are right-handed with y
left (nuPlan, ROS, ISO 8855).

The geometry is fixed here so that two implementations agree:

- consecutive duplicate points are dropped; fewer than 2 distinct points is unusable;
- ``s`` is the arc length of the globally nearest point of the polyline, the smallest ``s``
  on ties; an ego farther than ``max_offset_m`` from the route is unusable;
- the heading at ``s`` is the direction of the segment containing ``s`` (the segment that
  starts at a vertex, the last segment at the end); the route's orientations are ignored;
- ``s`` and ``s + lookahead`` are clamped to [0, L] (``s`` lies there by construction).

A route is checked before use (``route_problem``): finite coordinates within
``MAX_COORDINATE_M`` of the frame's origin (so squares cannot overflow), at least two
distinct points, and no segment shorter than ``MIN_SEGMENT_M`` (so squared lengths cannot
underflow to zero). A route that fails is refused with a one-line reason and the default
command applies.

Pure Python: the node, ``evaluate-bag`` and the tests share it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lead_ros.frames import odometry_to_base_link
from lead_ros.inputs.command import CommandState
from lead_ros.inputs.ego_state import EgoPose
from lead_ros.observation import Command

# 10,000 km: covers UTM and other map frames, keeps squared distances far from overflow.
MAX_COORDINATE_M = 1e7
# 1 micrometre: far below any route planner's spacing and float32 resolution of a map frame,
# far above the lengths whose squares underflow.
MIN_SEGMENT_M = 1e-6
MAX_POINTS = 100_000  # 100 km at 1 m spacing; bounds the per-frame projection


@dataclass(frozen=True)
class RouteRule:
    """The rule's three numbers (node parameters ``route_*``)."""

    lookahead_m: float = 20.0
    lateral_threshold_m: float = 2.0
    max_offset_m: float = 10.0


@dataclass(frozen=True)
class RouteCommand:
    """The rule's outcome. ``command`` is None when the route is unusable (``problem`` says why)."""

    command: Command | None
    lateral_m: float | None = None  # y of the look-ahead point in the frame of the pose at s
    arc_length_m: float | None = None  # s
    offset_m: float | None = None  # distance from the ego to the route
    problem: str | None = None


def distinct_points(points: np.ndarray) -> np.ndarray:
    """(N, 2) points with consecutive duplicates dropped."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(points) == 0:
        return points
    keep = np.concatenate(([True], np.any(np.diff(points, axis=0) != 0.0, axis=1)))
    return points[keep]


def route_problem(route_xy: np.ndarray) -> str | None:
    """Why the centerline ``route_xy`` (N, 2) cannot be used (one line), or None."""
    raw = np.asarray(route_xy, dtype=np.float64).reshape(-1, 2)
    if len(raw) > MAX_POINTS:
        return f"route: {len(raw)} points, at most {MAX_POINTS} accepted"
    if not np.isfinite(raw).all():
        return "route: holds NaN/inf coordinates"
    if len(raw) and (extent := float(np.abs(raw).max())) > MAX_COORDINATE_M:
        return f"route: a coordinate of {extent:.3g} m is beyond the plausible extent of {MAX_COORDINATE_M:g} m"
    points = distinct_points(raw)
    if len(points) < 2:
        return f"route: {len(points)} distinct point(s), at least 2 needed"
    segments = np.diff(points, axis=0)
    shortest = float(np.hypot(segments[:, 0], segments[:, 1]).min())
    if shortest < MIN_SEGMENT_M:
        return f"route: a segment of {shortest:.3g} m between distinct points is shorter than {MIN_SEGMENT_M:g} m"
    return None


def derive_command(route_xy: np.ndarray, ego_xy: tuple[float, float], rule: RouteRule) -> RouteCommand:
    """The command for an ego at ``ego_xy`` on the centerline ``route_xy`` (N, 2), both in
    the same frame (see the module doc for the rule)."""
    if (problem := route_problem(route_xy)) is not None:
        return RouteCommand(None, problem=problem)
    ego = np.asarray(ego_xy, dtype=np.float64)
    if not (np.isfinite(ego).all() and np.abs(ego).max() <= 2 * MAX_COORDINATE_M):
        return RouteCommand(None, problem=f"route: ego position {tuple(ego.tolist())} is beyond the route's extent")
    points = distinct_points(route_xy)
    segments = np.diff(points, axis=0)
    lengths = np.hypot(segments[:, 0], segments[:, 1])
    starts = np.concatenate(([0.0], np.cumsum(lengths)))  # arc length at each vertex
    total = float(starts[-1])
    along = np.clip(np.einsum("ij,ij->i", ego - points[:-1], segments) / lengths**2, 0.0, 1.0)
    nearest = points[:-1] + along[:, None] * segments
    distances = np.hypot(*(ego - nearest).T)
    arc_lengths = starts[:-1] + along * lengths
    closest = distances == distances.min()
    s = float(arc_lengths[closest].min())
    offset = float(distances.min())
    if offset > rule.max_offset_m:
        return RouteCommand(
            None,
            arc_length_m=s,
            offset_m=offset,
            problem=f"route: ego is {offset:.1f} m from the route (limit route_max_offset_m {rule.max_offset_m:g} m)",
        )
    segment = min(int(np.searchsorted(starts, s, side="right")) - 1, len(segments) - 1)
    heading = float(np.arctan2(segments[segment, 1], segments[segment, 0]))
    origin = _point_at(points, starts, s)
    ahead = _point_at(points, starts, min(s + rule.lookahead_m, total))
    local, _ = odometry_to_base_link(tuple(origin), heading, ahead[None, :], np.zeros(1))
    lateral = float(local[0, 1])
    if lateral >= rule.lateral_threshold_m:
        command = Command.LEFT
    elif lateral <= -rule.lateral_threshold_m:
        command = Command.RIGHT
    else:
        command = Command.STRAIGHT
    return RouteCommand(command, lateral, s, offset)


def _point_at(points: np.ndarray, starts: np.ndarray, s: float) -> np.ndarray:
    """The polyline point at arc length ``s`` (within [0, L])."""
    i = min(int(np.searchsorted(starts, s, side="right")) - 1, len(points) - 2)
    length = starts[i + 1] - starts[i]
    if length <= 0.0:  # a short segment far along a long route: lost in the arc length's precision
        return points[i]
    return points[i] + (s - starts[i]) / length * (points[i + 1] - points[i])


class RouteTracker:
    """The latest route and its frame; derives each frame's command from the ego pose.

    The route must be in the odometry frame (no transform lookup at image time): a route in
    another frame is not used. A route that arrives before any odometry is held and checked
    at the first frame. ``timeout_s`` > 0 makes an old route stale, as for the command topic.
    """

    def __init__(self, default: Command, rule: RouteRule, timeout_s: float = 0.0) -> None:
        self.default, self.rule, self.timeout_s = default, rule, timeout_s
        self._points: np.ndarray | None = None
        self._frame_id = ""
        self._received_ns: int | None = None
        self.last: CommandState = CommandState(default, "default: no route received yet", None)

    def update(self, points: np.ndarray, frame_id: str, now_ns: int) -> None:
        self._points, self._frame_id, self._received_ns = np.asarray(points, dtype=np.float64), frame_id, now_ns

    def frame_mismatch(self, odometry_frame: str | None) -> str | None:
        """Why the held route cannot be used with odometry in ``odometry_frame``, or None."""
        if self._points is None or odometry_frame is None or self._frame_id == odometry_frame:
            return None
        return (
            f"route: frame_id {self._frame_id!r} is not the odometry frame {odometry_frame!r}; re-publish the "
            "route in the odometry frame (tf2 is not available to the node)"
        )

    def state(self, pose: EgoPose | None, odometry_frame: str | None, now_ns: int) -> CommandState:
        """The command for a frame whose ego pose (odometry frame) is ``pose``."""
        self.last = self._state(pose, odometry_frame, now_ns)
        return self.last

    def _state(self, pose: EgoPose | None, odometry_frame: str | None, now_ns: int) -> CommandState:
        if self._points is None or self._received_ns is None:
            return CommandState(self.default, "default: no route received yet", None)
        age_s = (now_ns - self._received_ns) / 1e9
        if self.timeout_s > 0 and age_s > self.timeout_s:
            return CommandState(self.default, "default: route stale", age_s)
        if (mismatch := self.frame_mismatch(odometry_frame)) is not None:
            return CommandState(self.default, f"default: {mismatch}", age_s)
        if pose is None:
            return CommandState(self.default, "default: no odometry pose at the frame", age_s)
        derived = derive_command(self._points, pose.xy, self.rule)
        if derived.command is None:
            return CommandState(self.default, f"default: {derived.problem}", age_s)
        return CommandState(derived.command, "received", age_s, derived.lateral_m)
