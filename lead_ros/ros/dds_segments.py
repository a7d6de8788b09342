"""The Fast DDS shared-memory segments a process owns, and their removal.

Each DDS participant keeps a segment in ``/dev/shm`` (0.5-35 MB, in RAM) and a lock file
beside it (``<segment>_el``) that it holds with ``flock`` while it lives; Fast DDS removes
both when the participant is closed. A process that leaves without closing it (``os._exit``,
SIGKILL) leaves them behind until ``fastdds shm clean`` or a reboot. ``lead_planner``'s node
process leaves through ``os._exit`` after a signal (see ``lead_ros.ros.process``), which
finalizes no participant, so it removes the segments it owns first; its supervisor does the
same for a node process it has to kill. Owned means "its lock is held by that process", as
``/proc/locks`` lists it: a participant also maps its peers' segments, and those are not its
to remove. Standard library only: the supervisor imports this.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

SHARED_MEMORY = Path("/dev/shm")
# Jazzy's Fast DDS names a participant's segment fastrtps_<16 hex>, Kilted's fastdds_<16 hex>
# (two per participant); the shared port segments (fastdds_port7000) are not a participant's.
PARTICIPANT_SEGMENT = re.compile(r"(fastrtps|fastdds)_[0-9a-f]{16}")
LOCK_SUFFIX = "_el"
PROC_LOCKS = Path("/proc/locks")


def _flocks_held_by(pid: int) -> set[str]:
    """``MAJ:MIN:INODE`` of every flock ``pid`` holds (lines such as ``1: FLOCK ADVISORY WRITE
    4242 00:1a:23845 0 EOF``; a waiting lock's line has a ``->`` and is not held)."""
    held = set()
    for line in PROC_LOCKS.read_text().splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[4] == str(pid):
            held.add(fields[5])
    return held


def lock_file(segment: Path) -> Path:
    """The file that the segment's owner holds locked (flock) while it lives."""
    return segment.with_name(segment.name + LOCK_SUFFIX)


def participant_segments() -> list[tuple[Path, os.stat_result]]:
    """Every participant segment in ``SHARED_MEMORY`` with the ``stat`` of its lock file
    (whose times are the segment's creation); none where there is no such directory (not
    Linux); a file removed meanwhile is skipped."""
    found: list[tuple[Path, os.stat_result]] = []
    for lock in SHARED_MEMORY.glob(f"*{LOCK_SUFFIX}") if SHARED_MEMORY.is_dir() else ():
        segment = lock.with_name(lock.name[: -len(LOCK_SUFFIX)])
        if PARTICIPANT_SEGMENT.fullmatch(segment.name):
            try:
                found.append((segment, lock.stat()))
            except OSError:
                continue
    return found


def owned_segments(pid: int) -> list[Path]:
    """The participant segments whose lock ``pid`` holds; empty where there is no
    ``/proc/locks`` (not Linux) or it cannot be read."""
    try:
        held = _flocks_held_by(pid)
    except OSError:
        return []
    if not held:
        return []
    return [
        segment
        for segment, lock in participant_segments()
        if f"{os.major(lock.st_dev):02x}:{os.minor(lock.st_dev):02x}:{lock.st_ino}" in held
    ]


def remove_segments(segments: list[Path]) -> None:
    """Remove each segment and its lock file; one that is gone or cannot be removed is
    skipped (peers that mapped a segment keep their mapping until they drop it)."""
    for segment in segments:
        for path in (segment, lock_file(segment)):
            try:
                path.unlink(missing_ok=True)
            except OSError:
                continue
