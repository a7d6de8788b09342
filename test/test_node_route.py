"""lead_planner with a route in (command_input: route) and the plan in the odometry frame
out (~/output/path_odom)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import DATA, read_rgb
from lead_ros.observation import Command, Observation

MS = 1_000_000
STITCHED = read_rgb(DATA / "images" / "case_01.png")
# 10 m straight along +x from (100, 50), then turning left: from the ego at (100, 50)
# heading +x, the point 20 m along lies 5 m to the left (lateral 5 >= 2: left).
LEFT_ROUTE = [(100.0, 50.0), (110.0, 50.0), (110.0 + 2 * math.sqrt(75.0), 60.0)]


def _xy(path) -> np.ndarray:
    return np.array([(p.pose.position.x, p.pose.position.y) for p in path.poses])


def _yaws(path) -> np.ndarray:
    return np.array([2 * math.atan2(p.pose.orientation.z, p.pose.orientation.w) for p in path.poses])


def test_route_command_drives_the_plan(harness, planner):
    h = harness(camera_mode="stitched", command_input="route", default_command=1)
    assert not any(s.topic_name.endswith("/input/command") for s in h.node._inputs)
    h.send_route(LEFT_ROUTE)
    h.wait_for(lambda: h.node.stats.snapshot()["inputs"]["route"][0] == 1, what="route received")
    stamp = h.now_ns()
    h.send_frame({"image": STITCHED}, stamp, speed=5.0, pose=(100.0, 50.0, 0.0))
    (path,) = h.wait_paths(1)
    derived = planner.plan(Observation(5.0, 0.0, Command.LEFT, image=STITCHED))
    default = planner.plan(Observation(5.0, 0.0, Command.STRAIGHT, image=STITCHED))
    np.testing.assert_allclose(_xy(path), derived.waypoints, atol=1e-4)
    assert np.abs(_xy(path) - default.waypoints).max() > 1e-3
    state = h.node.intake.command_state(h.now_ns())
    assert (state.command, state.source) == (Command.LEFT, "received")
    assert state.lateral_m == pytest.approx(5.0, abs=1e-9)
    h.wait_for(lambda: any(_command_status(d)["command_input"] == "route" for d in h.diagnostics), what="diag")
    values = next(_command_status(d) for d in reversed(h.diagnostics) if _command_status(d)["command_input"] == "route")
    assert values["command"] == "left" and values["source"] == "received" and values["route_lateral_m"] == "5.00"


def _command_status(diagnostics) -> dict:
    status = next(s for s in diagnostics.status if s.name.endswith(": command"))
    return {kv.key: kv.value for kv in status.values}


def test_a_route_in_another_frame_is_rejected(harness, planner):
    h = harness(camera_mode="stitched", command_input="route", default_command=1)
    # Held before any odometry: checked at the first frame, which falls back to the default.
    h.send_route(LEFT_ROUTE, frame_id="map")
    h.wait_for(lambda: h.node.stats.snapshot()["inputs"]["route"][0] == 1, what="route received")
    stamp = h.now_ns()
    h.send_frame({"image": STITCHED}, stamp, pose=(100.0, 50.0, 0.0))
    (path,) = h.wait_paths(1)
    default = planner.plan(Observation(5.0, 0.0, Command.STRAIGHT, image=STITCHED))
    np.testing.assert_allclose(_xy(path), default.waypoints, atol=1e-4)
    source = h.node.intake.route.last.source
    assert source.startswith("default: route: frame_id 'map' is not the odometry frame 'odom'")
    # Once the odometry frame is known, a route in another frame is rejected on arrival.
    h.send_route(LEFT_ROUTE, frame_id="map")
    h.wait_for(lambda: h.node.stats.snapshot()["inputs"]["route"][1] == 1, what="route rejected")
    # The same route in the odometry frame is used.
    h.send_route(LEFT_ROUTE, frame_id="odom")
    h.wait_for(lambda: h.node.stats.snapshot()["inputs"]["route"][0] == 3, what="route received")
    h.send_frame({"image": STITCHED}, h.now_ns(), pose=(100.0, 50.0, 0.0))
    paths = h.wait_paths(2)
    derived = planner.plan(Observation(5.0, 0.0, Command.LEFT, image=STITCHED))
    np.testing.assert_allclose(_xy(paths[1]), derived.waypoints, atol=1e-4)


def test_path_in_the_odometry_frame(harness):
    h = harness(camera_mode="stitched", record_odometry_paths=True, prepend_origin_pose=True)
    h.wait_for(lambda: h.node.outputs["path_odom"].get_subscription_count() > 0, what="path_odom subscriber")
    stamp = h.now_ns()
    x0, y0, yaw0 = -12.5, 40.0, 2.4  # rotated (beyond 90 degrees) and translated
    h.send_frame({"image": STITCHED}, stamp, pose=(x0, y0, yaw0), odometry_frame="odom_frame")
    (path,) = h.wait_paths(1)
    h.wait_for(lambda: len(h.odometry_paths) == 1, what="path_odom")
    odom = h.odometry_paths[0]
    assert odom.header.frame_id == "odom_frame" and odom.header.stamp == path.header.stamp
    assert [p.header.stamp for p in odom.poses] == [p.header.stamp for p in path.poses]
    assert all(p.header.frame_id == "odom_frame" for p in odom.poses)
    local, local_yaw = _xy(path), _yaws(path)
    expected = np.array(
        [(x0 + math.cos(yaw0) * x - math.sin(yaw0) * y, y0 + math.sin(yaw0) * x + math.cos(yaw0) * y) for x, y in local]
    )
    np.testing.assert_allclose(_xy(odom), expected, atol=1e-9)
    np.testing.assert_allclose(_xy(odom)[0], (x0, y0), atol=1e-12)  # the prepended origin is the ego
    turn = (_yaws(odom) - local_yaw - yaw0 + math.pi) % (2 * math.pi) - math.pi
    np.testing.assert_allclose(turn, 0.0, atol=1e-9)


def test_path_odom_is_not_computed_without_subscribers(harness):
    h = harness(camera_mode="stitched")
    assert h.node.outputs["path_odom"].get_subscription_count() == 0
    h.send_frame({"image": STITCHED}, h.now_ns(), pose=(1.0, 2.0, 0.3))
    h.wait_paths(1)
    assert h.odometry_paths == []


@pytest.mark.parametrize(
    ("route", "reason"),
    [
        ([(0.0, 0.0), (1e200, 1e200), (2e200, 0.0)], "beyond the plausible extent"),
        ([(0.0, 0.0), (1e-200, 0.0)], "shorter than 1e-06 m"),
    ],
)
def test_an_implausible_route_is_refused_on_arrival_and_the_default_applies(harness, planner, route, reason):
    """These two routes ended the lead_planner process at the next frame (found by an
    independent check). Now: refused on arrival with a reason, frames planned with the
    default command, no exception anywhere (the harness checks the node's counter)."""
    h = harness(camera_mode="stitched", command_input="route", default_command=1)
    h.send_frame({"image": STITCHED}, h.now_ns())  # odometry first: the route is checked on arrival
    h.wait_paths(1)
    h.send_route(route)
    h.wait_for(lambda: h.node.stats.snapshot()["inputs"]["route"][1] == 1, what="route rejected")
    h.send_frame({"image": STITCHED}, h.now_ns())
    paths = h.wait_paths(2)
    default = planner.plan(Observation(5.0, 0.0, Command.STRAIGHT, image=STITCHED))
    np.testing.assert_allclose(_xy(paths[1]), default.waypoints, atol=1e-4)
    state = h.node.intake.route.last
    assert state.command is Command.STRAIGHT and reason in state.source


def test_path_odom_is_never_blended_across_an_odometry_frame_change(harness, planner):
    """Odometry switches from odom to odom2 (origins 100 m apart) between the samples around
    a camera frame: the base_link path is published, path_odom is not (counted, named); the
    next frame, all in odom2, gets its path_odom in odom2."""
    h = harness(camera_mode="stitched", record_odometry_paths=True)
    h.wait_for(lambda: h.node.outputs["path_odom"].get_subscription_count() > 0, what="path_odom subscriber")
    stamp = h.now_ns()
    for dt, frame, x in ((-300, "odom", 0.0), (-200, "odom", 0.5), (-100, "odom", 1.0), (20, "odom2", 101.6)):
        h.send_odometry(stamp + dt * MS, 5.0, pose=(x, 0.0, 0.0), frame_id=frame)
    h.send_images({"image": STITCHED}, stamp)
    h.wait_paths(1)
    h.wait_for(lambda: h.node.stats.snapshot()["degraded"].get("path_odom_no_pose") == 1, what="counted")
    assert h.odometry_paths == []
    h.send_frame({"image": STITCHED}, h.now_ns(), pose=(104.0, 0.0, 0.0), odometry_frame="odom2")
    h.wait_paths(2)
    h.wait_for(lambda: len(h.odometry_paths) == 1, what="path_odom")
    odom = h.odometry_paths[0]
    assert odom.header.frame_id == "odom2"
    np.testing.assert_allclose(_xy(odom), _xy(h.paths[1]) + np.array([104.0, 0.0]), atol=1e-9)
