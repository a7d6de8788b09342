"""A size-one hand-off between subscription callbacks and the inference worker.

The newest frame replaces an unconsumed older one (which is counted as dropped), so the
worker always plans on the freshest input and callbacks never block on the network.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestFrameQueue(Generic[T]):
    def __init__(self) -> None:
        self._item: T | None = None
        self._closed = False
        self._condition = threading.Condition()
        self.put_count = 0
        self.dropped_count = 0

    def put(self, item: T) -> T | None:
        """Offer a frame; returns the older frame it displaced, if any."""
        with self._condition:
            dropped, self._item = self._item, item
            self.put_count += 1
            if dropped is not None:
                self.dropped_count += 1
            self._condition.notify()
            return dropped

    def get(self, timeout: float | None = None) -> T | None:
        """The newest frame, waiting up to ``timeout`` s; None on timeout or after close."""
        with self._condition:
            self._condition.wait_for(lambda: self._item is not None or self._closed, timeout)
            item, self._item = self._item, None
            return item

    def clear(self) -> None:
        """Discard a frame still waiting (counted as dropped): planning stopped (deactivate)."""
        with self._condition:
            if self._item is not None:
                self.dropped_count += 1
                self._item = None

    def close(self) -> None:
        """Wake the consumer for shutdown; a frame still queued is counted as dropped."""
        with self._condition:
            self._closed = True
            if self._item is not None:
                self.dropped_count += 1
                self._item = None
            self._condition.notify_all()

    @property
    def pending(self) -> int:
        with self._condition:
            return 0 if self._item is None else 1
