"""Frame synchronization policy, shared by the live node and offline bag evaluation.

A frame is anchored on the front camera f0 (or the stitched image). Side cameras must lie
within the tolerance of the anchor stamp; odometry (and IMU) are interpolated linearly at
the anchor stamp, and so is the odometry pose, which a frame carries when it is known
(route command, plan in the odometry frame). Everything is keyed by header stamps; ``now_ns`` is the node clock, so
simulated time works. Camera payloads are opaque (messages), decoded only for frames that
are planned.

A pending anchor completes as soon as every input is decided; it is resolved with what is
there when a newer anchor arrives or ``flush`` passes its deadline (arrival + tolerance +
a grace period for transport latency).

The live node takes camera images only when the planner can use a frame, so DDS may replace
one by a newer image before it is taken. A camera message can say so (``unseen_before``):
a frame whose image of that camera may have been one of them is ``superseded`` (a newer
frame was planned instead), not ``camera_missing`` (the camera sent nothing in time).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from lead_ros.camera_layout import SIDE_CAMERAS, anchor_input
from lead_ros.inputs.ego_state import EgoPose, PoseTrack, SampleBuffer, odometry_acceleration

_CAMERA_BUFFER = 16
# A side-camera message older than the newest of its camera by more than the tolerance plus
# this is dropped even when no anchor has come to rule it out (a dead anchor camera).
_SIDE_CAMERA_KEEP_NS = 500_000_000
_HISTORY_NS = 2_000_000_000
# How long after its arrival (beyond the tolerance) a pending anchor waits for late inputs
# when no newer anchor comes; a newer anchor resolves it at once, so this only bounds the
# wait for the last frame of a stream.
ARRIVAL_GRACE_NS = 1_000_000_000

# Reasons a frame is not planned (diagnostics count them by these names).
CAMERA_MISSING = "camera_missing"
ODOMETRY_UNAVAILABLE = "odometry_unavailable"
IMU_UNAVAILABLE = "imu_unavailable"
STAMP_BACKWARDS = "stamp_backwards"
STAMP_IN_FUTURE = "stamp_in_future"
DUPLICATE_STAMP = "duplicate_stamp"
STALE_INPUT = "stale_input"
REVERSING = "reversing"
# Not planned because a newer frame was planned instead: replaced in the planner's queue, or
# an image of it replaced in DDS before the node took it.
SUPERSEDED = "superseded"
# Longitudinal velocity below this (m/s) is reversing: LTFv6 has no reverse, and a plan made
# with the speed's magnitude would be a forward plan, so such frames are skipped. Smaller
# negative values (standstill jitter) are planned with the planar speed.
REVERSING_BELOW_MPS = -0.5


@dataclass(frozen=True)
class SyncPolicy:
    camera_mode: str = "navsim_4cam"  # or "stitched"
    tolerance_ns: int = 50_000_000
    fill_missing_cameras: bool = False
    max_future_ns: int = 1_000_000_000
    acceleration_source: str = "odometry"  # or "imu"
    acceleration_window_ns: int = 500_000_000
    max_age_ns: int = 0  # anchor stamp older than this vs the clock: stale_input; 0 = off

    @property
    def anchor(self) -> str:
        return anchor_input(self.camera_mode)

    @property
    def side_cameras(self) -> tuple[str, ...]:
        return () if self.camera_mode == "stitched" else SIDE_CAMERAS

    @classmethod
    def from_config(cls, config) -> SyncPolicy:
        """From a ``NodeConfig``."""
        return cls(
            camera_mode=config.camera_mode,
            tolerance_ns=int(config.sync_tolerance_ms * 1e6),
            fill_missing_cameras=config.missing_camera_policy == "fill_black",
            max_future_ns=int(config.max_future_stamp_s * 1e9),
            acceleration_source=config.acceleration_source,
            acceleration_window_ns=int(config.acceleration_window_s * 1e9),
            max_age_ns=int(config.max_input_age_s * 1e9),
        )


@dataclass(frozen=True)
class SyncedFrame:
    """Inputs of one planning step. ``cameras`` maps l0/f0/r0/b0 (or image) to payloads;
    cameras filled black map to None and are listed in ``filled``."""

    stamp_ns: int
    cameras: dict[str, Any]
    speed_mps: float
    acceleration_mps2: float
    acceleration_estimated: bool
    filled: tuple[str, ...] = ()
    pose: EgoPose | None = None  # odometry pose at the anchor stamp; None: see pose_error
    pose_error: str | None = None
    pose_frame: str | None = None  # the odometry frame_id the pose is in


@dataclass(frozen=True)
class SyncFailure:
    stamp_ns: int
    reason: str
    detail: str


@dataclass
class _Pending:
    stamp_ns: int
    payload: Any
    arrived_ns: int


class FrameSynchronizer:
    """Feed messages in; get ``SyncedFrame``/``SyncFailure`` results out of each call."""

    def __init__(self, policy: SyncPolicy) -> None:
        self.policy = policy
        horizon = policy.acceleration_window_ns + policy.tolerance_ns + _HISTORY_NS
        self.odometry = SampleBuffer("odometry", horizon)
        self.imu = SampleBuffer("imu", horizon)
        self.poses = PoseTrack("odometry pose", horizon)
        self._cameras: dict[str, deque[tuple[int, Any]]] = {
            name: deque(maxlen=_CAMERA_BUFFER) for name in policy.side_cameras
        }
        # Per side camera: (previous stamp, stamp) around images that were never taken.
        self._unseen: dict[str, deque[tuple[int, int]]] = {
            name: deque(maxlen=_CAMERA_BUFFER) for name in policy.side_cameras
        }
        self._last_side_stamp: dict[str, int] = {}
        self._pending: deque[_Pending] = deque()
        self._last_anchor_ns: int | None = None

    @property
    def pending(self) -> int:
        """Anchor frames waiting for their inputs."""
        return len(self._pending)

    def reset(self) -> None:
        """Forget everything (time jumped back, e.g. a looping bag)."""
        self.odometry.clear()
        self.imu.clear()
        self.poses.clear()
        for buffer in self._cameras.values():
            buffer.clear()
        for spans in self._unseen.values():
            spans.clear()
        self._last_side_stamp.clear()
        self._pending.clear()
        self._last_anchor_ns = None

    # --- inputs -----------------------------------------------------------------------------

    def add_camera(
        self, name: str, stamp_ns: int, payload: Any, now_ns: int, unseen_before: bool = False
    ) -> list[SyncedFrame | SyncFailure]:
        """A camera message; ``unseen_before``: images of this camera published since its
        previous message were never taken (replaced in DDS by newer ones)."""
        if name == self.policy.anchor:
            return self._add_anchor(stamp_ns, payload, now_ns)
        if name not in self._cameras:
            raise ValueError(f"camera {name!r} is not an input in camera mode {self.policy.camera_mode}")
        previous = self._last_side_stamp.get(name)
        if unseen_before and previous is not None:
            self._unseen[name].append((previous, stamp_ns))
        self._last_side_stamp[name] = stamp_ns
        self._cameras[name].append((stamp_ns, payload))
        results = self._resolve_ready()
        self._drop_unusable_side_messages()
        return results

    def add_odometry(
        self,
        stamp_ns: int,
        speed_mps: float,
        yaw_rate: float,
        forward_mps: float | None = None,
        pose: EgoPose | None = None,
        frame_id: str = "",
    ) -> list[SyncedFrame | SyncFailure]:
        """Speed (planar norm, m/s), yaw rate (rad/s), longitudinal velocity (m/s, signed;
        None = the speed) and the pose in the odometry frame ``frame_id`` (None: not known);
        NaN/inf values mark the sample (or only its pose) invalid."""
        forward = speed_mps if forward_mps is None else forward_mps
        values = np.array([speed_mps, yaw_rate, forward], dtype=np.float64)
        self.odometry.add(stamp_ns, values if np.isfinite(values).all() else None)
        if pose is not None:
            self.poses.add_pose(stamp_ns, pose.x, pose.y, pose.z, pose.yaw, frame_id)
        return self._resolve_ready()

    def add_imu(self, stamp_ns: int, planar_acceleration_mps2: float) -> list[SyncedFrame | SyncFailure]:
        values = np.array([planar_acceleration_mps2], dtype=np.float64)
        self.imu.add(stamp_ns, values if np.isfinite(values).all() else None)
        return self._resolve_ready()

    def flush(self, now_ns: int | None = None) -> list[SyncedFrame | SyncFailure]:
        """Resolve pending anchors whose deadline (arrival + tolerance + grace) passed, or all of
        them when ``now_ns`` is None (end of a bag)."""
        results = self._resolve_ready()
        wait_ns = self.policy.tolerance_ns + ARRIVAL_GRACE_NS
        while self._pending and (now_ns is None or now_ns > self._pending[0].arrived_ns + wait_ns):
            results.append(self._resolve(self._pending.popleft()))
        self._drop_unusable_side_messages()
        return results

    # --- resolution -------------------------------------------------------------------------

    def _add_anchor(self, stamp_ns: int, payload: Any, now_ns: int) -> list[SyncedFrame | SyncFailure]:
        results: list[SyncedFrame | SyncFailure] = []
        # now_ns == 0: a simulated clock that has not started yet; nothing to compare with.
        if now_ns and stamp_ns > now_ns + self.policy.max_future_ns:
            ahead = (stamp_ns - now_ns) / 1e9
            return [
                SyncFailure(stamp_ns, STAMP_IN_FUTURE, f"{self.policy.anchor}: stamp {ahead:.2f} s ahead of the clock")
            ]
        if now_ns and self.policy.max_age_ns and now_ns - stamp_ns > self.policy.max_age_ns:
            age = (now_ns - stamp_ns) / 1e9
            limit = self.policy.max_age_ns / 1e9
            return [
                SyncFailure(stamp_ns, STALE_INPUT, f"{self.policy.anchor}: stamp {age:.2f} s old (limit {limit:g} s)")
            ]
        last = self._last_anchor_ns
        if last is not None and stamp_ns == last:
            return [SyncFailure(stamp_ns, DUPLICATE_STAMP, f"{self.policy.anchor}: same stamp as the previous frame")]
        if last is not None and stamp_ns < last:
            back = (last - stamp_ns) / 1e9
            if last - stamp_ns <= self.policy.tolerance_ns:  # a late, reordered frame: skip it
                return [SyncFailure(stamp_ns, STAMP_BACKWARDS, f"{self.policy.anchor}: stamp {back:.3f} s behind")]
            self.reset()  # time jumped back, e.g. a looping bag
            self._last_anchor_ns = stamp_ns
            return [
                SyncFailure(
                    stamp_ns, STAMP_BACKWARDS, f"{self.policy.anchor}: stamp went back {back:.3f} s; buffers reset"
                )
            ]
        self._last_anchor_ns = stamp_ns
        while self._pending:
            results.append(self._resolve(self._pending.popleft(), newer_anchor=True))
        self._pending.append(_Pending(stamp_ns, payload, now_ns))
        results += self._resolve_ready()
        self._drop_unusable_side_messages()
        return results

    def _drop_unusable_side_messages(self) -> None:
        """Bound the side-camera buffers by age as well as by count: drop messages no pending
        or future anchor can match (older than the oldest pending anchor, or than the last
        anchor when none is pending, by more than the tolerance; later anchors are newer or
        refused), and messages far older than the newest of their camera."""
        tolerance = self.policy.tolerance_ns
        anchor = self._pending[0].stamp_ns if self._pending else self._last_anchor_ns
        for buffer in self._cameras.values():
            if not buffer:
                continue
            floor = max(t for t, _ in buffer) - tolerance - _SIDE_CAMERA_KEEP_NS
            if anchor is not None:
                floor = max(floor, anchor - tolerance)
            if any(t < floor for t, _ in buffer):
                kept = [(t, p) for t, p in buffer if t >= floor]
                buffer.clear()
                buffer.extend(kept)

    def _resolve_ready(self) -> list[SyncedFrame | SyncFailure]:
        results = []
        while self._pending and self._is_ready(self._pending[0]):
            results.append(self._resolve(self._pending.popleft()))
        return results

    def _camera_decided(self, name: str, stamp_ns: int) -> bool:
        """The best match cannot improve: a message at/after the anchor, or past tolerance."""
        buffer = self._cameras[name]
        return bool(buffer) and buffer[-1][0] >= stamp_ns

    def _is_ready(self, pending: _Pending) -> bool:
        t = pending.stamp_ns
        if not all(self._camera_decided(name, t) for name in self.policy.side_cameras):
            return False
        if not self.odometry.has_sample_at_or_after(t):
            return False
        return self.policy.acceleration_source != "imu" or self.imu.has_sample_at_or_after(t)

    def _match(self, name: str, stamp_ns: int) -> Any | None:
        candidates = [(abs(t - stamp_ns), t, p) for t, p in self._cameras[name]]
        if not candidates:
            return None
        distance, _, payload = min(candidates, key=lambda c: c[0])
        return payload if distance <= self.policy.tolerance_ns else None

    def _in_transit(self, name: str, stamp_ns: int) -> bool:
        """``name``'s image for the frame at ``stamp_ns`` may still be on its way: the camera
        delivers (its newest image is at most the tolerance + 0.5 s older than the frame, the
        bound of a camera's buffer) but has delivered none at or after the frame yet. Raw
        1080p images sent over shared memory arrived up to ~0.3 s after the next frame's
        anchor here (``docs/benchmarks.md``); a camera that stops is missing 0.55 s later."""
        buffer = self._cameras[name]
        newest = self._last_side_stamp.get(name)
        if newest is None or (buffer and buffer[-1][0] >= stamp_ns):
            return False
        return newest >= stamp_ns - self.policy.tolerance_ns - _SIDE_CAMERA_KEEP_NS

    def _may_have_been_replaced(self, name: str, stamp_ns: int) -> bool:
        """An image of ``name`` within the tolerance of ``stamp_ns`` may have been one never taken."""
        low, high = stamp_ns - self.policy.tolerance_ns, stamp_ns + self.policy.tolerance_ns
        return any(before < high and after > low for before, after in self._unseen[name])

    def _resolve(self, pending: _Pending, newer_anchor: bool = False) -> SyncedFrame | SyncFailure:
        """``newer_anchor``: resolved because a newer anchor came before its inputs were all in."""
        t, tolerance = pending.stamp_ns, self.policy.tolerance_ns
        cameras = {self.policy.anchor: pending.payload}
        missing = []
        for name in self.policy.side_cameras:
            match = self._match(name, t)
            cameras[name] = match
            if match is None:
                missing.append(name)
        replaced = [name for name in missing if self._may_have_been_replaced(name, t)]
        if replaced:
            return SyncFailure(
                t,
                SUPERSEDED,
                f"camera {', '.join(replaced)}: its image for this frame was replaced by a newer one before the "
                "node took it (the planner was busy; a newer frame is planned instead)",
            )
        late = [name for name in missing if newer_anchor and self._in_transit(name, t)]
        if late:
            return SyncFailure(
                t,
                SUPERSEDED,
                f"camera {', '.join(late)}: a newer frame's anchor arrived before this frame's image (the newer "
                "frame is planned instead)",
            )
        if missing and not self.policy.fill_missing_cameras:
            return SyncFailure(
                t,
                CAMERA_MISSING,
                f"camera {', '.join(missing)}: no message within {tolerance / 1e6:.1f} ms of the anchor",
            )
        odometry = self.odometry.at(t, tolerance)
        if odometry.values is None:
            return SyncFailure(t, ODOMETRY_UNAVAILABLE, odometry.error or "odometry: no sample")
        if odometry.values[2] < REVERSING_BELOW_MPS:
            return SyncFailure(
                t, REVERSING, f"odometry: reversing at {odometry.values[2]:.2f} m/s; LTFv6 plans forward motion only"
            )
        if self.policy.acceleration_source == "imu":
            imu = self.imu.at(t, tolerance)
            if imu.values is None:
                return SyncFailure(t, IMU_UNAVAILABLE, imu.error or "imu: no sample")
            acceleration, estimated = float(imu.values[0]), True
        else:
            estimate = odometry_acceleration(self.odometry, t, odometry.values, self.policy.acceleration_window_ns)
            acceleration, estimated = estimate.value_mps2, estimate.estimated
        pose = self.poses.pose_at(t, tolerance)
        return SyncedFrame(
            stamp_ns=t,
            cameras=cameras,
            speed_mps=float(odometry.values[0]),
            acceleration_mps2=acceleration,
            acceleration_estimated=estimated,
            filled=tuple(missing),
            pose=pose.pose,
            pose_error=pose.error,
            pose_frame=self.poses.frame_id if pose.pose is not None else None,
        )
