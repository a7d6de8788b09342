"""The ROS 2 wheels and the loopback DDS settings work: one nav_msgs/Path round trip."""

from __future__ import annotations

import time


def test_path_round_trip_in_process(ros_context):
    import rclpy
    from geometry_msgs.msg import PoseStamped
    from nav_msgs.msg import Path
    from rclpy.executors import SingleThreadedExecutor

    node = rclpy.create_node("roundtrip_test", context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    received = []
    node.create_subscription(Path, "roundtrip_path", received.append, 10)
    publisher = node.create_publisher(Path, "roundtrip_path", 10)
    message = Path()
    message.header.frame_id = "base_link"
    for i in range(3):
        pose = PoseStamped()
        pose.pose.position.x = float(i)
        pose.pose.position.y = -0.5 * i
        message.poses.append(pose)
    deadline = time.monotonic() + 15.0
    while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    publisher.publish(message)
    while not received and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    node.destroy_node()
    executor.shutdown()
    assert received, "no Path received over loopback DDS"
    path = received[0]
    assert path.header.frame_id == "base_link"
    assert [(p.pose.position.x, p.pose.position.y) for p in path.poses] == [(0.0, 0.0), (1.0, -0.5), (2.0, -1.0)]
