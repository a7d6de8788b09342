"""CARLA -> ISO 8855 conversion and heading quaternions."""

from __future__ import annotations

import numpy as np

from conftest import load_cases
from lead_ros.frames import carla_to_iso8855, yaw_to_quaternion


def test_golden_outputs_convert_to_the_reference_iso_frame():
    for case in load_cases():
        ref = case["outputs_float64"]
        waypoints, headings = carla_to_iso8855(np.array(ref["waypoints_carla"]), np.array(ref["headings_carla"]))
        np.testing.assert_array_equal(waypoints, ref["waypoints_iso8855"])
        np.testing.assert_array_equal(headings, ref["headings_iso8855"])


def test_a_right_turn_in_carla_is_negative_y_in_iso():
    # CARLA: y right and heading clockwise positive; a right turn ends at +y with +heading.
    waypoints, headings = carla_to_iso8855(np.array([[5.0, 2.0]]), np.array([0.3]))
    assert waypoints[0, 0] == 5.0 and waypoints[0, 1] == -2.0
    assert headings[0] == -0.3


def test_conversion_does_not_modify_its_input():
    original = np.array([[1.0, 2.0]])
    carla_to_iso8855(original, np.array([0.1]))
    assert original[0, 1] == 2.0


def test_quaternions_are_unit_rotations_about_z_that_recover_the_yaw():
    yaws = np.linspace(-3.1, 3.1, 25)
    q = yaw_to_quaternion(yaws)
    assert q.shape == (25, 4)
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0)
    np.testing.assert_array_equal(q[:, :2], 0.0)
    np.testing.assert_allclose(2 * np.arctan2(q[:, 2], q[:, 3]), yaws)
    # +90 degrees about z maps x forward to y left.
    x, y, z, w = yaw_to_quaternion(np.pi / 2)
    rotated_x_axis = (1 - 2 * (y * y + z * z), 2 * (x * y + z * w))
    np.testing.assert_allclose(rotated_x_axis, (0.0, 1.0), atol=1e-12)
