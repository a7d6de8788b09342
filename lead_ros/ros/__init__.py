"""The thin ROS 2 layer: message conversion, input intake, diagnostics and the lead_planner
node. Imports the core only; the bag tools and the command line build on it."""
