"""The ROS 2 distribution lead_ros runs on, and everything that differs between the ones it supports.

lead_ros is tested on Jazzy (the LTS, rclpy 7.x) and Kilted (rclpy 9.x). This module is the one
place that branches on the rclpy version; the rest of the package asks ``RUNNING`` instead of
checking versions itself. What differs, by the rclpy release that changed it:

- rosbag2's metadata format (not rclpy, but it comes with the distribution): Jazzy's ``ros2 bag``
  writes and reads metadata version 8; Kilted's (rosbag2 0.32) writes version 9, which stores the
  QoS profiles as a YAML list with enum names instead of a YAML string of numbers, and which
  Jazzy's ``ros2 bag`` cannot read. lead_ros writes the version of the running distribution and
  reads every version (rosbags).
- rosbags' message definitions for bags without embedded ones: its Jazzy and Kilted type stores
  (identical for every message lead_ros uses; a test keeps it so).
- A lifecycle ``change_state`` request for a transition the current state does not have (a
  lifecycle manager's mistake, ``configure`` of a finalized node): rclpy 9 logs it and answers
  ``success: false``; rclpy 7 raises RCLError out of the service callback, which ends the
  executor's spin, so the node stops serving everything. ``answer_invalid_transitions`` gives
  Jazzy the Kilted behaviour.

The distribution is taken from the installed rclpy (its version is what the APIs follow), with
``ROS_DISTRO`` (exported by a sourced ROS installation) only where rclpy's package metadata is
missing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING

from rclpy._rclpy_pybind11 import RCLError
from rosbags.typesys import Stores

if TYPE_CHECKING:
    from rclpy.lifecycle import LifecycleNode


@dataclass(frozen=True)
class RosDistro:
    """One supported ROS 2 distribution: the facts lead_ros needs about it."""

    name: str
    rclpy_major: int
    bag_version: int  # the rosbag2 metadata version its ``ros2 bag`` writes (and the newest it reads)
    typestore: Stores  # rosbags' message definitions of the distribution

    def __str__(self) -> str:
        name = self.name.capitalize()
        return f"ROS 2 {name} (rclpy {self.rclpy_major}.x, rosbag2 metadata version {self.bag_version})"


JAZZY = RosDistro("jazzy", 7, 8, Stores.ROS2_JAZZY)
KILTED = RosDistro("kilted", 9, 9, Stores.ROS2_KILTED)
SUPPORTED = (JAZZY, KILTED)
# The oldest rosbag2 metadata version that every supported distribution's ``ros2 bag`` reads:
# what a bag meant for all of them (the shipped sample drive) is written in.
PORTABLE_BAG_VERSION = min(d.bag_version for d in SUPPORTED)


def distro_for(rclpy_version: str | None, ros_distro_env: str | None = None) -> RosDistro:
    """The supported distribution whose rclpy has ``rclpy_version`` ("7.1.6"); without a version,
    the one ``ros_distro_env`` names. Raises RuntimeError, in one line, for anything else."""
    if rclpy_version is not None:
        major = int(rclpy_version.split(".")[0])
        for distro in SUPPORTED:
            if distro.rclpy_major == major:
                return distro
        known = ", ".join(f"{d.rclpy_major}.x ({d.name})" for d in SUPPORTED)
        raise RuntimeError(
            f"rclpy {rclpy_version} is not a supported ROS 2 distribution; lead_ros supports rclpy {known}"
        )
    for distro in SUPPORTED:
        if distro.name == (ros_distro_env or "").strip().lower():
            return distro
    names = " or ".join(d.name for d in SUPPORTED)
    raise RuntimeError(
        f"cannot tell the ROS 2 distribution: rclpy has no package metadata and ROS_DISTRO is "
        f"{ros_distro_env!r}, expected {names}"
    )


def _installed_rclpy_version() -> str | None:
    for name in ("rclpy", "ros-rclpy"):  # an installed ROS package; the PyPI wheel
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


RUNNING = distro_for(_installed_rclpy_version(), os.environ.get("ROS_DISTRO"))


def answer_invalid_transitions(node: LifecycleNode) -> None:
    """Make ``node``'s ``change_state`` service answer ``success: false`` to a transition its
    current state does not have, as rclpy 9 does, instead of raising out of the executor (rclpy 7).
    The state machine has not moved when the transition is refused, so the answer is the truth."""
    if RUNNING.rclpy_major >= KILTED.rclpy_major:
        return
    service = node._service_change_state  # rclpy 7's LifecycleNodeMixin keeps it under this name
    change_state = service.callback

    def refusing_invalid_transitions(request, response):
        try:
            return change_state(request, response)
        except RCLError as error:
            state = node._state_machine.current_state[1]
            node.get_logger().error(
                f"lifecycle transition {request.transition.id} ({request.transition.label!r}) "
                f"refused in state {state}: {' '.join(str(error).split())}"
            )
            response.success = False
            return response

    service.callback = refusing_invalid_transitions
