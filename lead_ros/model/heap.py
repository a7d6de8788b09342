"""Giving freed C-heap memory back to the operating system."""

from __future__ import annotations

import ctypes

_LIBC: ctypes.CDLL | None
try:
    _LIBC = ctypes.CDLL("libc.so.6")
except OSError:  # not glibc (musl, macOS): nothing to trim
    _LIBC = None


def return_free_heap() -> None:
    """Hand the C heap's free pages back to the OS (glibc ``malloc_trim``; elsewhere nothing).

    Called after ONNX Runtime sessions are made (the parsed model file they were built from
    is freed but stayed resident: a planner at 1.7-1.8 GB after loading, 1.39 GB with the
    trim, forward latency unchanged within this machine's noise) and when a planner is closed
    (a dropped session's memory stayed resident too: 525 of 610 MB, 77 MB after the trim).
    Trimming changes no state and touches no other planner's memory."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
