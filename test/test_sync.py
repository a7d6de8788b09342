"""The synchronization policy on fabricated stamps (no ROS)."""

from __future__ import annotations

import math

import pytest

from lead_ros.inputs.sync import (
    CAMERA_MISSING,
    DUPLICATE_STAMP,
    IMU_UNAVAILABLE,
    ODOMETRY_UNAVAILABLE,
    REVERSING,
    STALE_INPUT,
    STAMP_BACKWARDS,
    STAMP_IN_FUTURE,
    SUPERSEDED,
    FrameSynchronizer,
    SyncedFrame,
    SyncFailure,
    SyncPolicy,
)

MS = 1_000_000
T0 = 1_700_000_000 * 1_000_000_000
NOW = T0 + 10_000 * MS


def _sync(**kwargs) -> FrameSynchronizer:
    return FrameSynchronizer(SyncPolicy(tolerance_ns=50 * MS, **kwargs))


def _cameras(sync, stamp, skip=(), offsets=None):
    results = []
    for name in ("f0", "l0", "r0", "b0"):
        if name in skip:
            continue
        results += sync.add_camera(name, stamp + (offsets or {}).get(name, 0), f"{name}@{stamp}", NOW)
    return results


def _odometry(sync, stamps_speeds, yaw_rate=0.0):
    results = []
    for stamp, speed in stamps_speeds:
        results += sync.add_odometry(stamp, speed, yaw_rate)
    return results


def test_complete_frame_interpolates_odometry():
    sync = _sync()
    assert _odometry(sync, [(T0 - 100 * MS, 4.0)]) == []
    assert _cameras(sync, T0) == []  # waits for odometry after the anchor
    (frame,) = _odometry(sync, [(T0 + 100 * MS, 6.0)])
    assert isinstance(frame, SyncedFrame)
    assert frame.stamp_ns == T0 and frame.filled == ()
    assert frame.cameras == {"f0": f"f0@{T0}", "l0": f"l0@{T0}", "r0": f"r0@{T0}", "b0": f"b0@{T0}"}
    assert frame.speed_mps == pytest.approx(5.0)


def test_side_camera_within_tolerance_is_matched_to_the_closest():
    sync = _sync()
    _odometry(sync, [(T0 - 10 * MS, 1.0)])
    _cameras(sync, T0, offsets={"l0": -40 * MS, "r0": 30 * MS, "b0": 49 * MS})
    # l0 is early: a later l0 could still be closer, so the frame waits for it.
    assert _odometry(sync, [(T0 + 10 * MS, 1.0)]) == []
    (frame,) = sync.add_camera("l0", T0 + 60 * MS, "late", NOW)
    assert frame.cameras["l0"] == f"l0@{T0}"  # the message 40 ms early, not the "late" one


def test_side_camera_out_of_tolerance_skips_the_frame():
    sync = _sync()
    _odometry(sync, [(T0 - 10 * MS, 1.0), (T0 + 10 * MS, 1.0)])
    results = _cameras(sync, T0, offsets={"r0": 80 * MS})
    (failure,) = results
    assert isinstance(failure, SyncFailure) and failure.reason == CAMERA_MISSING
    assert "camera r0: no message within 50.0 ms" in failure.detail


def test_missing_side_camera_waits_until_the_next_anchor_then_fills_black():
    sync = _sync(fill_missing_cameras=True)
    _odometry(sync, [(T0 - 10 * MS, 1.0), (T0 + 10 * MS, 1.0)])
    assert _cameras(sync, T0, skip=("b0",)) == []
    (frame,) = sync.add_camera("f0", T0 + 100 * MS, "next", NOW)
    assert frame.filled == ("b0",) and frame.cameras["b0"] is None


def test_flush_resolves_a_pending_anchor_after_its_deadline():
    sync = _sync()
    _odometry(sync, [(T0 - 10 * MS, 1.0), (T0 + 10 * MS, 1.0)])
    _cameras(sync, T0, skip=("l0",))  # arrives at NOW
    assert sync.flush(NOW + 1040 * MS) == []
    (failure,) = sync.flush(NOW + 1060 * MS)
    assert failure.reason == CAMERA_MISSING


