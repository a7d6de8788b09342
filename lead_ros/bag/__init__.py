"""rosbag2 tools built on ``rosbags``: offline evaluation, live replay, path recording."""
