"""Ego-state time series: odometry and IMU samples interpolated at an image stamp, the
vehicle's pose in the odometry frame at any stamp, and the acceleration estimate
NAVSIM-style planners need (a planar norm, m/s²).

Poses (``PoseTrack``) follow the same tolerance rules as every other sample: linear between
the samples around the stamp, the nearest sample up to the tolerance outside the series.
Position is interpolated linearly, yaw on the shortest arc. The node (route command, plan in
the odometry frame) and the offline tools (logged future) share this one implementation.

Acceleration from odometry: over the window [t - W, t], the longitudinal term is the change
of speed divided by the elapsed time, the lateral term the centripetal speed x yaw rate; the
result is their planar norm. With fewer than two samples in the window it is 0 and
``estimated`` is False, so callers can warn.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

from lead_ros.frames import wrap_angle


@dataclass(frozen=True)
class Lookup:
    """Values interpolated at a stamp, or why not (``error`` names the input and problem)."""

    values: np.ndarray | None
    error: str | None = None


class SampleBuffer:
    """Time-ordered vectors of one input, with linear interpolation at a stamp.

    Invalid samples (NaN/inf) are kept as markers so that a frame whose interpolation would
    use one fails instead of silently using a neighbour. ``angle_columns`` are angles in
    radians, interpolated on the shortest arc and wrapped to (-pi, pi].
    """

    def __init__(
        self, name: str, horizon_ns: int, max_reorder_ns: int = 250_000_000, angle_columns: tuple[int, ...] = ()
    ) -> None:
        self.name = name
        self.horizon_ns = horizon_ns
        self.max_reorder_ns = max_reorder_ns
        self.angle_columns = list(angle_columns)
        self._stamps: list[int] = []
        self._values: list[np.ndarray | None] = []

    def __len__(self) -> int:
        return len(self._stamps)

    @property
    def newest_ns(self) -> int | None:
        return self._stamps[-1] if self._stamps else None

    def clear(self) -> None:
        self._stamps.clear()
        self._values.clear()

    def add(self, stamp_ns: int, values: np.ndarray | None) -> bool:
        """Insert a sample (``None`` = invalid). Returns False when time jumped back and the
        buffer restarted (a looping bag)."""
        restarted = bool(self._stamps) and stamp_ns < self._stamps[-1] - self.max_reorder_ns
        if restarted:
            self.clear()
        index = bisect.bisect_right(self._stamps, stamp_ns)
        self._stamps.insert(index, stamp_ns)
        self._values.insert(index, values)
        cutoff = bisect.bisect_left(self._stamps, self._stamps[-1] - self.horizon_ns)
        del self._stamps[:cutoff], self._values[:cutoff]
        return not restarted

    def has_sample_at_or_after(self, stamp_ns: int) -> bool:
        return bool(self._stamps) and self._stamps[-1] >= stamp_ns

    def at(self, stamp_ns: int, tolerance_ns: int) -> Lookup:
        """Linear interpolation between the samples around ``stamp_ns``; the newest (oldest)
        sample when the stamp is at most ``tolerance_ns`` past (before) the series."""
        if not self._stamps:
            return Lookup(None, f"{self.name}: no sample received")
        i = bisect.bisect_left(self._stamps, stamp_ns)
        if i < len(self._stamps) and self._stamps[i] == stamp_ns:
            return self._checked([i], stamp_ns)
        if i == len(self._stamps):
            age = stamp_ns - self._stamps[-1]
            if age > tolerance_ns:
                return Lookup(
                    None,
                    f"{self.name}: newest sample is {age / 1e6:.1f} ms older than the frame "
                    f"(tolerance {tolerance_ns / 1e6:.1f} ms)",
                )
            return self._checked([i - 1], stamp_ns)
        if i == 0:
            lead = self._stamps[0] - stamp_ns
            if lead > tolerance_ns:
                return Lookup(None, f"{self.name}: no sample before the frame (oldest is {lead / 1e6:.1f} ms later)")
            return self._checked([0], stamp_ns)
        return self._checked([i - 1, i], stamp_ns)

    def _checked(self, indices: list[int], stamp_ns: int) -> Lookup:
        if any(self._values[i] is None for i in indices):
            return Lookup(None, f"{self.name}: sample near the frame was rejected (NaN/inf or out of range)")
        if len(indices) == 1:
            return Lookup(self._values[indices[0]])
        (t0, t1), (v0, v1) = [self._stamps[i] for i in indices], [self._values[i] for i in indices]
        assert v0 is not None and v1 is not None  # rejected samples were answered above
        w = (stamp_ns - t0) / (t1 - t0)
        delta = v1 - v0
        if self.angle_columns:
            delta[self.angle_columns] = wrap_angle(delta[self.angle_columns])
        values = v0 + w * delta
        if self.angle_columns:
            values[self.angle_columns] = wrap_angle(values[self.angle_columns])
        return Lookup(values)

    def window(self, start_ns: int, end_ns: int) -> list[tuple[int, np.ndarray | None]]:
        lo, hi = bisect.bisect_left(self._stamps, start_ns), bisect.bisect_right(self._stamps, end_ns)
        return list(zip(self._stamps[lo:hi], self._values[lo:hi], strict=True))


@dataclass(frozen=True)
class EgoPose:
    """The vehicle's pose in the odometry frame: position (m) and yaw (rad, counter-clockwise
    about +z, as ROS and ISO 8855 have it)."""

    x: float
    y: float
    z: float
    yaw: float

    @property
    def xy(self) -> tuple[float, float]:
        return (self.x, self.y)


@dataclass(frozen=True)
class PoseLookup:
    """A pose interpolated at a stamp, or why not (``error`` names the input and problem)."""

    pose: EgoPose | None
    error: str | None = None


@dataclass(frozen=True)
class FrameChange:
    """The odometry's ``header.frame_id`` changed: poses before and after are in different
    frames (another origin), so no pose is interpolated across ``stamp_ns``."""

    previous: str
    current: str
    stamp_ns: int  # of the first pose in ``current``


class PoseTrack(SampleBuffer):
    """Odometry poses ``[x, y, z, yaw]`` over time, all in one frame (``frame_id``); see the
    module doc for the rules. A pose in another frame restarts the track on that frame."""

    YAW = 3

    def __init__(self, name: str, horizon_ns: int, max_reorder_ns: int = 250_000_000) -> None:
        super().__init__(name, horizon_ns, max_reorder_ns, angle_columns=(self.YAW,))
        self.frame_id: str | None = None
        self.last_change: FrameChange | None = None

    def add_pose(self, stamp_ns: int, x: float, y: float, z: float, yaw: float, frame_id: str = "") -> bool:
        """Insert a pose in ``frame_id``; a NaN/inf component marks the sample invalid (see
        ``add``). A frame other than the track's clears it first (``last_change`` says when)."""
        if self.frame_id is not None and frame_id != self.frame_id:
            self.clear()
            self.last_change = FrameChange(self.frame_id, frame_id, stamp_ns)
        self.frame_id = frame_id
        values = np.array([x, y, z, yaw], dtype=np.float64)
        return self.add(stamp_ns, values if np.isfinite(values).all() else None)

    def pose_at(self, stamp_ns: int, tolerance_ns: int) -> PoseLookup:
        change = self.last_change
        if change is not None and self._stamps and stamp_ns < self._stamps[0]:
            return PoseLookup(
                None,
                f"{self.name}: the odometry frame changed from {change.previous!r} to {change.current!r} at "
                f"{change.stamp_ns / 1e9:.3f} s, after this stamp; no pose is interpolated across frames",
            )
        lookup = self.at(stamp_ns, tolerance_ns)
        if lookup.values is None:
            return PoseLookup(None, lookup.error)
        return PoseLookup(EgoPose(*(float(v) for v in lookup.values)))


@dataclass(frozen=True)
class Acceleration:
    value_mps2: float
    estimated: bool  # False: too few samples in the window, value is 0


def odometry_acceleration(
    odometry: SampleBuffer, stamp_ns: int, now_values: np.ndarray, window_ns: int
) -> Acceleration:
    """Planar acceleration norm from odometry samples ``[speed, yaw_rate]`` (see module doc)."""
    samples = [(t, v) for t, v in odometry.window(stamp_ns - window_ns, stamp_ns) if v is not None]
    if len(samples) < 2:
        return Acceleration(0.0, False)
    first_t, first_v = samples[0]
    elapsed = (stamp_ns - first_t) / 1e9
    if elapsed <= 0:
        return Acceleration(0.0, False)
    speed, yaw_rate = float(now_values[0]), float(now_values[1])
    longitudinal = (speed - float(first_v[0])) / elapsed
    return Acceleration(math.hypot(longitudinal, speed * yaw_rate), True)
