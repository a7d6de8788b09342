"""lead_ros: LTFv6 (Latent TransFuser v6) end-to-end driving planner for ROS 2.

Layers, imports pointing down only (``test/test_layering.py`` keeps it so):
``lead_ros.tools`` (command line) -> ``lead_ros.bag`` (bag tools) -> ``lead_ros.ros`` (the node)
-> the pure core, which never imports rclpy: ``planner``, ``inputs``, ``preprocessing``,
``node_config``, ``weights``, ``perception``, ``observation``, ``frames``, ``model``.
"""

__version__ = "0.1.0"
