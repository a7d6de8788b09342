"""How messages become a frame to plan (pure core, no rclpy): camera/odometry
synchronization, the ego state (speed, acceleration, pose), the driving command from a topic
or a route, and the latest-frame hand-off to the inference worker."""
