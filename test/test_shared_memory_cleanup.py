"""The suite removes the DDS shared-memory segments that the node processes it stopped left
behind (0.5-35 MB of RAM each), and never a live participant's."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import PARTICIPANT_SEGMENT, SHARED_MEMORY, dds_settings_problems, remove_dead_participant_segments

PARTICIPANT = ("import rclpy, time; rclpy.init(); node = rclpy.create_node('{}'); print('up', flush=True); "
               "time.sleep(120)")


def _participant(name: str) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", PARTICIPANT.format(name)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "up\n"
    return process


def _participant_segments_of(process: subprocess.Popen) -> set[str]:
    """The participant segments ``process`` owns: those whose lock file (``<segment>_el``)
    it holds, as /proc/locks lists them. One with Jazzy's Fast DDS, two with Kilted's. (Not
    the segments it maps: a participant maps its peers' too; not "the new ones": another
    process may make some meanwhile.)"""
    held = {line.split()[5] for line in Path("/proc/locks").read_text().splitlines()
            if line.split()[1] == "FLOCK" and line.split()[4] == str(process.pid)}  # fmt: skip
    segments = set()
    for lock in SHARED_MEMORY.glob("*_el"):
        segment = lock.name[: -len("_el")]
        stat = lock.stat()
        device = f"{os.major(stat.st_dev):02x}:{os.minor(stat.st_dev):02x}:{stat.st_ino}"
        if device in held and PARTICIPANT_SEGMENT.fullmatch(segment):
            segments.add(segment)
    assert segments, f"participant {process.pid} holds the lock of no segment in {SHARED_MEMORY}"
    return segments


def test_the_segments_of_a_killed_participant_are_removed_and_a_live_ones_kept():
    assert not dds_settings_problems()
    since = time.time() - 1
    killed, alive = _participant("killed"), _participant("alive")
    try:
        made_by_killed, made_by_alive = _participant_segments_of(killed), _participant_segments_of(alive)
        killed.kill()  # as a node process that leaves by os._exit: Fast DDS removes nothing
        killed.wait()
        assert all((SHARED_MEMORY / name).exists() for name in made_by_killed)
        removed = set(remove_dead_participant_segments(since, settle_s=0))
        assert made_by_killed <= removed
        assert not any((SHARED_MEMORY / name).exists() for name in made_by_killed)
        assert not any((SHARED_MEMORY / f"{name}_el").exists() for name in made_by_killed)
        assert not made_by_alive & removed
        assert all((SHARED_MEMORY / name).exists() for name in made_by_alive)
    finally:
        for process in (killed, alive):
            process.kill()
            process.wait()
