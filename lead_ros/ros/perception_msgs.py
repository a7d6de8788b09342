"""Perception -> ROS messages, shared by the node and ``evaluate-bag --perception``.

- BEV class probabilities as ``nav_msgs/OccupancyGrid``, one per class: 0.25 m cells,
  256 x 256, origin (-32, -32, 0) with identity orientation in the planner's frame, and
  ``data[i * 256 + j] = round(100 * probability[c, i, j])`` in the published layout (row i
  along y left, column j along x forward). These are class probabilities, not occupancy.
- Boxes as ``visualization_msgs/MarkerArray``: DELETEALL first (boxes that disappear are
  cleared), then per box a CUBE (|2 half_length| x |2 half_width| x ``BOX_HEIGHT_M``, RViz
  refuses negative scales) and a score label.
"""

from __future__ import annotations

import array

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
from nav_msgs.msg import MapMetaData, OccupancyGrid
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from lead_ros.frames import yaw_to_quaternion
from lead_ros.perception.bev import CELL_M, CLASS_NAMES, GRID_CELLS, GRID_MIN_M
from lead_ros.perception.outputs import Box
from lead_ros.ros.conversions import ns_to_stamp

BOX_HEIGHT_M = 1.6  # drawn height of a vehicle box (the model predicts none)
LABEL_HEIGHT_M = 2.2


def bev_class_grid(probabilities: np.ndarray, class_name: str, stamp_ns: int, frame_id: str) -> OccupancyGrid:
    """One class of the (7, 256, 256) published-layout probabilities as an OccupancyGrid."""
    header = Header(stamp=ns_to_stamp(stamp_ns), frame_id=frame_id)
    origin = Pose(position=Point(x=GRID_MIN_M, y=GRID_MIN_M, z=0.0), orientation=Quaternion(w=1.0))
    info = MapMetaData(map_load_time=header.stamp, resolution=CELL_M, width=GRID_CELLS, height=GRID_CELLS,
                       origin=origin)  # fmt: skip
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
        cube.pose = Pose(position=Point(x=box.x, y=box.y, z=BOX_HEIGHT_M / 2),
                         orientation=Quaternion(x=q[0], y=q[1], z=q[2], w=q[3]))  # fmt: skip
        cube.scale = Vector3(x=max(abs(2 * box.half_length), 0.01), y=max(abs(2 * box.half_width), 0.01),
                             z=BOX_HEIGHT_M)  # fmt: skip
        cube.color = ColorRGBA(r=0.1, g=0.6 + 0.4 * box.score, b=1.0, a=0.6)
        cube.lifetime = Duration()
        label = Marker(header=header, ns=f"{namespace}/score", id=k, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD)
        label.pose = Pose(position=Point(x=box.x, y=box.y, z=LABEL_HEIGHT_M), orientation=Quaternion(w=1.0))
        label.scale.z = 0.8
        label.color = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
        label.text = f"{box.score:.2f}"
        markers += [cube, label]
    return MarkerArray(markers=markers)
