"""lead_planner's perception outputs: ~/output/bev/<class> and ~/output/objects appear only
while subscribed (or with publish_perception), stamped like the path, and match the
planner's perception of the same frame."""

from __future__ import annotations

import numpy as np
import pytest
from nav_msgs.msg import OccupancyGrid
from rclpy.qos import QoSProfile, ReliabilityPolicy
from visualization_msgs.msg import Marker, MarkerArray

from conftest import DATA, read_rgb
from lead_ros.observation import Command, Observation
from lead_ros.perception.bev import CLASS_NAMES

STITCHED = read_rgb(DATA / "images" / "case_01.png")
QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)


@pytest.fixture
def perception_flags(planner, monkeypatch):
    """Records the ``perception`` argument of every Planner.plan call."""
    flags = []
    original = planner.plan

    def spy(observation, perception=False, reprojection=None):
        flags.append(perception)
        return original(observation, perception=perception, reprojection=reprojection)

    monkeypatch.setattr(planner, "plan", spy)
    return flags


def _subscribe(h, msg_type, topic: str) -> list:
    received = []
    h.driver.create_subscription(msg_type, f"{h.namespace}/lead_planner/output/{topic}", received.append, QOS)
    return received


def _stamp(msg) -> int:
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


def test_perception_runs_only_while_subscribed(harness, perception_flags):
    h = harness(camera_mode="stitched")
    h.send_frame({"image": STITCHED}, h.now_ns())
    h.wait_paths(1)
    assert perception_flags == [False]
    vehicles = _subscribe(h, OccupancyGrid, "bev/vehicles")
    h.wait_for(lambda: h.node.outputs["bev/vehicles"].get_subscription_count() > 0, what="bev subscriber")
    h.send_frame({"image": STITCHED}, h.now_ns())
    h.wait_paths(2)
    h.wait_for(lambda: len(vehicles) == 1, what="a vehicles grid")
    assert perception_flags == [False, True]


def test_bev_grids_and_objects_match_the_planner(harness, planner, perception_flags):
    h = harness(camera_mode="stitched", perception_classes=["vehicles", "centerline"], detection_score_threshold=0.6)
    assert {k.removeprefix("bev/") for k in h.node.outputs if k.startswith("bev/")} == {"vehicles", "centerline"}
    grids = {name: _subscribe(h, OccupancyGrid, f"bev/{name}") for name in ("vehicles", "centerline")}
    objects = _subscribe(h, MarkerArray, "objects")
    h.wait_for(lambda: h.node.outputs["objects"].get_subscription_count() > 0, what="objects subscriber")
    stamp = h.now_ns()
    h.send_frame({"image": STITCHED}, stamp, speed=5.0)
    (path,) = h.wait_paths(1)
    h.wait_for(lambda: objects and all(grids.values()), what="perception messages")
    expected = planner.plan(Observation(5.0, 0.0, Command.UNKNOWN, image=STITCHED), perception=True).perception
    for name, received in grids.items():
        grid = received[0]
        assert _stamp(grid) == stamp == _stamp(path) and grid.header.frame_id == "base_link"
        assert (grid.info.width, grid.info.height, grid.info.resolution) == (256, 256, 0.25)
        assert (grid.info.origin.position.x, grid.info.origin.position.y) == (-32.0, -32.0)
        assert grid.info.origin.orientation.w == 1.0
        data = np.array(grid.data, dtype=np.int8).reshape(256, 256)
        np.testing.assert_array_equal(data, np.rint(100 * expected.bev_probabilities[CLASS_NAMES.index(name)]))
    markers = objects[0].markers
    assert markers[0].action == Marker.DELETEALL and _stamp(markers[0]) == stamp
    cubes = [m for m in markers if m.type == Marker.CUBE]
    boxes = expected.boxes_above(0.6)
    assert len(cubes) == len(boxes) > 0
    for cube, box in zip(cubes, boxes, strict=True):
        assert (cube.pose.position.x, cube.pose.position.y) == pytest.approx((box.x, box.y), abs=1e-5)
        assert cube.scale.x == pytest.approx(max(abs(2 * box.half_length), 0.01), abs=1e-5)
        assert cube.scale.y == pytest.approx(max(abs(2 * box.half_width), 0.01), abs=1e-5)
        assert cube.scale.z > 0 and cube.header.frame_id == "base_link"


def test_objects_are_cleared_when_boxes_disappear(harness):
    h = harness(camera_mode="stitched", detection_score_threshold=1.0)  # no score is above 1
    objects = _subscribe(h, MarkerArray, "objects")
    h.wait_for(lambda: h.node.outputs["objects"].get_subscription_count() > 0, what="objects subscriber")
    h.send_frame({"image": STITCHED}, h.now_ns())
    h.wait_for(lambda: len(objects) == 1, what="objects")
    assert [m.action for m in objects[0].markers] == [Marker.DELETEALL]


def test_publish_perception_runs_it_without_subscribers(harness, perception_flags):
    h = harness(camera_mode="stitched", publish_perception=True, perception_classes=["road"])
    assert {k.removeprefix("bev/") for k in h.node.outputs if k.startswith("bev/")} == {"road"}
    h.send_frame({"image": STITCHED}, h.now_ns())
    h.wait_paths(1)
    assert perception_flags == [True]


def test_an_unknown_perception_class_is_a_parameter_error(ros_context, planner):
    from rclpy.parameter import Parameter

    from lead_ros.ros.node import LeadPlannerNode, ParameterError

    with pytest.raises(ParameterError, match=r"perception_classes: \['cars'\] are not among unlabeled, road"):
        LeadPlannerNode(
            planner=planner,
            context=ros_context,
            namespace="/bad_classes",
            parameter_overrides=[Parameter("perception_classes", value=["cars"])],
        )


RVIZ_TYPES = {
    "rviz_default_plugins/Image": "sensor_msgs/msg/Image",
    "rviz_default_plugins/Path": "nav_msgs/msg/Path",
    "rviz_default_plugins/MarkerArray": "visualization_msgs/msg/MarkerArray",
    "rviz_default_plugins/Map": "nav_msgs/msg/OccupancyGrid",
}


def test_rviz_config_names_only_topics_the_node_publishes(ros_context, planner):
    """rviz2 is not installable here: the shipped config is parsed, and every topic it shows
    must be published by a default-named node, with the display type its message needs."""
    import yaml
    from rclpy.parameter import Parameter

    from conftest import REPO
    from lead_ros.ros.node import LeadPlannerNode

    config = yaml.safe_load((REPO / "config" / "lead_ros.rviz").read_text())
    manager = config["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == "base_link"
    displays = [d for d in manager["Displays"] if "Topic" in d]
    node = LeadPlannerNode(
        planner=planner, context=ros_context, parameter_overrides=[Parameter("publish_debug_image", value=True)]
    )
    try:
        assert node.bring_up()
        published = dict(node.get_publisher_names_and_types_by_node("lead_planner", "/"))
    finally:
        node.close()
        node.destroy_node()
    shown = set()
    for display in displays:
        topic = display["Topic"]["Value"]
        assert topic in published, f"{display['Name']}: {topic} is not published by lead_planner"
        assert RVIZ_TYPES[display["Class"]] in published[topic], (display["Name"], published[topic])
        shown.add(topic)
    expected = {f"/lead_planner/output/bev/{c}" for c in CLASS_NAMES[1:]}
    expected |= {
        "/lead_planner/debug/image",
        "/lead_planner/output/path",
        "/lead_planner/output/path_odom",
        "/lead_planner/output/objects",
    }
    assert expected <= shown
