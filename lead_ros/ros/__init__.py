"""The thin ROS 2 layer: message conversion, diagnostics and the lead_planner node."""
