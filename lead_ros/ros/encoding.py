"""Core results -> ROS messages (the outputs' side; ``decoding`` is the inputs'), shared by the
node and the bag tools through ``lead_ros.ros.outputs``.

- Plans as ``nav_msgs/Path``: ISO 8855 poses stamped at the anchor stamp + t, z = 0 (the
  pose's height in the odometry frame), orientation from the heading.
- BEV class probabilities as ``nav_msgs/OccupancyGrid``, one per class: 0.25 m cells,
  256 x 256, origin (-32, -32, 0) with identity orientation in the planner's frame, and
  ``data[i * 256 + j] = round(100 * probability[c, i, j])`` in the published layout (row i
  along y left, column j along x forward). These are class probabilities, not occupancy.
- Boxes as ``visualization_msgs/MarkerArray``: DELETEALL first (boxes that disappear are
  cleared), then per box a CUBE (|2 half_length| x |2 half_width| x ``BOX_HEIGHT_M``, RViz
  refuses negative scales) and a score label.

Images follow environment.md §2.5: write with ``array.array('B', ...)``; never assign an
ndarray or memoryview to ``msg.data``.
"""

from __future__ import annotations

import array

import numpy as np
from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import Point, Pose, PoseStamped, Quaternion, Vector3
from nav_msgs.msg import MapMetaData, OccupancyGrid, Path
from sensor_msgs.msg import Image
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from lead_ros.frames import base_link_to_odometry, yaw_to_quaternion
from lead_ros.inputs.ego_state import EgoPose
from lead_ros.observation import Plan
from lead_ros.perception.bev import CELL_M, CLASS_NAMES, GRID_CELLS, GRID_MIN_M
from lead_ros.perception.outputs import Box

BASE_LINK = EgoPose(0.0, 0.0, 0.0, 0.0)  # the vehicle in its own frame

BOX_HEIGHT_M = 1.6  # drawn height of a vehicle box (the model predicts none)
LABEL_HEIGHT_M = 2.2


def bev_class_grid(probabilities: np.ndarray, class_name: str, stamp_ns: int, frame_id: str) -> OccupancyGrid:
    """One class of the (7, 256, 256) published-layout probabilities as an OccupancyGrid."""
    header = Header(stamp=ns_to_stamp(stamp_ns), frame_id=frame_id)
    origin = Pose(position=Point(x=GRID_MIN_M, y=GRID_MIN_M, z=0.0), orientation=Quaternion(w=1.0))
    info = MapMetaData(
        map_load_time=header.stamp, resolution=CELL_M, width=GRID_CELLS, height=GRID_CELLS, origin=origin
    )
    percent = np.rint(100.0 * probabilities[CLASS_NAMES.index(class_name)]).astype(np.int8)
    grid = OccupancyGrid(header=header, info=info)
    grid.data = array.array("b", percent.tobytes())
    return grid


def boxes_to_markers(boxes: tuple[Box, ...], stamp_ns: int, frame_id: str, namespace: str = "objects") -> MarkerArray:
    """DELETEALL, then a CUBE and a score label per box (ISO 8855 boxes in ``frame_id``)."""
    header = Header(stamp=ns_to_stamp(stamp_ns), frame_id=frame_id)
    markers = [Marker(header=header, ns=namespace, action=Marker.DELETEALL)]
    for k, box in enumerate(boxes):
        q = yaw_to_quaternion(box.yaw).tolist()
        cube = Marker(header=header, ns=namespace, id=k, type=Marker.CUBE, action=Marker.ADD)
        cube.pose = Pose(
            position=Point(x=box.x, y=box.y, z=BOX_HEIGHT_M / 2), orientation=Quaternion(x=q[0], y=q[1], z=q[2], w=q[3])
        )
        cube.scale = Vector3(
            x=max(abs(2 * box.half_length), 0.01), y=max(abs(2 * box.half_width), 0.01), z=BOX_HEIGHT_M
        )
        cube.color = ColorRGBA(r=0.1, g=0.6 + 0.4 * box.score, b=1.0, a=0.6)
        cube.lifetime = Duration()
        label = Marker(header=header, ns=f"{namespace}/score", id=k, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD)
        label.pose = Pose(position=Point(x=box.x, y=box.y, z=LABEL_HEIGHT_M), orientation=Quaternion(w=1.0))
        label.scale.z = 0.8
        label.color = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
        label.text = f"{box.score:.2f}"
        markers += [cube, label]
    return MarkerArray(markers=markers)


