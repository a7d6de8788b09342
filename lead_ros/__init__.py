"""lead_ros: LTFv6 (Latent TransFuser v6) end-to-end driving planner for ROS 2.

The package is split into a pure core (``lead_ros.model``, ``lead_ros.weights``,
``lead_ros.preprocessing``, ``lead_ros.frames``, ``lead_ros.planner``) that never imports
rclpy, and a thin ROS layer in ``lead_ros.ros``.
"""

__version__ = "0.1.0"
