"""Ctrl-C and SIGTERM for the ``lead-ros`` commands, whatever signal disposition they inherited.

A shell starts a background job (``cmd &`` in a script, ``nohup``, many CI runners and
supervisors) with SIGINT ignored, and Python then installs no SIGINT handler, so Ctrl-C would
be lost; SIGTERM (systemd, ``timeout``, launch's escalation) would kill the process before it
closes its bag. So every command runs inside ``handled_interrupts()``: the first SIGINT or
SIGTERM raises ``Interrupted`` (a KeyboardInterrupt) in the main thread, where each command
closes what it writes; later ones are ignored so that clean-up is not cut short. The exit
code is 128 + the signal number: 130 for SIGINT, 143 for SIGTERM.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

HANDLED = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """A SIGINT or SIGTERM asked the command to stop."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def exit_code(error: KeyboardInterrupt) -> int:
    """130 for SIGINT (and a plain KeyboardInterrupt), 143 for SIGTERM."""
    return 128 + (error.signum if isinstance(error, Interrupted) else signal.SIGINT)


def _on_signal(signum: int, frame) -> None:
    for other in HANDLED:
        signal.signal(other, signal.SIG_IGN)
    raise Interrupted(signum)


@contextmanager
def handled_interrupts() -> Iterator[None]:
    """Install the handlers for the duration of a command (main thread only; elsewhere, e.g.
    a command run from a test's worker thread, the inherited handling stays), then restore
    what was there before."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _on_signal) for signum in HANDLED}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
