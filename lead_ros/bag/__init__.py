"""rosbag2 tools built on ``rosbags``: offline evaluation (one machine or Ray), live replay,
path recording, metrics and pictures, and the sample drive's generator. Imports the ROS layer
and the core; only ``lead_ros.tools`` imports it."""
