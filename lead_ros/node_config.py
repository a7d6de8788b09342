"""The node's parameters: one specification shared by the ROS node (declaration with
descriptors), the packaged ``config/lead_ros.yaml`` and the offline bag tools.

Pure Python: reading a params file here needs no rclpy.
"""

from __future__ import annotations

import difflib
import math
import reprlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lead_ros.model.runtimes import RUNTIME_CHOICES, runtimes_help
from lead_ros.weights.source import OFFICIAL_SOURCE

CAMERA_MODES = ("navsim_4cam", "stitched")
IMAGE_TRANSPORTS = ("raw", "compressed")
CAMERA_QOS = ("sensor_data", "reliable")
ACCELERATION_SOURCES = ("odometry", "imu")
MISSING_CAMERA_POLICIES = ("skip", "fill_black")
VIRTUAL_DISTORTIONS = ("nuplan", "none")
CAMERA_INFO_QOS = ("sensor_data", "transient_local")
PRECISIONS = ("fp32", "fp16", "bf16")
RUNTIMES = RUNTIME_CHOICES  # the registry's (lead_ros.model.runtimes), read when checked
COMMAND_INPUTS = ("topic", "route")
# BEV semantic classes (lead_ros.perception.bev.CLASS_NAMES) that can be published.
BEV_CLASSES = ("unlabeled", "road", "walkways", "centerline", "static_objects", "vehicles", "pedestrians")
# processing_budget_ms = 0 resolves to this per device type at configure: one 10 Hz frame
# period on a GPU; on CPU, where a forward alone takes 0.5-1.5 s, a budget that flags only
# a stalled frame.
AUTO_PROCESSING_BUDGET_MS = {"cuda": 100.0, "cpu": 2000.0}
# A params file for this node is a few kilobytes; these bound what reading one can cost
# before anything is expanded (a 50 MB file, a YAML alias bomb).
MAX_PARAMS_FILE_BYTES = 1 << 20
MAX_PARAMS_FILE_NODES = 10_000  # YAML nodes with every alias expanded


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: name, default (its type is the parameter type), documentation, range."""

    name: str
    default: Any
    description: str
    choices: Sequence[str] = ()
    min_value: float | None = None
    max_value: float | None = None
    read_only: bool = True


PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("autostart", True, "Configure and activate at start-up; false waits for a lifecycle manager."),
    ParamSpec("weights", OFFICIAL_SOURCE, "Weights source: local file/directory or hf://OWNER/REPO[@REVISION]."),
    ParamSpec(
        "ensemble_size",
        0,
        "Number of model*.pth files of a checkpoint directory to average; 0 = all.",
        min_value=0,
        max_value=64,
    ),
    ParamSpec("expected_sha256", "", "Comma-separated sha256 digests the weights files must have; empty = no check."),
    ParamSpec("hf_cache_dir", "", "Hugging Face cache directory for hf:// sources; empty = the hub default."),
    ParamSpec("device", "auto", "Inference device: auto (CUDA when available), cpu, cuda or cuda:N."),
    ParamSpec(
        "precision", "fp32", "fp32, fp16 (CUDA only) or bf16; output heads always run in fp32.", choices=PRECISIONS
    ),
    ParamSpec("runtime", "auto", f"Inference runtime: {runtimes_help()}.", choices=RUNTIMES),
    ParamSpec(
        "runtime_cache_dir",
        "",
        "Where exported ONNX graphs are kept between runs; empty = $LEAD_ROS_CACHE_DIR, else ~/.cache/lead_ros.",
    ),
    ParamSpec(
        "camera_mode",
        "navsim_4cam",
        "navsim_4cam: four cameras l0 f0 r0 b0 with NAVSIM preprocessing; stitched: one H x 1920 input.",
        choices=CAMERA_MODES,
    ),
    ParamSpec(
        "image_transport",
        "raw",
        "raw: sensor_msgs/Image (rgb8/bgr8); compressed: sensor_msgs/CompressedImage (jpeg/png).",
        choices=IMAGE_TRANSPORTS,
    ),
    ParamSpec("jpeg_roundtrip", True, "Apply NAVSIM's JPEG quality-30 round trip to stitched cameras (navsim_4cam)."),
    ParamSpec(
        "camera_qos",
        "sensor_data",
        "Camera subscription QoS: sensor_data (best effort) or reliable.",
        choices=CAMERA_QOS,
    ),
    ParamSpec(
        "acceleration_source",
        "odometry",
        "odometry: estimated from the odometry twist; imu: planar norm of ~/input/imu.",
        choices=ACCELERATION_SOURCES,
    ),
    ParamSpec(
        "acceleration_window_s",
        0.5,
        "Window of the odometry acceleration estimator, seconds.",
        min_value=0.05,
        max_value=5.0,
    ),
    ParamSpec(
        "sync_tolerance_ms",
        50.0,
        "Max |stamp difference| of side cameras to the anchor, and max age of the newest odometry/IMU.",
        min_value=0.0,
        max_value=2000.0,
    ),
    ParamSpec(
        "max_camera_side_px",
        4096,
        "Cameras with a side longer than this are refused at intake "
        "(navsim_4cam; from the message header, before decoding).",
        min_value=960,
        max_value=16384,
    ),
    ParamSpec(
        "max_camera_megapixels",
        16.8,
        "Cameras with more megapixels than this are refused at intake "
        "(navsim_4cam; 16.8 covers 4K and 4000x3000 sensors).",
        min_value=0.5,
        max_value=268.0,
    ),
    ParamSpec(
        "camera_rig_file",
        "",
        "Camera rig YAML (calibration, orientation, position of l0/f0/r0/b0): each "
        "camera is reprojected into the nuPlan camera the model was trained with; 'nuplan' = the trained "
        "cameras themselves; empty = none (16:9 cameras taken as nuPlan's).",
        read_only=True,
    ),
    ParamSpec(
        "virtual_distortion",
        "nuplan",
        "Lens distortion of the virtual nuPlan cameras reprojected into: "
        "nuplan (as the training images, following AlpaSim) or none (pinhole).",
        choices=VIRTUAL_DISTORTIONS,
    ),
    ParamSpec(
        "camera_info_qos",
        "sensor_data",
        "QoS of ~/input/cameras/<name>/camera_info (rig cameras with "
        "camera_info: topic): sensor_data (best effort, volatile: matches any publisher) or transient_local "
        "(reliable: also the CameraInfo a latched publisher sent earlier).",
        choices=CAMERA_INFO_QOS,
    ),
    ParamSpec(
        "missing_camera_policy",
        "skip",
        "A side camera without a message within tolerance: skip the frame, or fill_black.",
        choices=MISSING_CAMERA_POLICIES,
    ),
    ParamSpec(
        "max_future_stamp_s",
        1.0,
        "Frames stamped further than this ahead of the node clock are rejected.",
        min_value=0.0,
        max_value=60.0,
    ),
    ParamSpec(
        "max_input_age_s",
        1.0,
        "Frames whose anchor stamp is older than this vs the node clock are rejected (stale_input); 0 = no limit.",
        min_value=0.0,
        max_value=3600.0,
    ),
    ParamSpec(
        "command_timeout_s",
        0.0,
        "A route command older than this is stale; 0 = never stale.",
        min_value=0.0,
        max_value=3600.0,
    ),
    ParamSpec(
        "default_command",
        3,
        "Command used until one arrives or when stale: 0 left, 1 straight, 2 right, 3 unknown.",
        min_value=0,
        max_value=3,
    ),
    ParamSpec(
        "command_input",
        "topic",
        "topic: the command from ~/input/command (UInt8); route: derived from "
        "~/input/route (nav_msgs/Path in the odometry frame) by NAVSIM's rule.",
        choices=COMMAND_INPUTS,
    ),
    ParamSpec(
        "route_lookahead_m",
        20.0,
        "Route rule: distance along the route to the look-ahead point, metres.",
        min_value=1.0,
        max_value=200.0,
    ),
    ParamSpec(
        "route_lateral_threshold_m",
        2.0,
        "Route rule: lateral offset of the look-ahead point at or beyond "
        "which the command is left (+) or right (-), metres.",
        min_value=0.01,
        max_value=50.0,
    ),
    ParamSpec(
        "route_max_offset_m",
        10.0,
        "Route rule: an ego farther than this from the route makes it unusable (default_command is used), metres.",
        min_value=0.1,
        max_value=1000.0,
    ),
    ParamSpec("frame_id", "base_link", "frame_id of the published Path (ISO 8855: x forward, y left, z up)."),
    ParamSpec("prepend_origin_pose", False, "Start the Path with the identity pose at the anchor stamp."),
    ParamSpec(
        "processing_budget_ms",
        0.0,
        "Diagnostics WARN when a frame's processing exceeds this; 0 = auto: 100 ms on CUDA, 2000 ms on CPU.",
        min_value=0.0,
        max_value=60000.0,
    ),
    ParamSpec(
        "max_consecutive_failures",
        5,
        "Diagnostics ERROR after this many failed frames in a row.",
        min_value=1,
        max_value=1000,
    ),
    ParamSpec(
        "diagnostics_period_s",
        1.0,
        "Period of /diagnostics, wall-clock (steady) seconds, also with "
        "use_sim_time (a stopped /clock is reported, not silent).",
        min_value=0.05,
        max_value=60.0,
    ),
    ParamSpec(
        "publish_debug_image",
        False,
        "Publish ~/debug/image: a bird's-eye panel (plan, BEV semantic map, "
        "boxes) beside the model input; runs perception on every planned frame.",
    ),
    ParamSpec(
        "perception_classes",
        ["road", "walkways", "centerline", "static_objects", "vehicles", "pedestrians"],
        "BEV classes published as ~/output/bev/<class> (nav_msgs/OccupancyGrid of class probabilities).",
        choices=BEV_CLASSES,
    ),
    ParamSpec(
        "detection_score_threshold",
        0.3,
        "Boxes with a score above this (strict) are published on "
        "~/output/objects and drawn in the debug image (LEAD: 0.3).",
        min_value=0.0,
        max_value=1.0,
    ),
    ParamSpec(
        "publish_perception",
        False,
        "Run perception on every planned frame and publish ~/output/bev/* and "
        "~/output/objects even without subscribers; false: only while something subscribes.",
    ),
)

_BY_NAME = {p.name: p for p in PARAMETERS}


@dataclass(frozen=True)
class NodeConfig:
    """Validated parameter values (see ``PARAMETERS`` for their meaning)."""

    autostart: bool
    weights: str
    ensemble_size: int
    expected_sha256: str
    hf_cache_dir: str
    device: str
    precision: str
    runtime: str
    runtime_cache_dir: str
    camera_mode: str
    image_transport: str
    jpeg_roundtrip: bool
    camera_qos: str
    acceleration_source: str
    acceleration_window_s: float
    sync_tolerance_ms: float
    max_camera_side_px: int
    max_camera_megapixels: float
    camera_rig_file: str
    virtual_distortion: str
    camera_info_qos: str
    missing_camera_policy: str
    max_future_stamp_s: float
    max_input_age_s: float
    command_timeout_s: float
    default_command: int
    command_input: str
    route_lookahead_m: float
    route_lateral_threshold_m: float
    route_max_offset_m: float
    frame_id: str
    prepend_origin_pose: bool
    processing_budget_ms: float
    max_consecutive_failures: int
    diagnostics_period_s: float
    publish_debug_image: bool
    perception_classes: list[str]
    detection_score_threshold: float
    publish_perception: bool

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> NodeConfig:
        """Defaults overridden by ``values``; raises ValueError listing every bad value."""
        unknown = sorted(set(values) - set(_BY_NAME))
        merged = {p.name: _coerce(p, values.get(p.name, p.default)) for p in PARAMETERS}
        errors = [_unknown(name) for name in unknown]
        errors += [e for spec in PARAMETERS if (e := check_value(spec, merged[spec.name]))]
        if errors:
            raise ValueError("invalid lead_planner parameters: " + "; ".join(errors))
        return cls(**merged)

    @classmethod
    def from_yaml(cls, path: Path, node_name: str = "lead_planner") -> NodeConfig:
        """Read a ROS 2 params file (``/**`` or ``<node_name>`` section, ``ros__parameters``)."""
        return cls.from_values(params_file_values(path, node_name))

    @property
    def expected_sha256_list(self) -> tuple[str, ...]:
        return tuple(s.strip() for s in self.expected_sha256.split(",") if s.strip())

    def processing_budget_for(self, device_type: str) -> float:
        """The budget in milliseconds, with 0 (auto) resolved for a device type (cpu, cuda)."""
        return self.processing_budget_ms or AUTO_PROCESSING_BUDGET_MS.get(device_type, AUTO_PROCESSING_BUDGET_MS["cpu"])


def params_file_values(path: str | Path, node_name: str = "lead_planner") -> dict[str, Any]:
    """The lead_planner values a params file states (``/**`` or ``<node_name>`` section)."""
    data = read_params_file(path)
    values: dict[str, Any] = {}
    for key in ("/**", node_name, f"/{node_name}"):
        values.update((data.get(key) or {}).get("ros__parameters", {}))
    values.pop("use_sim_time", None)
    return values


def read_params_file(path: str | Path) -> dict:
    """The mapping of a ROS 2 params file. A missing, unreadable, oversized or malformed file
    (or one whose aliases expand beyond ``MAX_PARAMS_FILE_NODES``) raises ValueError in one
    line naming the file (the node, before rcl parses it, and the tools)."""
    try:
        with Path(path).open("rb") as stream:
            raw = stream.read(MAX_PARAMS_FILE_BYTES + 1)
    except OSError as error:
        raise ValueError(f"params file {path} cannot be read: {error.strerror}") from None
    if len(raw) > MAX_PARAMS_FILE_BYTES:
        raise ValueError(
            f"params file {path} is larger than {MAX_PARAMS_FILE_BYTES} bytes (a params file is a few kilobytes)"
        )
    try:
        data = _load_bounded_yaml(raw.decode("utf-8"), str(path))
    except UnicodeDecodeError as error:
        raise ValueError(f"params file {path} is not UTF-8 text (byte {error.start})") from None
    except yaml.YAMLError as error:
        raise ValueError(f"params file {path} is not valid YAML{yaml_problem(error)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"params file {path} must map node names to ros__parameters, not hold a {type(data).__name__}")
    return data


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a mapping that repeats a key: PyYAML keeps the last one,
    so a second ``f0:`` in a rig file, or a parameter given twice, would silently win."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first_lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) or key is None:
                if key in first_lines:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (first at line {first_lines[key] + 1})", key_node.start_mark
                    )
                first_lines[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` that refuses duplicate keys (rig files, and params files through
    ``read_params_file``)."""
    loader = _UniqueKeyLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def yaml_problem(error: yaml.YAMLError) -> str:
    """A YAML error in one line, to follow "not valid YAML": where (line, column), and what."""
    mark = getattr(error, "problem_mark", None)
    at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    problem = getattr(error, "problem", None) or " ".join(str(error).split())
    return f"{at}: {problem}"


def _load_bounded_yaml(text: str, path: str) -> Any:
    """``yaml.safe_load``, refusing a document whose nodes, with every alias expanded, number
    more than ``MAX_PARAMS_FILE_NODES``: counted on the composed graph (aliases are shared
    nodes there) before any Python object is built."""
    loader = _UniqueKeyLoader(text)
    try:
        try:
            root = loader.get_single_node()
            if root is not None and _expanded_nodes(root, {}) > MAX_PARAMS_FILE_NODES:
                raise ValueError(
                    f"params file {path}: its aliases expand to more than {MAX_PARAMS_FILE_NODES} YAML nodes; "
                    "refused before expanding them"
                )
        except RecursionError:
            raise ValueError(f"params file {path} is nested too deeply") from None
        return loader.construct_document(root) if root is not None else None
    finally:
        loader.dispose()


def _expanded_nodes(node: yaml.Node, memo: dict[int, int]) -> int:
    """How many nodes ``node`` stands for with aliases expanded (memoized per shared node)."""
    if id(node) not in memo:
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        else:
            children = []
        memo[id(node)] = 1 + sum(_expanded_nodes(child, memo) for child in children)
        if memo[id(node)] > MAX_PARAMS_FILE_NODES:  # stop early: the sum can be astronomically large
            memo[id(node)] = MAX_PARAMS_FILE_NODES + 1
    return memo[id(node)]


def excerpt(value: Any) -> str:
    """A short, bounded repr of a parameter value for error messages (a huge or deeply nested
    value stays one short line)."""
    short = reprlib.Repr()  # keyword arguments need Python 3.12
    short.maxstring = short.maxother = 60
    short.maxlist = short.maxdict = 6
    short.maxlevel = 2
    return short.repr(value)


def _unknown(name: str) -> str:
    close = difflib.get_close_matches(name[:100], _BY_NAME, n=1)
    return f"unknown parameter {excerpt(name)}" + (f" (did you mean {close[0]!r}?)" if close else "")


def _coerce(spec: ParamSpec, value: Any) -> Any:
    """YAML and ROS give ``1`` for a float parameter set to 1.0; accept it as a float."""
    if isinstance(spec.default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def check_value(spec: ParamSpec, value: Any) -> str | None:
    """None when ``value`` is valid for ``spec``, else a message naming both."""
    expected = type(spec.default)
    if type(value) is not expected:
        return f"{spec.name}: expected {expected.__name__}, got {excerpt(value)}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{spec.name}: {value} is not a finite number"
    if isinstance(value, list):
        bad = [v for v in value if not isinstance(v, str) or v not in spec.choices]
        if bad or not value:
            listed = f"{excerpt(bad)} are not among" if bad else "the list is empty; give one or more of"
            return f"{spec.name}: {listed} {', '.join(spec.choices)}"
        if len(set(value)) != len(value):
            return f"{spec.name}: {excerpt(value)} names a class twice"
    elif spec.choices and value not in spec.choices:
        return f"{spec.name}: {excerpt(value)} is not one of {', '.join(spec.choices)}"
    if spec.min_value is not None and value < spec.min_value:
        return f"{spec.name}: {value} is below the minimum {spec.min_value}"
    if spec.max_value is not None and value > spec.max_value:
        return f"{spec.name}: {value} is above the maximum {spec.max_value}"
    if spec.name in ("weights", "frame_id") and not value.strip():
        return f"{spec.name}: must not be empty"
    return None
