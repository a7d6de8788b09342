"""The topic table (``lead_ros.ros.topics``) is the one home of the node's interface: the node
creates exactly its topics, the launch file and the RViz config derive from it, and it
imports under a Python that has neither PyTorch nor numpy (``ros2 launch``'s system Python)."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from lead_ros.node_config import NodeConfig
from lead_ros.ros.topics import (
    BY_KEY,
    INPUT,
    OUTPUT,
    TopicContext,
    active_topics,
    default_topics,
    launch_argument,
    remappable_topics,
)

# The launch file's remapping arguments before the table existed (its hand-written tuple): a
# public interface, so the table must give exactly these.
LAUNCH_TOPICS_BEFORE = {
    "input/cameras/l0",
    "input/cameras/f0",
    "input/cameras/r0",
    "input/cameras/b0",
    "input/image",
    "input/cameras/l0/camera_info",
    "input/cameras/f0/camera_info",
    "input/cameras/r0/camera_info",
    "input/cameras/b0/camera_info",
    "input/odometry",
    "input/imu",
    "input/command",
    "input/route",
    "output/path",
    "output/path_odom",
    "output/objects",
    "output/bev/unlabeled",
    "output/bev/road",
    "output/bev/walkways",
    "output/bev/centerline",
    "output/bev/static_objects",
    "output/bev/vehicles",
    "output/bev/pedestrians",
    "debug/image",
    "debug/markers",
    "debug/inference_time_ms",
    "debug/pipeline_latency_ms",
    "debug/frame_status",
}
BLOCKED = ("torch", "numpy", "onnxruntime", "timm", "cv2", "rclpy")


def test_the_table_and_the_launch_helpers_import_without_heavy_packages():
    """A finder refuses every blocked package (and ROS message packages, which import numpy)."""
    code = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top in {BLOCKED!r} or top.endswith("_msgs"):
            raise ImportError(f"blocked: {{name}}")
sys.meta_path.insert(0, Block())
from lead_ros.ros.topics import remappable_topics, launch_argument
import lead_ros.model.runtimes, lead_ros.ros.process  # the launch file's other imports
print(len(remappable_topics()), launch_argument(remappable_topics()[0]))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["28", "input_route_topic"]


def test_a_blocked_heavy_import_would_be_caught(tmp_path):
    """The finder above works: a module importing numpy fails under it."""
    (tmp_path / "heavy.py").write_text("import numpy\n")
    code = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ImportError(f"blocked: {{name}}")
sys.meta_path.insert(0, Block())
import heavy
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode != 0 and "blocked: numpy" in result.stderr


def test_every_private_topic_is_remappable_with_the_names_of_before():
    assert {t.relative for t in remappable_topics()} == LAUNCH_TOPICS_BEFORE
    assert len({launch_argument(t) for t in remappable_topics()}) == len(LAUNCH_TOPICS_BEFORE)


def _names(context: TopicContext, direction: str) -> list[str]:
    return [t.relative for t in active_topics(context, direction)]


def test_inputs_in_creation_order_follow_the_configuration():
    """Route or command first, then CameraInfo, cameras (anchor first), odometry, IMU."""
    default = TopicContext(NodeConfig.from_values({}))
    assert _names(default, INPUT) == [
        "input/command",
        "input/cameras/f0",
        "input/cameras/l0",
        "input/cameras/r0",
        "input/cameras/b0",
        "input/odometry",
    ]
    config = NodeConfig.from_values({"command_input": "route", "acceleration_source": "imu"})
    assert _names(TopicContext(config, ("l0", "b0")), INPUT) == [
        "input/route",
        "input/cameras/l0/camera_info",
        "input/cameras/b0/camera_info",
        "input/cameras/f0",
        "input/cameras/l0",
        "input/cameras/r0",
        "input/cameras/b0",
        "input/odometry",
        "input/imu",
    ]
    stitched = TopicContext(NodeConfig.from_values({"camera_mode": "stitched", "image_transport": "compressed"}))
    assert _names(stitched, INPUT) == ["input/command", "input/image", "input/odometry"]
    assert BY_KEY["image"].message_type(stitched) == "sensor_msgs/msg/CompressedImage"
    assert BY_KEY["f0"].message_type(default) == "sensor_msgs/msg/Image"


def test_outputs_follow_the_configuration():
    config = NodeConfig.from_values({"perception_classes": ["road"], "publish_debug_image": True})
    assert _names(TopicContext(config), OUTPUT) == [
        "output/path",
        "output/path_odom",
        "debug/inference_time_ms",
        "debug/pipeline_latency_ms",
        "debug/markers",
        "debug/frame_status",
        "debug/image",
        "output/bev/road",
        "output/objects",
        "/diagnostics",
    ]


def test_qos_profiles_are_those_the_node_had_with_cameras_kept_two_deep():
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

    from lead_ros.ros.interfaces import qos_profile

    def spec(key: str, **values) -> QoSProfile:
        return qos_profile(BY_KEY[key].qos(TopicContext(NodeConfig.from_values(values))))

    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    assert spec("command") == spec("route") == latched
    assert spec("imu") == spec("f0_camera_info") == qos_profile_sensor_data
    # Cameras: the sensor-data profile (or reliable), keeping only the newest two images in DDS
    # until the node takes them (ros.input_pump).
    sensor_data_camera = QoSProfile(depth=2, reliability=ReliabilityPolicy.BEST_EFFORT)
    assert spec("f0") == sensor_data_camera and sensor_data_camera.durability == qos_profile_sensor_data.durability
    assert spec("f0", camera_qos="reliable") == QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)
    assert spec("f0_camera_info", camera_info_qos="transient_local") == latched
    assert spec("odometry") == QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    assert spec("path") == spec("markers") == QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    assert spec("objects") == spec("bev/road") == QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
    assert spec("diagnostics") == QoSProfile(depth=10)


def test_default_topics_are_the_default_node_names():
    topics = default_topics()
    assert topics["f0"] == "/lead_planner/input/cameras/f0"
    assert topics["b0_camera_info"] == "/lead_planner/input/cameras/b0/camera_info"
    assert default_topics("veh1")["odometry"] == "/veh1/input/odometry"
    assert BY_KEY["path"].qualified("planner", "/veh1") == "/veh1/planner/output/path"
    assert BY_KEY["diagnostics"].qualified("planner", "/veh1") == "/diagnostics"


RVIZ_TYPES = {
    "rviz_default_plugins/Image": "sensor_msgs/msg/Image",
    "rviz_default_plugins/Path": "nav_msgs/msg/Path",
    "rviz_default_plugins/MarkerArray": "visualization_msgs/msg/MarkerArray",
    "rviz_default_plugins/Map": "nav_msgs/msg/OccupancyGrid",
}


def test_rviz_config_shows_outputs_of_the_table_with_their_types():
    config = yaml.safe_load((REPO / "config" / "lead_ros.rviz").read_text())
    outputs = {t.qualified(): t for t in BY_KEY.values() if t.direction == OUTPUT}
    displays = [d for d in config["Visualization Manager"]["Displays"] if "Topic" in d]
    for display in displays:
        topic = outputs.get(display["Topic"]["Value"])
        assert topic is not None, f"{display['Name']}: {display['Topic']['Value']} is not an output of the table"
        assert RVIZ_TYPES[display["Class"]] in topic.types, (display["Name"], topic.types)
    shown = {d["Topic"]["Value"] for d in displays}
    assert {BY_KEY[k].qualified() for k in ("path", "path_odom", "objects", "debug_image", "bev/road")} <= shown


class _Recorded:
    """A stand-in for a launch action or description: keeps what it was made with."""

    def __init__(self, *args, **kwargs) -> None:
        self.args, self.kwargs = args, kwargs


class _LaunchConfiguration(_Recorded):
    def perform(self, context) -> str:
        return context.values[self.args[0]]


def _stub_launch_modules(monkeypatch) -> None:
    """launch, launch_ros and ament_index_python are not installable here (the launch file runs
    for real outside this machine): stand-ins that record what the file makes."""
    modules = {
        "launch": {"LaunchDescription": _Recorded},
        "launch.actions": {
            name: _Recorded
            for name in ("DeclareLaunchArgument", "EmitEvent", "LogInfo", "OpaqueFunction", "RegisterEventHandler")
        },
        "launch.event_handlers": {"OnProcessExit": _Recorded},
        "launch.events": {"Shutdown": _Recorded},
        "launch.substitutions": {"LaunchConfiguration": _LaunchConfiguration},
        "launch_ros": {},
        "launch_ros.actions": {"Node": _Recorded},
        "ament_index_python": {},
        "ament_index_python.packages": {
            "PackageNotFoundError": LookupError,
            "get_package_share_directory": lambda package: f"/opt/share/{package}",
        },
    }
    for name, attributes in modules.items():
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        monkeypatch.setitem(sys.modules, name, module)


def _launched(monkeypatch):
    """The launch file run with stand-ins: (its module, declared arguments, the actions it starts)."""
    import importlib.util

    _stub_launch_modules(monkeypatch)
    path = REPO / "launch" / "lead_ros.launch.py"
    spec = importlib.util.spec_from_file_location("lead_ros_launch_under_test", path)
    launch_file = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launch_file)
    entities = launch_file.generate_launch_description().args[0]
    declared = {e.args[0]: e.kwargs["default_value"] for e in entities if "default_value" in e.kwargs}
    actions = entities[-1].kwargs["function"](types.SimpleNamespace(values=declared))
    return launch_file, declared, actions


def test_the_launch_file_declares_and_remaps_every_private_topic_of_the_table(monkeypatch):
    _, declared, (node, _) = _launched(monkeypatch)  # rviz:=false: the planner and its exit handler
    remapped = {source: target.args[0] for source, target in node.kwargs["remappings"]}
    for topic in remappable_topics():
        argument = launch_argument(topic)
        assert declared[argument] == topic.name and remapped[topic.name] == argument
    assert len(remapped) == len(LAUNCH_TOPICS_BEFORE)
    assert node.kwargs["executable"] == "lead_planner"


def test_the_node_creates_exactly_the_topics_of_the_table(ros_context, planner):
    from rclpy.parameter import Parameter

    from lead_ros.ros.node import LeadPlannerNode

    values = {
        "command_input": "route",
        "acceleration_source": "imu",
        "perception_classes": ["road", "vehicles"],
        "image_transport": "compressed",
    }
    overrides = [Parameter(name, value=value) for name, value in values.items()]
    node = LeadPlannerNode(planner=planner, context=ros_context, namespace="/table", parameter_overrides=overrides)
    try:
        assert node.bring_up()
        subscribed = dict(node.get_subscriber_names_and_types_by_node("lead_planner", "/table"))
        published = dict(node.get_publisher_names_and_types_by_node("lead_planner", "/table"))
    finally:
        node.close()
        node.destroy_node()
    context = TopicContext(NodeConfig.from_values(values))
    expected_in = {t.qualified(namespace="/table"): [t.message_type(context)] for t in active_topics(context, INPUT)}
    expected_out = {t.qualified(namespace="/table"): [t.message_type(context)] for t in active_topics(context, OUTPUT)}
    assert {k: v for k, v in subscribed.items() if k != "/clock"} == expected_in
    own = {k: v for k, v in published.items() if not k.startswith(("/rosout", "/parameter_events"))}
    own = {k: v for k, v in own.items() if "/transition_event" not in k}
    assert own == expected_out


@pytest.mark.parametrize("key", sorted(BY_KEY))
def test_every_row_describes_its_topic(key):
    topic = BY_KEY[key]
    assert len(topic.description) > 15 and topic.types and topic.direction in (INPUT, OUTPUT)
    assert Path(topic.relative).name  # a name below the node, or an absolute one


def test_the_launch_fails_when_the_planner_fails_and_ends_when_it_ends(monkeypatch):
    """A planner that could not start made launch print "process has died ... exit code 1" and
    then `ros2 launch` exited 0. Launch sets its exit code to 1 when an event handler raises."""
    from lead_ros.ros.process import EXIT_WITH_PARENT_ENV

    launch_file, _, (node, handler) = _launched(monkeypatch)
    (exit_handler,) = handler.args
    assert exit_handler.kwargs["target_action"] is node
    on_exit = exit_handler.kwargs["on_exit"]
    with pytest.raises(launch_file.PlannerFailed, match=r"^lead_planner exited with code 1 "):
        on_exit(types.SimpleNamespace(returncode=1), None)
    (shutdown,) = on_exit(types.SimpleNamespace(returncode=0), None)
    assert shutdown.kwargs["event"].kwargs == {"reason": "lead_planner exited"}
    assert node.kwargs["additional_env"] == {EXIT_WITH_PARENT_ENV: "1"}, "the planner ends with ros2 launch"
