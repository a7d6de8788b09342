"""The node's topics: the one table of what ``lead_planner`` subscribes to and publishes.

Each row says the topic's name (private, ``~/``-relative, unless absolute), its message type,
its QoS (some depend on parameters), its direction, and when it exists (a predicate on the
configuration). The node creates its subscriptions and publishers from it, in table order;
the bag tools take their default topics, expected types and output topics from it; the
launch file builds its ``<topic>_topic`` remapping arguments from it; ``make docs`` writes
``docs/topics.md`` from it, and a test checks ``config/lead_ros.rviz`` against it.

The order of the inputs is behaviour: rclpy's executor serves subscriptions that are ready
together in creation order, so the route (or command) comes first, then CameraInfo, then the
cameras (anchor first), then odometry and IMU. A route or calibration that arrived before a
frame's last input is thus in force for that frame, as in offline evaluation, which reads
the bag in order.

Standard library only (and lead_ros modules that are): ``ros2 launch`` imports this module
under the system Python, which does not see a venv. Message types are therefore written as
ROS type names (``sensor_msgs/msg/Image``: ROS' message packages import numpy) and QoS as
``QosSpec``; the node turns both into rclpy objects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lead_ros.camera_layout import ANCHOR_CAMERA, CAMERA_NAMES, SIDE_CAMERAS, STITCHED_IMAGE
from lead_ros.node_config import BEV_CLASSES

if TYPE_CHECKING:
    from lead_ros.node_config import NodeConfig

INPUT, OUTPUT = "input", "output"
DEFAULT_NODE_NAME = "lead_planner"
CAMERA_INFO_SUFFIX = "_camera_info"  # a CameraInfo input's key: <camera>_camera_info
CAMERA_TYPES = {"raw": "sensor_msgs/msg/Image", "compressed": "sensor_msgs/msg/CompressedImage"}


@dataclass(frozen=True)
class QosSpec:
    """A QoS profile (history KEEP_LAST) in words; ``ros.qos`` makes the rclpy profile."""

    reliability: str  # "reliable" or "best_effort"
    depth: int
    durability: str = "volatile"  # or "transient_local"

    def __str__(self) -> str:
        return f"{self.reliability.replace('_', ' ')}, {self.durability.replace('_', ' ')}, depth {self.depth}"


# rclpy's qos_profile_sensor_data: what camera and IMU drivers publish with.
SENSOR_DATA = QosSpec("best_effort", 5)
# Cameras: the node takes images only when the planner can use a frame (``ros.on_demand``);
# meanwhile DDS keeps each camera's newest two (one to pair with an anchor that came late).
CAMERA_DEPTH = 2
SENSOR_DATA_CAMERA = QosSpec("best_effort", CAMERA_DEPTH)
RELIABLE_CAMERA = QosSpec("reliable", CAMERA_DEPTH)
ODOMETRY = QosSpec("reliable", 50)
# The latest route or command, also to a node that starts after it was published.
LATCHED = QosSpec("reliable", 1, "transient_local")
PLAN_OUTPUT = QosSpec("reliable", 5)
PERCEPTION_OUTPUT = QosSpec("reliable", 1)  # volatile: only the newest matters
DIAGNOSTICS = QosSpec("reliable", 10)
CAMERA_QOS = {"sensor_data": SENSOR_DATA_CAMERA, "reliable": RELIABLE_CAMERA}
# CameraInfo: best effort + volatile matches every publisher (reliable or not); transient_local
# (reliable) also gets the one a latched publisher sent before the node subscribed.
CAMERA_INFO_QOS = {"sensor_data": SENSOR_DATA, "transient_local": LATCHED}


@dataclass(frozen=True)
class TopicContext:
    """What decides which topics exist: the parameters, and the rig cameras whose calibration
    comes from their CameraInfo topic (read from the rig file by the caller)."""

    config: NodeConfig
    camera_info_cameras: tuple[str, ...] = ()


def _always(context: TopicContext) -> bool:
    return True


@dataclass(frozen=True)
class Topic:
    """One row of the table. ``key`` names the topic in lead_ros (the bag tools' ``--topic
    KEY=TOPIC``, the node's handlers): a camera's name, ``<camera>_camera_info``, ``odometry``,
    ``path``, ``bev/<class>``, ..."""

    key: str
    name: str  # "~/"-relative, or absolute ("/diagnostics")
    types: tuple[str, ...]  # the ROS types it can have; the first unless ``type_for`` picks
    direction: str  # INPUT or OUTPUT
    description: str
    qos_for: Callable[[TopicContext], QosSpec]
    exists: Callable[[TopicContext], bool] = _always
    type_for: Callable[[TopicContext], str] | None = None
    camera: str | None = None  # the camera (or stitched image) of a camera or CameraInfo input
    managed: bool = True  # made at configure (lifecycle publishers); False: for the node's life

    def message_type(self, context: TopicContext) -> str:
        return self.type_for(context) if self.type_for is not None else self.types[0]

    def qos(self, context: TopicContext) -> QosSpec:
        return self.qos_for(context)

    @property
    def remappable(self) -> bool:
        """A private topic: the launch file declares a ``<name>_topic`` argument for it."""
        return self.name.startswith("~/")

    @property
    def relative(self) -> str:
        """The name below the node (``input/odometry``); an absolute name as it is."""
        return self.name.removeprefix("~/")

    def qualified(self, node_name: str = DEFAULT_NODE_NAME, namespace: str = "") -> str:
        """The fully qualified name for a node of that name and namespace."""
        if not self.remappable:
            return self.name
        return f"{namespace.rstrip('/')}/{node_name}/{self.relative}"


def _fixed(qos: QosSpec) -> Callable[[TopicContext], QosSpec]:
    return lambda context: qos


def _camera_topic(camera: str) -> Topic:
    name = f"~/input/cameras/{camera}" if camera != STITCHED_IMAGE else f"~/input/{STITCHED_IMAGE}"
    mode = "stitched" if camera == STITCHED_IMAGE else "navsim_4cam"
    what = "the stitched model input" if camera == STITCHED_IMAGE else f"camera {camera}"
    anchor = " (anchors frames)" if camera in (ANCHOR_CAMERA, STITCHED_IMAGE) else ""
    return Topic(
        camera, name, tuple(CAMERA_TYPES.values()), INPUT,
        f"{what}{anchor}; Image with image_transport raw, CompressedImage with compressed; camera_mode {mode}",
        qos_for=lambda context: CAMERA_QOS[context.config.camera_qos],
        exists=lambda context: context.config.camera_mode == mode,
        type_for=lambda context: CAMERA_TYPES[context.config.image_transport],
        camera=camera,
    )  # fmt: skip


def _camera_info_topic(camera: str) -> Topic:
    return Topic(
        f"{camera}{CAMERA_INFO_SUFFIX}", f"~/input/cameras/{camera}/camera_info", ("sensor_msgs/msg/CameraInfo",),
        INPUT,
        f"calibration of camera {camera}, when the camera rig says camera_info: topic for it",
        qos_for=lambda context: CAMERA_INFO_QOS[context.config.camera_info_qos],
        exists=lambda context: (context.config.camera_mode == "navsim_4cam"
                                and camera in context.camera_info_cameras),
        camera=camera,
    )  # fmt: skip


def _bev_topic(name: str) -> Topic:
    return Topic(
        f"bev/{name}", f"~/output/bev/{name}", ("nav_msgs/msg/OccupancyGrid",), OUTPUT,
        f"BEV probability of class {name} (0..100), when {name} is in perception_classes",
        qos_for=_fixed(PERCEPTION_OUTPUT),
        exists=lambda context: name in context.config.perception_classes,
    )  # fmt: skip


# Inputs in creation order (see the module docstring), then outputs.
TOPICS: tuple[Topic, ...] = (
    Topic("route", "~/input/route", ("nav_msgs/msg/Path",), INPUT,
          "route to follow (command_input route): its shape gives the command",
          _fixed(LATCHED), lambda context: context.config.command_input == "route"),
    Topic("command", "~/input/command", ("std_msgs/msg/UInt8",), INPUT,
          "route command 0 left, 1 straight, 2 right, 3 unknown (command_input topic)",
          _fixed(LATCHED), lambda context: context.config.command_input == "topic"),
    *(_camera_info_topic(camera) for camera in CAMERA_NAMES),
    *(_camera_topic(camera) for camera in (ANCHOR_CAMERA, *SIDE_CAMERAS, STITCHED_IMAGE)),
    Topic("odometry", "~/input/odometry", ("nav_msgs/msg/Odometry",), INPUT,
          "speed, acceleration (acceleration_source odometry) and pose", _fixed(ODOMETRY)),
    Topic("imu", "~/input/imu", ("sensor_msgs/msg/Imu",), INPUT,
          "acceleration (acceleration_source imu)",
          _fixed(SENSOR_DATA), lambda context: context.config.acceleration_source == "imu"),
    Topic("path", "~/output/path", ("nav_msgs/msg/Path",), OUTPUT,
          "the plan in frame_id (ISO 8855 base_link), stamped at the anchor stamp + t", _fixed(PLAN_OUTPUT)),
    Topic("path_odom", "~/output/path_odom", ("nav_msgs/msg/Path",), OUTPUT,
          "the same plan in the odometry frame (when someone subscribes)", _fixed(PLAN_OUTPUT)),
    Topic("inference_time_ms", "~/debug/inference_time_ms", ("std_msgs/msg/Float64",), OUTPUT,
          "the model's forward time of each planned frame", _fixed(PLAN_OUTPUT)),
    Topic("pipeline_latency_ms", "~/debug/pipeline_latency_ms", ("std_msgs/msg/Float64",), OUTPUT,
          "node clock at publication minus the anchor stamp", _fixed(PLAN_OUTPUT)),
    Topic("markers", "~/debug/markers", ("visualization_msgs/msg/MarkerArray",), OUTPUT,
          "the plan as arrows (when someone subscribes)", _fixed(PLAN_OUTPUT)),
    Topic("frame_status", "~/debug/frame_status", ("diagnostic_msgs/msg/DiagnosticStatus",), OUTPUT,
          "one status per synchronized or skipped frame: planned, or skipped with its reason",
          _fixed(PLAN_OUTPUT)),
    Topic("debug_image", "~/debug/image", ("sensor_msgs/msg/Image",), OUTPUT,
          "the model input with the plan drawn on it (publish_debug_image)",
          _fixed(PLAN_OUTPUT), lambda context: context.config.publish_debug_image),
    *(_bev_topic(name) for name in BEV_CLASSES),
    Topic("objects", "~/output/objects", ("visualization_msgs/msg/MarkerArray",), OUTPUT,
          "detected objects as boxes (publish_perception, or when someone subscribes)", _fixed(PERCEPTION_OUTPUT)),
    Topic("diagnostics", "/diagnostics", ("diagnostic_msgs/msg/DiagnosticArray",), OUTPUT,
          "the node's health in every lifecycle state, every diagnostics_period_s",
          _fixed(DIAGNOSTICS), managed=False),
)  # fmt: skip
BY_KEY = {topic.key: topic for topic in TOPICS}
# The input keys the bag tools accept in --topic KEY=TOPIC.
INPUT_KEYS = tuple(topic.key for topic in TOPICS if topic.direction == INPUT)


def active_topics(context: TopicContext, direction: str | None = None) -> tuple[Topic, ...]:
    """The topics a configuration has, in creation order (optionally of one direction)."""
    return tuple(t for t in TOPICS if t.exists(context) and direction in (None, t.direction))


def default_topics(node_name: str = DEFAULT_NODE_NAME, keys: Sequence[str] = INPUT_KEYS) -> dict[str, str]:
    """Fully qualified default names by key (the inputs' unless ``keys`` says otherwise)."""
    return {key: BY_KEY[key].qualified(node_name) for key in keys}


def remappable_topics() -> tuple[Topic, ...]:
    """Every private topic, whatever the configuration: a launch file cannot know it."""
    return tuple(t for t in TOPICS if t.remappable)


def launch_argument(topic: Topic) -> str:
    """A topic's remapping argument of the launch file: ``input/odometry`` -> ``input_odometry_topic``."""
    return topic.relative.replace("/", "_") + "_topic"
