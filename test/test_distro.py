"""The supported ROS 2 distributions (Jazzy, Kilted): which one is running, what differs between
them (``lead_ros.ros.distro``), and that the message definitions lead_ros writes into bags agree."""

from __future__ import annotations

import os
from importlib import metadata

import pytest
from rosbags.typesys import get_typestore

from lead_ros.bag.reader import MESSAGE_CLASSES
from lead_ros.ros.distro import JAZZY, KILTED, PORTABLE_BAG_VERSION, RUNNING, SUPPORTED, distro_for

# Everything lead_ros reads from or writes into a bag: its inputs (evaluate-bag, replay), its
# outputs (evaluate-bag's output bag with perception, record-path) and the sample drive.
BAG_TYPES = sorted({*MESSAGE_CLASSES, "nav_msgs/msg/OccupancyGrid", "visualization_msgs/msg/MarkerArray"})


def test_the_running_distribution_is_the_installed_rclpy_and_the_one_make_asked_for():
    """``make test ROS_DISTRO=...`` exports the distribution it set the venv up for: a venv that
    holds another distribution's rclpy fails here, not somewhere in the middle of the suite."""
    assert RUNNING.rclpy_major == int(metadata.version("rclpy").split(".")[0])
    if "ROS_DISTRO" in os.environ:
        assert RUNNING.name == os.environ["ROS_DISTRO"], f"ROS_DISTRO={os.environ['ROS_DISTRO']} but {RUNNING} runs"


@pytest.mark.parametrize(
    ("rclpy_version", "environment", "expected"),
    [("7.1.6", None, JAZZY), ("9.1.2", "jazzy", KILTED), (None, "Jazzy", JAZZY), (None, "kilted", KILTED)],
)
def test_the_distribution_follows_rclpy_and_ros_distro_only_without_it(rclpy_version, environment, expected):
    assert distro_for(rclpy_version, environment) is expected


@pytest.mark.parametrize(
    ("rclpy_version", "environment", "message"),
    [
        ("3.3.16", "humble", r"rclpy 3\.3\.16 is not a supported ROS 2 distribution; .*7\.x \(jazzy\), 9\.x"),
        (None, "humble", r"cannot tell the ROS 2 distribution: .* ROS_DISTRO is 'humble', expected jazzy or kilted"),
        (None, None, r"ROS_DISTRO is None"),
    ],
)
def test_an_unsupported_distribution_is_one_clear_line(rclpy_version, environment, message):
    with pytest.raises(RuntimeError, match=message) as raised:
        distro_for(rclpy_version, environment)
    assert "\n" not in str(raised.value)


def test_bag_versions_are_what_each_distributions_ros2_bag_writes():
    """Jazzy's rosbag2 writes metadata version 8 and cannot read 9 (QoS profiles as a YAML list
    with enum names), which Kilted's writes; the shipped sample is written in 8."""
    assert (JAZZY.bag_version, KILTED.bag_version, PORTABLE_BAG_VERSION) == (8, 9, 8)


@pytest.mark.parametrize("msgtype", BAG_TYPES)
def test_message_definitions_agree_in_the_jazzy_and_kilted_stores(msgtype):
    """The definitions (with every nested type) and their hashes are the same, so a bag written on
    one distribution carries the messages the other expects."""
    jazzy, kilted = (get_typestore(d.typestore) for d in SUPPORTED)
    assert jazzy.generate_msgdef(msgtype, ros_version=2) == kilted.generate_msgdef(msgtype, ros_version=2)
    assert jazzy.hash_rihs01(msgtype) == kilted.hash_rihs01(msgtype)
