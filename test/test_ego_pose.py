"""Ego pose from odometry (lead_ros.inputs.ego_state.PoseTrack) and the base_link <-> odometry
frame conversions it feeds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lead_ros.frames import base_link_to_odometry, odometry_to_base_link, quaternion_to_yaw, wrap_angle
from lead_ros.inputs.ego_state import EgoPose, PoseTrack
from lead_ros.inputs.sync import FrameSynchronizer, SyncPolicy

MS = 1_000_000
TOLERANCE = 50 * MS


def _track(*samples) -> PoseTrack:
    track = PoseTrack("odometry pose", horizon_ns=10**12)
    for stamp, pose in samples:
        track.add_pose(stamp, *pose)
    return track


def test_position_is_linear_and_yaw_takes_the_shortest_arc():
    # Yaw 170 deg -> -170 deg: the short way is +20 deg through 180, not -340 deg through 0.
    track = _track((0, (0.0, 0.0, 0.0, math.radians(170))), (100 * MS, (10.0, -4.0, 1.0, math.radians(-170))))
    pose = track.pose_at(25 * MS, TOLERANCE).pose
    assert (pose.x, pose.y, pose.z) == pytest.approx((2.5, -1.0, 0.25))
    assert pose.yaw == pytest.approx(math.radians(175))
    halfway = track.pose_at(50 * MS, TOLERANCE).pose
    assert abs(halfway.yaw) == pytest.approx(math.pi)
    past = track.pose_at(75 * MS, TOLERANCE).pose
    assert past.yaw == pytest.approx(math.radians(-175))  # wrapped into (-pi, pi]


def test_same_tolerance_rules_as_other_samples():
    track = _track((100 * MS, (1.0, 2.0, 0.0, 0.5)), (200 * MS, (3.0, 2.0, 0.0, 0.5)))
    assert track.pose_at(100 * MS, TOLERANCE).pose == EgoPose(1.0, 2.0, 0.0, 0.5)
    assert track.pose_at(240 * MS, TOLERANCE).pose == EgoPose(3.0, 2.0, 0.0, 0.5)  # newest, within tolerance
    late = track.pose_at(260 * MS, TOLERANCE)
    assert late.pose is None and "odometry pose: newest sample is 60.0 ms older than the frame" in late.error
    early = track.pose_at(40 * MS, TOLERANCE)
    assert early.pose is None and "no sample before the frame" in early.error
    assert PoseTrack("odometry pose", 10**9).pose_at(0, TOLERANCE).error == "odometry pose: no sample received"


def test_an_invalid_pose_fails_the_lookups_that_would_use_it():
    track = _track((0, (0.0, 0.0, 0.0, 0.0)), (100 * MS, (1.0, 0.0, 0.0, float("nan"))), (200 * MS, (2.0, 0, 0, 0)))
    assert track.pose_at(50 * MS, TOLERANCE).pose is None
    assert track.pose_at(150 * MS, TOLERANCE).pose is None
    assert track.pose_at(0, TOLERANCE).pose is not None


def test_synchronized_frames_carry_the_pose_at_the_anchor_stamp():
    sync = FrameSynchronizer(SyncPolicy(camera_mode="stitched"))
    sync.add_odometry(0, 5.0, 0.1, pose=EgoPose(0.0, 0.0, 0.0, 0.0))
    sync.add_camera("image", 40 * MS, "payload", now_ns=0)
    (frame,) = sync.add_odometry(100 * MS, 5.0, 0.1, pose=EgoPose(0.5, 0.1, 0.0, 0.01))
    assert frame.pose == EgoPose(pytest.approx(0.2), pytest.approx(0.04), 0.0, pytest.approx(0.004))
    assert frame.pose_error is None
    sync = FrameSynchronizer(SyncPolicy(camera_mode="stitched"))  # odometry without a pose
    sync.add_odometry(0, 5.0, 0.1)
    sync.add_camera("image", 40 * MS, "payload", now_ns=0)
    (frame,) = sync.add_odometry(100 * MS, 5.0, 0.1)
    assert frame.pose is None and frame.pose_error == "odometry pose: no sample received"
    assert frame.speed_mps == 5.0  # planning itself does not need the pose


def test_base_link_to_odometry_rotates_then_translates():
    # Vehicle at (10, -3) facing +y (yaw 90 deg): 1 m ahead is (10, -2), 1 m left is (9, -3).
    points, headings = base_link_to_odometry(
        (10.0, -3.0), math.pi / 2, np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0.0, math.pi])
    )
    np.testing.assert_allclose(points, [[10.0, -2.0], [9.0, -3.0]], atol=1e-12)
    np.testing.assert_allclose(headings, [math.pi / 2, -math.pi / 2], atol=1e-12)
    back, back_headings = odometry_to_base_link((10.0, -3.0), math.pi / 2, points, headings)
    np.testing.assert_allclose(back, [[1.0, 0.0], [0.0, 1.0]], atol=1e-12)
    np.testing.assert_allclose(wrap_angle(back_headings - np.array([0.0, math.pi])), 0.0, atol=1e-12)


def test_wrap_angle_and_quaternion_yaw():
    np.testing.assert_allclose(
        wrap_angle([math.pi, -math.pi, 3 * math.pi, 0.5, -4.0]), [math.pi, math.pi, math.pi, 0.5, -4.0 + 2 * math.pi]
    )
    for yaw in (-3.0, -1.0, 0.0, 0.7, 3.1):
        q = (0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2))
        assert quaternion_to_yaw(*q) == pytest.approx(yaw)
        assert quaternion_to_yaw(*(2.0 * c for c in q)) == pytest.approx(yaw)  # not normalized
    assert math.isnan(quaternion_to_yaw(0.0, 0.0, 0.0, 0.0))


def test_no_pose_is_interpolated_across_an_odometry_frame_change():
    """odom -> odom2 (origins 100 m apart) between the samples around a frame: the node used
    to publish a pose blended from both (x 85.9 m, in neither frame)."""
    sync = FrameSynchronizer(SyncPolicy(camera_mode="stitched", tolerance_ns=50 * MS))
    sync.add_odometry(0, 5.0, 0.0, pose=EgoPose(0.0, 0.0, 0.0, 0.0), frame_id="odom")
    sync.add_odometry(40 * MS, 5.0, 0.0, pose=EgoPose(0.2, 0.0, 0.0, 0.0), frame_id="odom")
    sync.add_camera("image", 50 * MS, "straddling", 0)
    (frame,) = sync.add_odometry(60 * MS, 5.0, 0.0, pose=EgoPose(100.3, 0.0, 0.0, 0.0), frame_id="odom2")
    assert frame.pose is None and frame.pose_frame is None
    assert frame.pose_error.startswith("odometry pose: the odometry frame changed from 'odom' to 'odom2' at 0.060 s")
    assert frame.speed_mps == 5.0, "speed and the base_link plan are not affected"
    # The track restarted on odom2: a frame after the change gets a pose there only.
    sync.add_camera("image", 100 * MS, "after", 0)
    (after,) = sync.add_odometry(120 * MS, 5.0, 0.0, pose=EgoPose(100.6, 0.0, 0.0, 0.0), frame_id="odom2")
    assert after.pose_frame == "odom2" and after.pose.x == pytest.approx(100.3 + 0.3 * 40 / 60)


def test_the_pose_track_keeps_one_frame():
    track = PoseTrack("odometry pose", horizon_ns=10**12)
    track.add_pose(0, 1.0, 0.0, 0.0, 0.0, "odom")
    track.add_pose(100 * MS, 2.0, 0.0, 0.0, 0.0, "odom")
    assert track.pose_at(50 * MS, TOLERANCE).pose.x == pytest.approx(1.5)
    track.add_pose(200 * MS, 50.0, 0.0, 0.0, 0.0, "map")
    assert track.frame_id == "map" and len(track) == 1
    assert "changed from 'odom' to 'map'" in track.pose_at(150 * MS, TOLERANCE).error
    assert track.pose_at(200 * MS, TOLERANCE).pose.x == 50.0