def ns_to_stamp(ns: int) -> Time:
    return Time(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


def plan_to_path(plan: Plan, stamp_ns: int, frame_id: str, prepend_origin: bool = False) -> Path:
    """ISO 8855 poses stamped at anchor + t; z = 0, orientation from the heading."""
    return _poses_to_path(plan.times_s, plan.waypoints, plan.headings, stamp_ns, frame_id, prepend_origin, BASE_LINK)


def plan_to_odometry_path(
    plan: Plan, pose: EgoPose, stamp_ns: int, frame_id: str, prepend_origin: bool = False
) -> Path:
    """The poses of ``plan_to_path`` composed with the ego pose at the anchor stamp: in the
    odometry frame ``frame_id``, at the pose's height; same stamps."""
    points, headings = base_link_to_odometry(pose.xy, pose.yaw, plan.waypoints, plan.headings)
    return _poses_to_path(plan.times_s, points, headings, stamp_ns, frame_id, prepend_origin, pose)


def _poses_to_path(
    times, points, headings, stamp_ns: int, frame_id: str, prepend_origin: bool, origin: EgoPose
) -> Path:
    """Poses at anchor + t; ``origin`` (the vehicle at t = 0) is prepended when asked for."""
    path = Path(header=Header(stamp=ns_to_stamp(stamp_ns), frame_id=frame_id))
    times, points, headings = list(times), np.asarray(points).tolist(), np.asarray(headings).tolist()
    if prepend_origin:
        times, points, headings = [0.0, *times], [list(origin.xy), *points], [origin.yaw, *headings]
    for t, (x, y), q in zip(times, points, yaw_to_quaternion(np.array(headings)).tolist(), strict=True):
        pose = Pose(position=Point(x=x, y=y, z=origin.z), orientation=Quaternion(x=q[0], y=q[1], z=q[2], w=q[3]))
        header = Header(stamp=ns_to_stamp(stamp_ns + round(t * 1e9)), frame_id=frame_id)
        path.poses.append(PoseStamped(header=header, pose=pose))
    return path


def plan_to_markers(plan: Plan, stamp_ns: int, frame_id: str, namespace: str = "lead_planner") -> MarkerArray:
    """A line strip through the waypoints and one heading arrow per waypoint."""
    header = Header(stamp=ns_to_stamp(stamp_ns), frame_id=frame_id)
    line = Marker(header=header, ns=f"{namespace}/path", id=0, type=Marker.LINE_STRIP, action=Marker.ADD)
    line.pose.orientation.w = 1.0
    line.scale.x = 0.15
    line.color = ColorRGBA(r=1.0, g=0.25, b=0.1, a=1.0)
    line.points = [Point(x=0.0, y=0.0, z=0.0)] + [Point(x=x, y=y, z=0.0) for x, y in plan.waypoints.tolist()]
    markers = [line]
    for i, ((x, y), q) in enumerate(
        zip(plan.waypoints.tolist(), yaw_to_quaternion(plan.headings).tolist(), strict=True)
    ):
        arrow = Marker(header=header, ns=f"{namespace}/headings", id=i, type=Marker.ARROW, action=Marker.ADD)
        arrow.pose = Pose(position=Point(x=x, y=y, z=0.0), orientation=Quaternion(x=q[0], y=q[1], z=q[2], w=q[3]))
        arrow.scale = Vector3(x=1.0, y=0.12, z=0.12)
        arrow.color = ColorRGBA(r=1.0, g=0.85, b=0.3, a=1.0)
        markers.append(arrow)
    return MarkerArray(markers=markers)


def array_to_image(image: np.ndarray, stamp_ns: int, frame_id: str, encoding: str = "rgb8") -> Image:
    height, width = image.shape[:2]
    msg = Image(
        header=Header(stamp=ns_to_stamp(stamp_ns), frame_id=frame_id),
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=0,
        step=3 * width,
    )
    msg.data = array.array("B", np.ascontiguousarray(image).tobytes())
    return msg