def test_newest_odometry_is_used_up_to_the_tolerance():
    sync = _sync()
    _odometry(sync, [(T0 - 100 * MS, 2.0), (T0 - 40 * MS, 3.0)])
    _cameras(sync, T0)
    (frame,) = sync.flush()
    assert frame.speed_mps == 3.0


def test_stale_odometry_rejects_the_frame():
    sync = _sync()
    _odometry(sync, [(T0 - 100 * MS, 2.0), (T0 - 60 * MS, 3.0)])
    _cameras(sync, T0)
    (failure,) = sync.flush()
    assert failure.reason == ODOMETRY_UNAVAILABLE and "60.0 ms older than the frame" in failure.detail


def test_nan_odometry_fails_its_frame_and_the_next_frame_is_fine():
    sync = _sync()
    _odometry(sync, [(T0 - 50 * MS, 1.0)])
    sync.add_odometry(T0 + 50 * MS, math.nan, 0.0)
    (failure,) = _cameras(sync, T0)
    assert failure.reason == ODOMETRY_UNAVAILABLE and "NaN/inf" in failure.detail
    _odometry(sync, [(T0 + 150 * MS, 1.0), (T0 + 250 * MS, 1.0)])
    (frame,) = _cameras(sync, T0 + 200 * MS)
    assert isinstance(frame, SyncedFrame) and frame.speed_mps == 1.0


def test_stamps_going_backwards_reset_the_buffers():
    sync = _sync()
    _odometry(sync, [(T0 - 10 * MS, 1.0), (T0 + 10 * MS, 1.0)])
    assert isinstance(_cameras(sync, T0)[0], SyncedFrame)
    (failure,) = sync.add_camera("f0", T0 - 2_000 * MS, "loop", NOW)
    assert failure.reason == STAMP_BACKWARDS and "went back 2.000 s" in failure.detail
    assert len(sync.odometry) == 0
    later = T0 - 1_900 * MS
    _odometry(sync, [(later - 10 * MS, 2.0), (later + 10 * MS, 2.0)])
    assert isinstance(_cameras(sync, later)[0], SyncedFrame)


def test_duplicate_anchor_stamp_is_skipped_without_reset():
    sync = _sync()
    _odometry(sync, [(T0 - 10 * MS, 1.0), (T0 + 10 * MS, 1.0)])
    assert isinstance(_cameras(sync, T0)[0], SyncedFrame)
    (failure,) = sync.add_camera("f0", T0, "again", NOW)
    assert failure.reason == DUPLICATE_STAMP and len(sync.odometry) == 2


def test_small_step_back_skips_the_frame_but_keeps_the_buffers():
    sync = _sync()
    _odometry(sync, [(T0 - 10 * MS, 1.0), (T0 + 10 * MS, 1.0)])
    assert isinstance(_cameras(sync, T0)[0], SyncedFrame)
    (failure,) = sync.add_camera("f0", T0 - 30 * MS, "late", NOW)  # within the 50 ms tolerance
    assert failure.reason == STAMP_BACKWARDS and "buffers reset" not in failure.detail
    assert len(sync.odometry) == 2


def test_stale_anchor_is_rejected_only_with_an_age_limit():
    stale = NOW - 3_600_000 * MS  # one hour old
    (failure,) = _sync(max_age_ns=1_000 * MS).add_camera("f0", stale, "old", NOW)
    assert failure.reason == STALE_INPUT and "3600.00 s old (limit 1 s)" in failure.detail
    assert _sync().add_camera("f0", stale, "old", NOW) == []  # off: waits for its inputs


def test_reversing_is_skipped_and_standstill_jitter_is_planned():
    sync = _sync()
    for stamp in (T0 - 10 * MS, T0 + 10 * MS):
        sync.add_odometry(stamp, 5.0, 0.0, -5.0)
    (failure,) = _cameras(sync, T0)
    assert failure.reason == REVERSING and "reversing at -5.00 m/s" in failure.detail
    later = T0 + 100 * MS
    for stamp in (later - 10 * MS, later + 10 * MS):
        sync.add_odometry(stamp, 0.2, 0.0, -0.2)
    (frame,) = _cameras(sync, later)
    assert isinstance(frame, SyncedFrame) and frame.speed_mps == pytest.approx(0.2)


