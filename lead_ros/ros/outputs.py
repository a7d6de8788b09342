"""Planning events -> plans -> output messages: the mirror of ``intake``, shared by the live
node and offline bag evaluation.

``dispatch`` hands each intake event to the right method of a ``FrameHandler`` (both the node
and evaluate-bag are one); ``plan_frame`` runs the planner on a ready frame and classifies
what fails; ``plan_messages`` builds every output message of a plan, keyed by the topic
table's keys (``ros.topics``), so the node publishes them and evaluate-bag writes them to
its bag with the same stamps and contents. A new output topic is a row in the table and a
branch here.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from lead_ros.cameras.reprojection import Reprojection, nuplan_front_view
from lead_ros.inputs.sync import SyncFailure
from lead_ros.node_config import NodeConfig
from lead_ros.observation import Plan
from lead_ros.perception.outputs import Box
from lead_ros.planner import Planner
from lead_ros.preprocessing import CorruptImageError
from lead_ros.ros.decoding import frame_to_observation
from lead_ros.ros.encoding import (
    array_to_image,
    bev_class_grid,
    boxes_to_markers,
    plan_to_markers,
    plan_to_odometry_path,
    plan_to_path,
)
from lead_ros.ros.intake import BAD_INPUT, CORRUPT_IMAGE, Event, InputRejected, ReadyFrame
from lead_ros.visualization import render_plan

BEV_PREFIX = "bev/"
PATH, PATH_ODOM, OBJECTS, DEBUG_IMAGE = "path", "path_odom", "objects", "debug_image"
# The plan itself: published before anything else of a frame is built (the debug image takes
# tens of milliseconds to draw).
PLAN_KEYS = (PATH, PATH_ODOM)


class FrameHandler(Protocol):
    """What the node and evaluate-bag do with each kind of intake event."""

    def frame_ready(self, ready: ReadyFrame) -> None: ...

    def frame_failed(self, failure: SyncFailure) -> None: ...

    def input_rejected(self, rejected: InputRejected) -> None: ...


def dispatch(events: Sequence[Event], handler: FrameHandler) -> None:
    """Each event to its handler method, in order."""
    for event in events:
        if isinstance(event, SyncFailure):
            handler.frame_failed(event)
        elif isinstance(event, InputRejected):
            handler.input_rejected(event)
        else:
            handler.frame_ready(event)


@dataclass(frozen=True)
class PlannedFrame:
    plan: Plan
    filled: tuple[str, ...]  # cameras filled black


@dataclass(frozen=True)
class FrameNotPlanned:
    """A frame whose input the planner refused: ``reason`` is the skip reason."""

    reason: str
    detail: str


def plan_frame(
    planner: Planner, ready: ReadyFrame, config: NodeConfig, reprojection: Reprojection | None, perception: bool
) -> PlannedFrame | FrameNotPlanned:
    """Decode a ready frame and plan it. Image and observation errors (ValueError, naming
    their input) become ``FrameNotPlanned``; anything else is the caller's to handle."""
    fill_corrupt = config.missing_camera_policy == "fill_black"
    try:
        observation, filled = frame_to_observation(ready.frame, ready.command, fill_corrupt)
        plan = planner.plan(observation, perception=perception, reprojection=reprojection)
    except ValueError as error:
        return FrameNotPlanned(CORRUPT_IMAGE if isinstance(error, CorruptImageError) else BAD_INPUT, str(error))
    return PlannedFrame(plan, filled)


def is_perception_output(key: str) -> bool:
    """Whether an output is what the model perceived (the BEV grids, the boxes)."""
    return key == OBJECTS or key.startswith(BEV_PREFIX)


def perception_wanted(wanted: Collection[str]) -> bool:
    """Whether outputs in ``wanted`` need the perception heads (the debug image draws them)."""
    return any(is_perception_output(key) or key == DEBUG_IMAGE for key in wanted)


@dataclass
class PlanMessages:
    """The output messages of one plan by topic key, what the plan's boxes above the
    detection threshold are (evaluate-bag records them), and why ``path_odom`` is missing
    when it was wanted but the frame has no pose."""

    messages: dict[str, object] = field(default_factory=dict)
    boxes: tuple[Box, ...] = ()
    path_odom_error: str | None = None


def plan_messages(
    plan: Plan,
    ready: ReadyFrame,
    config: NodeConfig,
    wanted: Collection[str],
    *,
    untrained: bool = False,
    reprojection: Reprojection | None = None,
) -> PlanMessages:
    """The messages of the ``wanted`` output keys, stamped at the frame's anchor stamp in
    ``frame_id`` (``path_odom``: in the odometry frame)."""
    frame, frame_id = ready.frame, config.frame_id
    stamp_ns = frame.stamp_ns
    out = PlanMessages()
    if PATH in wanted:
        out.messages[PATH] = plan_to_path(plan, stamp_ns, frame_id, config.prepend_origin_pose)
    if PATH_ODOM in wanted:
        if frame.pose is None:
            out.path_odom_error = f"~/output/path_odom not published: {frame.pose_error}"
        else:
            out.messages[PATH_ODOM] = plan_to_odometry_path(
                plan, frame.pose, stamp_ns, ready.odometry_frame or "", config.prepend_origin_pose
            )
    if "markers" in wanted:
        out.messages["markers"] = plan_to_markers(plan, stamp_ns, frame_id)
    perceived = plan.perception
    if perceived is not None:
        out.boxes = perceived.boxes_above(config.detection_score_threshold)
        if OBJECTS in wanted:
            out.messages[OBJECTS] = boxes_to_markers(out.boxes, stamp_ns, frame_id)
        for key in wanted:
            if key.startswith(BEV_PREFIX):
                name = key.removeprefix(BEV_PREFIX)
                out.messages[key] = bev_class_grid(perceived.bev_probabilities, name, stamp_ns, frame_id)
    if DEBUG_IMAGE in wanted:
        caption = f"{ready.command.name.lower()}  v={frame.speed_mps:.1f} m/s  a={frame.acceleration_mps2:.1f} m/s2"
        front = None
        if config.camera_mode == "navsim_4cam":
            front = reprojection.front_view() if reprojection else nuplan_front_view(config.virtual_distortion)
        labels = perceived.bev_labels if perceived is not None else None
        picture = render_plan(
            plan.model_image,
            plan.waypoints,
            plan.headings,
            caption,
            untrained,
            bev_labels=labels,
            boxes=out.boxes,
            front_view=front,
        )
        out.messages[DEBUG_IMAGE] = array_to_image(picture, stamp_ns, frame_id)
    return out
