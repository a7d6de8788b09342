"""The suite removes the DDS shared-memory segments that the node processes it stopped left
behind (0.5-35 MB of RAM each), and never a live participant's."""

from __future__ import annotations

import subprocess
import sys
import time

from conftest import PARTICIPANT_SEGMENT, SHARED_MEMORY, dds_settings_problems, remove_dead_participant_segments

PARTICIPANT = ("import rclpy, time; rclpy.init(); node = rclpy.create_node('{}'); print('up', flush=True); "
               "time.sleep(120)")


def _participant(name: str) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", PARTICIPANT.format(name)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "up\n"
    return process


def _segments() -> set[str]:
    return {lock.name[: -len("_el")] for lock in SHARED_MEMORY.glob("*_el")}


def test_the_segment_of_a_killed_participant_is_removed_and_a_live_ones_kept():
    assert not dds_settings_problems()
    since = time.time() - 1
    before = _segments()
    killed = _participant("killed")
    made_by_killed = _segments() - before
    alive = _participant("alive")
    made_by_alive = _segments() - before - made_by_killed
    try:
        killed.kill()  # as a node process that leaves by os._exit: Fast DDS removes nothing
        killed.wait()
        (segment,) = [name for name in made_by_killed if PARTICIPANT_SEGMENT.fullmatch(name)]
        assert (SHARED_MEMORY / segment).exists()
        removed = remove_dead_participant_segments(since, settle_s=0)
        assert segment in removed and not (SHARED_MEMORY / segment).exists()
        assert not (SHARED_MEMORY / f"{segment}_el").exists()
        assert not made_by_alive & set(removed)
        assert all((SHARED_MEMORY / name).exists() for name in made_by_alive)
    finally:
        alive.kill()
        alive.wait()