def test_stamps_far_in_the_future_are_rejected():
    sync = _sync(max_future_ns=1_000 * MS)
    (failure,) = sync.add_camera("f0", NOW + 5_000 * MS, "x", NOW)
    assert failure.reason == STAMP_IN_FUTURE and "5.00 s ahead" in failure.detail


def test_acceleration_from_odometry_longitudinal_and_centripetal():
    sync = _sync()
    # Speed grows 1 m/s per second and the vehicle turns at 0.2 rad/s.
    samples = [(T0 - k * 100 * MS, 5.0 - 0.1 * k) for k in range(6, -3, -1)]
    for stamp, speed in samples:
        sync.add_odometry(stamp, speed, 0.2)
    (frame,) = _cameras(sync, T0)
    assert frame.speed_mps == pytest.approx(5.0)
    assert frame.acceleration_estimated
    assert frame.acceleration_mps2 == pytest.approx(math.hypot(1.0, 5.0 * 0.2))


def test_acceleration_is_zero_with_fewer_than_two_samples_in_the_window():
    sync = _sync()
    _odometry(sync, [(T0 - 600 * MS, 1.0), (T0 + 10 * MS, 3.0)])
    (frame,) = _cameras(sync, T0)
    assert frame.acceleration_mps2 == 0.0 and not frame.acceleration_estimated


def test_imu_acceleration_source():
    sync = _sync(acceleration_source="imu")
    _odometry(sync, [(T0 - 10 * MS, 1.0), (T0 + 10 * MS, 1.0)])
    sync.add_imu(T0 - 20 * MS, 1.0)
    assert _cameras(sync, T0) == []  # waits for an IMU sample after the anchor
    (frame,) = sync.add_imu(T0 + 20 * MS, 2.0)
    assert frame.acceleration_mps2 == pytest.approx(1.5)
    sync2 = _sync(acceleration_source="imu")
    _odometry(sync2, [(T0 - 10 * MS, 1.0), (T0 + 10 * MS, 1.0)])
    _cameras(sync2, T0)
    (failure,) = sync2.flush()
    assert failure.reason == IMU_UNAVAILABLE and "imu: no sample received" in failure.detail


def test_stitched_mode_has_no_side_cameras():
    sync = _sync(camera_mode="stitched")
    _odometry(sync, [(T0 - 10 * MS, 1.0), (T0 + 10 * MS, 1.0)])
    (frame,) = sync.add_camera("image", T0, "stitched", NOW)
    assert frame.cameras == {"image": "stitched"}
    with pytest.raises(ValueError, match="camera 'f0' is not an input in camera mode stitched"):
        sync.add_camera("f0", T0, "x", NOW)


def test_side_camera_buffers_are_bounded_by_age_with_anchors_flowing():
    """Each side camera kept 16 messages whatever their age: twenty 7680x4320 frames held
    6.9 GB after the stream stopped. Now only what an anchor can still match is kept."""
    sync = _sync()
    frames = []
    for k in range(60):  # 30 Hz side cameras, 10 Hz anchors, 50 Hz odometry
        stamp = T0 + k * 33 * MS
        for name in ("l0", "r0", "b0"):
            frames += sync.add_camera(name, stamp, f"{name}@{stamp}", NOW)
        frames += _odometry(sync, [(stamp, 5.0), (stamp + 20 * MS, 5.0)])
        if k % 3 == 0:
            frames += sync.add_camera("f0", stamp, f"f0@{stamp}", NOW)
        # From 50 ms before the last anchor on: at most 5 (the old buffers grew to 16).
        assert all(len(buffer) <= 5 for buffer in sync._cameras.values()), k
    planned = [f for f in frames if isinstance(f, SyncedFrame)]
    assert len(planned) == 20 and all(f.cameras["l0"] == f"l0@{f.stamp_ns}" for f in planned)


