"""NAVSIM's route rule (lead_ros.inputs.route) on hand-built routes. Every expected command and
lateral value is worked out here from the route's geometry, not by calling the rule."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from lead_ros.inputs.command import CommandState
from lead_ros.inputs.ego_state import EgoPose
from lead_ros.inputs.route import RouteRule, RouteTracker, derive_command
from lead_ros.observation import Command

RULE = RouteRule(lookahead_m=20.0, lateral_threshold_m=2.0, max_offset_m=10.0)


def _bent(lateral_at_20m: float) -> np.ndarray:
    """10 m straight along +x, then a 20 m segment turned so that the point 20 m along the
    route from the origin lies ``lateral_at_20m`` to the left: (10 + sqrt(100 - y^2), y)."""
    return np.array([[0.0, 0.0], [10.0, 0.0], [10.0 + 2.0 * math.sqrt(100.0 - lateral_at_20m**2), 2 * lateral_at_20m]])


def _circle(radius: float, step_rad: float, sign: float, count: int = 200) -> np.ndarray:
    """Vertices on a circle through the origin heading +x, turning left (+1) or right (-1)."""
    angles = np.arange(count) * step_rad
    return np.stack((radius * np.sin(angles), sign * radius * (1.0 - np.cos(angles))), axis=1)


def test_straight_route_is_straight_with_zero_lateral():
    route = np.array([[0.0, 0.0], [100.0, 0.0]])
    result = derive_command(route, (10.0, 0.5), RULE)
    assert result.command is Command.STRAIGHT
    assert result.lateral_m == 0.0 and result.arc_length_m == 10.0 and result.offset_m == 0.5


@pytest.mark.parametrize(
    ("lateral", "expected"),
    [
        (2.0 + 1e-3, Command.LEFT),
        (2.0 - 1e-3, Command.STRAIGHT),
        (2.0, Command.LEFT),
        (-2.0 - 1e-3, Command.RIGHT),
        (-2.0 + 1e-3, Command.STRAIGHT),
        (-2.0, Command.RIGHT),
    ],
)
def test_lateral_thresholds(lateral, expected):
    result = derive_command(_bent(lateral), (0.0, 0.0), RULE)
    assert result.command is expected
    assert result.lateral_m == pytest.approx(lateral, abs=1e-9)


@pytest.mark.parametrize(("sign", "expected"), [(1.0, Command.LEFT), (-1.0, Command.RIGHT)])
def test_curves_with_identity_orientations(sign, expected):
    """A polyline on a circle (radius 30 m, 2 degree steps): the pose at s is the first chord's
    direction, the look-ahead point lies on chord k = floor(20 / c) at 20 - k c along it."""
    radius, step = 30.0, math.radians(2.0)
    route = _circle(radius, step, sign)
    chord = 2.0 * radius * math.sin(step / 2.0)
    k = int(20.0 // chord)
    heading = sign * step / 2.0
    ahead_direction = sign * (k + 0.5) * step
    ahead = route[k] + (20.0 - k * chord) * np.array([math.cos(ahead_direction), math.sin(ahead_direction)])
    lateral = -math.sin(heading) * ahead[0] + math.cos(heading) * ahead[1]
    result = derive_command(route, (0.0, 0.0), RULE)
    assert result.command is expected
    assert result.lateral_m == pytest.approx(lateral, abs=1e-9)
    assert abs(lateral) > 2.0


def test_ego_beside_a_curve_projects_to_the_nearest_point():
    """An ego 1.5 m outside the left circle at vertex 10 projects onto that vertex (s = 10 c)."""
    radius, step = 30.0, math.radians(2.0)
    route = _circle(radius, step, 1.0)
    chord = 2.0 * radius * math.sin(step / 2.0)
    centre = np.array([0.0, radius])
    outward = (route[10] - centre) / np.linalg.norm(route[10] - centre)
    ego = route[10] + 1.5 * outward
    result = derive_command(route, tuple(ego), RULE)
    assert result.arc_length_m == pytest.approx(10 * chord, abs=1e-9)
    assert result.offset_m == pytest.approx(1.5, abs=1e-9)
    assert result.command is Command.LEFT


def test_ego_behind_the_start_clamps_to_s_zero():
    route = _bent(3.0)  # left 3 m at 20 m from the start
    result = derive_command(route, (-4.0, 0.0), RULE)
    assert result.arc_length_m == 0.0 and result.offset_m == 4.0
    assert result.command is Command.LEFT and result.lateral_m == pytest.approx(3.0, abs=1e-9)


def test_ego_past_the_end_looks_at_the_end_point():
    route = np.array([[0.0, 0.0], [10.0, 0.0], [20.0, 5.0]])
    length = 10.0 + math.hypot(10.0, 5.0)
    result = derive_command(route, (25.0, 6.0), RULE)
    # s and s + 20 both clamp to L: the look-ahead point is the pose's own position.
    assert result.arc_length_m == pytest.approx(length, abs=1e-9)
    assert result.command is Command.STRAIGHT and result.lateral_m == pytest.approx(0.0, abs=1e-9)


def test_ego_near_the_end_uses_the_clamped_end_point():
    route = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]])  # a left corner, 20 m long
    result = derive_command(route, (5.0, 0.0), RULE)
    # s = 5, s + 20 = 25 clamps to L = 20: the point (10, 10) in the frame at (5, 0) heading +x.
    assert result.command is Command.LEFT and result.lateral_m == pytest.approx(10.0, abs=1e-12)


def test_ego_far_off_the_route_is_unusable():
    route = np.array([[0.0, 0.0], [100.0, 0.0]])
    result = derive_command(route, (50.0, 10.5), RULE)
    assert result.command is None and "10.5 m from the route" in result.problem
    assert derive_command(route, (50.0, 9.5), RULE).command is Command.STRAIGHT


def test_consecutive_duplicates_are_dropped():
    clean = _bent(2.5)
    duplicated = np.repeat(clean, [3, 2, 4], axis=0)
    a, b = derive_command(clean, (1.0, 0.0), RULE), derive_command(duplicated, (1.0, 0.0), RULE)
    assert a == b and b.command is Command.LEFT


@pytest.mark.parametrize("points", [np.zeros((0, 2)), np.array([[3.0, 4.0]]), np.array([[3.0, 4.0]] * 5)])
def test_fewer_than_two_distinct_points_is_unusable(points):
    result = derive_command(points, (3.0, 4.0), RULE)
    assert result.command is None and "at least 2 needed" in result.problem


def test_ties_take_the_smallest_arc_length():
    """A U-turn: the ego is equally far (5 m) from both legs; the first leg (smaller s) wins,
    so the look-ahead point is 20 m along from (10, 0), i.e. 10 m up the return leg."""
    route = np.array([[0.0, 0.0], [20.0, 0.0], [20.0, 10.0], [0.0, 10.0]])
    result = derive_command(route, (10.0, 5.0), RULE)
    assert result.arc_length_m == 10.0
    # From (10, 0) heading +x: 20 m along reaches (20, 10): lateral +10 -> left.
    assert result.command is Command.LEFT and result.lateral_m == pytest.approx(10.0, abs=1e-12)


def test_heading_at_a_vertex_is_the_next_segment():
    route = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 30.0]])
    result = derive_command(route, (10.0, 0.0), RULE)
    # s = 10 is the corner: its segment is the one going +y, so (10, 20) lies straight ahead.
    assert result.arc_length_m == 10.0
    assert result.command is Command.STRAIGHT and result.lateral_m == pytest.approx(0.0, abs=1e-12)


def test_tracker_frames_default_and_staleness():
    tracker = RouteTracker(Command.UNKNOWN, RULE, timeout_s=2.0)
    pose = EgoPose(0.0, 0.0, 0.0, 0.0)
    assert tracker.state(pose, "odom", 0) == CommandState(Command.UNKNOWN, "default: no route received yet", None)
    tracker.update(_bent(3.0), "map", 1_000_000_000)
    mismatched = tracker.state(pose, "odom", 1_500_000_000)
    assert mismatched.command is Command.UNKNOWN and "'map' is not the odometry frame 'odom'" in mismatched.source
    # Held before any odometry: nothing to compare with yet, so no mismatch is reported.
    assert tracker.frame_mismatch(None) is None
    tracker.update(_bent(3.0), "odom", 1_000_000_000)
    state = tracker.state(pose, "odom", 1_500_000_000)
    assert (state.command, state.source) == (Command.LEFT, "received")
    assert state.lateral_m == pytest.approx(3.0) and tracker.last == state
    assert tracker.state(None, "odom", 1_500_000_000).source == "default: no odometry pose at the frame"
    assert tracker.state(pose, "odom", 3_500_000_000).source == "default: route stale"


@pytest.mark.parametrize(
    ("points", "reason"),
    [
        ([[0.0, 0.0], [1e200, 1e200], [2e200, 0.0]], "beyond the plausible extent"),
        ([[0.0, 0.0], [1e-200, 0.0]], "shorter than 1e-06 m"),
        ([[0.0, 0.0], [5.0, 0.0], [5.0, 1e-200], [30.0, 0.0]], "shorter than 1e-06 m"),
        ([[0.0, 0.0], [math.nan, 1.0]], "NaN/inf"),
        (np.zeros((100_001, 2)), "at most 100000 accepted"),
    ],
)
def test_implausible_routes_are_refused_with_a_one_line_reason(points, reason):
    """Found by an independent check: these routes ended the node (overflow, then numpy's
    zero-size reduction). No numpy warning may be raised on the way either."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = derive_command(np.asarray(points), (0.0, 0.0), RULE)
    assert result.command is None and reason in result.problem and "\n" not in result.problem


