"""The suite removes the DDS shared-memory segments that the processes it kills leave behind
(0.5-35 MB of RAM each), and never a live participant's."""

from __future__ import annotations

import subprocess
import sys
import time

from conftest import dds_settings_problems, remove_dead_participant_segments
from lead_ros.ros.dds_segments import SHARED_MEMORY, lock_file, owned_segments

PARTICIPANT = (
    "import rclpy, time; rclpy.init(); node = rclpy.create_node('{}'); print('up', flush=True); time.sleep(120)"
)


def _participant(name: str) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", PARTICIPANT.format(name)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "up\n"
    return process


def test_the_segments_of_a_killed_participant_are_removed_and_a_live_ones_kept():
    assert not dds_settings_problems()
    since = time.time() - 1
    killed, alive = _participant("killed"), _participant("alive")
    try:
        # Owned: their lock is held by that process (a participant maps its peers' segments
        # too); one per participant with Jazzy's Fast DDS, two with Kilted's.
        made_by_killed = {segment.name for segment in owned_segments(killed.pid)}
        made_by_alive = {segment.name for segment in owned_segments(alive.pid)}
        assert made_by_killed and made_by_alive and not made_by_killed & made_by_alive
        killed.kill()  # as the OOM killer would: Fast DDS removes nothing
        killed.wait()
        assert all((SHARED_MEMORY / name).exists() for name in made_by_killed)
        removed = set(remove_dead_participant_segments(since, settle_s=0))
        assert made_by_killed <= removed
        assert not any((SHARED_MEMORY / name).exists() for name in made_by_killed)
        assert not any(lock_file(SHARED_MEMORY / name).exists() for name in made_by_killed)
        assert not made_by_alive & removed
        assert all((SHARED_MEMORY / name).exists() for name in made_by_alive)
    finally:
        for process in (killed, alive):
            process.kill()
            process.wait()