def test_side_camera_buffers_are_bounded_by_age_when_the_anchor_is_dead():
    sync = _sync()
    for k in range(40):  # 10 Hz for 4 s, no anchor at all
        for name in ("l0", "r0", "b0"):
            sync.add_camera(name, T0 + k * 100 * MS, "payload", NOW)
    # Within 50 ms tolerance + 500 ms of the newest: 6 messages (was 16).
    assert [len(buffer) for buffer in sync._cameras.values()] == [6, 6, 6]


def test_an_anchor_whose_side_image_was_replaced_before_it_was_taken_is_superseded_not_missing():
    """The live node takes images only when the planner can use a frame; DDS replaced l0's
    image of frame T0 by the next one (a gap in l0's publication numbers): frame T0 is
    superseded by the frame planned instead, never reported as a camera that sent nothing."""
    sync = _sync()
    _odometry(sync, [(T0 - 10 * MS, 1.0), (T0 + 210 * MS, 1.0)])
    sync.add_camera("l0", T0 - 100 * MS, "l0 before", NOW)
    assert _cameras(sync, T0, skip=("l0",)) == []
    # l0's next image taken is T0 + 100 ms, with its T0 image never taken before it.
    (failure,) = sync.add_camera("l0", T0 + 100 * MS, "l0 after", NOW, unseen_before=True)
    assert failure.reason == SUPERSEDED and "camera l0" in failure.detail and "replaced" in failure.detail
    # The same frame when l0 sent nothing at T0 (no gap): camera_missing, as before.
    sync = _sync()
    _odometry(sync, [(T0 - 10 * MS, 1.0), (T0 + 210 * MS, 1.0)])
    sync.add_camera("l0", T0 - 100 * MS, "l0 before", NOW)
    _cameras(sync, T0, skip=("l0",))
    (failure,) = sync.add_camera("l0", T0 + 100 * MS, "l0 after", NOW)
    assert failure.reason == CAMERA_MISSING


def test_images_never_taken_far_from_the_anchor_do_not_excuse_a_missing_camera():
    sync = _sync()
    _odometry(sync, [(T0 - 10 * MS, 1.0), (T0 + 510 * MS, 1.0)])
    sync.add_camera("l0", T0 - 400 * MS, "old", NOW)
    sync.add_camera("l0", T0 - 200 * MS, "gap ended long before the frame", NOW, unseen_before=True)
    _cameras(sync, T0, skip=("l0",))
    (failure,) = sync.add_camera("l0", T0 + 300 * MS, "late", NOW)
    assert failure.reason == CAMERA_MISSING


def test_a_side_image_still_on_its_way_when_the_next_anchor_comes_is_superseded_a_dead_camera_is_missing():
    """Transport delays differ per camera: l0's image of a frame may come after f0's of the
    next frame. Such a frame is superseded (the newer one is planned instead) while l0 still
    delivers; once l0's newest image is more than the tolerance + 0.5 s older than a frame, l0
    has stopped and the frame is camera_missing."""
    sync = _sync()
    _odometry(sync, [(T0 - 10 * MS, 1.0), (T0 + 10 * MS, 1.0)])
    (planned,) = _cameras(sync, T0)
    assert isinstance(planned, SyncedFrame)
    _odometry(sync, [(T0 + k * 100 * MS + 20 * MS, 1.0) for k in range(1, 12)])
    assert _cameras(sync, T0 + 100 * MS, skip=("l0",)) == []  # l0's image of it still on its way
    reasons = {}
    for k in range(2, 11):
        (resolved,) = _cameras(sync, T0 + k * 100 * MS, skip=("l0",))
        reasons[(resolved.stamp_ns - T0) // MS] = resolved.reason
        assert "camera l0" in resolved.detail
    # l0's newest image is T0: frames up to 550 ms after it wait for l0, later ones miss it.
    assert reasons == {100 * k: SUPERSEDED if k <= 5 else CAMERA_MISSING for k in range(1, 10)}