@pytest.mark.parametrize("ego", [(1e300, 0.0), (math.inf, 0.0), (math.nan, 0.0)])
def test_an_implausible_ego_position_is_unusable_not_an_error(ego):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = derive_command(np.array([[0.0, 0.0], [100.0, 0.0]]), ego, RULE)
    assert result.command is None and "ego position" in result.problem


def test_a_route_at_map_scale_coordinates_still_works():
    """UTM-sized coordinates (5e6 m) are inside the plausible extent."""
    offset = np.array([4.5e5, 5.4e6])
    route = np.array([[0.0, 0.0], [10.0, 0.0], [40.0, 10.0]]) + offset
    near = derive_command(route - offset, (1.0, 0.0), RULE)
    far = derive_command(route, (offset[0] + 1.0, offset[1]), RULE)
    assert far.command is near.command is Command.LEFT
    assert far.lateral_m == pytest.approx(near.lateral_m, abs=1e-6)


def test_the_tracker_falls_back_to_the_default_for_a_refused_route():
    tracker = RouteTracker(Command.STRAIGHT, RULE)
    tracker.update(np.array([[0.0, 0.0], [1e200, 1e200], [2e200, 0.0]]), "odom", 1)
    state = tracker.state(EgoPose(0.0, 0.0, 0.0, 0.0), "odom", 2)
    assert state.command is Command.STRAIGHT and "plausible extent" in state.source
