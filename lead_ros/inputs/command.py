"""The route command in force: the last one received on the command topic, until replaced
or stale (``command_input: topic``; the route input is ``lead_ros.inputs.route``)."""

from __future__ import annotations

from dataclasses import dataclass

from lead_ros.observation import Command


@dataclass(frozen=True)
class CommandState:
    command: Command
    source: str  # "received", or "default: <why>" (none received yet, stale, unusable route, ...)
    age_s: float | None
    lateral_m: float | None = None  # command_input route: the rule's lateral value (lead_ros.inputs.route)


class CommandTracker:
    """Holds the latest valid command; ``timeout_s`` > 0 makes it expire."""

    def __init__(self, default: Command, timeout_s: float = 0.0) -> None:
        self.default = default
        self.timeout_s = timeout_s
        self._latest: Command | None = None
        self._received_ns: int | None = None

    def update(self, value: int, now_ns: int) -> Command:
        """Accept a wire value 0..3; raises ValueError (naming the value) otherwise."""
        command = Command.parse(int(value))
        self._latest, self._received_ns = command, now_ns
        return command

    def reset(self) -> None:
        self._latest = self._received_ns = None

    def state(self, now_ns: int) -> CommandState:
        if self._latest is None or self._received_ns is None:
            return CommandState(self.default, "default: none received yet", None)
        age_s = (now_ns - self._received_ns) / 1e9
        if self.timeout_s > 0 and age_s > self.timeout_s:
            return CommandState(self.default, "default: last command stale", age_s)
        return CommandState(self._latest, "received", age_s)
