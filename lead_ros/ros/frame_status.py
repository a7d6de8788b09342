"""One message per anchor frame saying what the node did with it: ``~/debug/frame_status``.

Paths exist only for planned frames, so a path topic cannot tell a tool that a frame was
skipped, and why (``superseded`` when a newer frame was planned instead). Every anchor frame
the active node decides gets exactly one ``diagnostic_msgs/DiagnosticStatus`` here: planned,
or skipped with the reason diagnostics counts it under. Lockstep replay waits for it (an
answer for every frame, skipped ones too) and ``make demo`` explains a live/offline
difference with it. The keys are those of ``evaluate-bag``'s ``frames.jsonl`` records, so
both sides read the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

PLANNED = "planned"
SKIPPED = "skipped"


@dataclass(frozen=True)
class FrameStatus:
    stamp_ns: int | None  # the anchor's header stamp; None when its message had no usable stamp
    status: str  # PLANNED or SKIPPED
    reason: str = ""  # why it was skipped (the diagnostics counter name)
    detail: str = ""
    command: str = ""  # left/straight/right/unknown, once synchronized
    command_source: str = ""
    speed_mps: float | None = None
    acceleration_mps2: float | None = None

    def to_message(self, node_name: str) -> DiagnosticStatus:
        level = DiagnosticStatus.OK if self.status == PLANNED else DiagnosticStatus.WARN
        message = self.status if not self.reason else f"{self.status}: {self.reason}"
        values = {
            "stamp_ns": "" if self.stamp_ns is None else str(self.stamp_ns),
            "status": self.status,
            "reason": self.reason,
            "detail": self.detail,
            "command": self.command,
            "command_source": self.command_source,
            "speed_mps": "" if self.speed_mps is None else repr(self.speed_mps),
            "acceleration_mps2": "" if self.acceleration_mps2 is None else repr(self.acceleration_mps2),
        }
        return DiagnosticStatus(
            level=level, name=node_name, message=message, values=[KeyValue(key=k, value=v) for k, v in values.items()]
        )

    @classmethod
    def from_message(cls, msg: DiagnosticStatus) -> FrameStatus:
        values = {kv.key: kv.value for kv in msg.values}

        def number(key: str, kind):
            return kind(values[key]) if values.get(key) else None

        return cls(
            stamp_ns=number("stamp_ns", int),
            status=values.get("status", ""),
            reason=values.get("reason", ""),
            detail=values.get("detail", ""),
            command=values.get("command", ""),
            command_source=values.get("command_source", ""),
            speed_mps=number("speed_mps", float),
            acceleration_mps2=number("acceleration_mps2", float),
        )

    def same_decision(self, other: FrameStatus) -> bool:
        """Both planned with the same command and ego state, or both skipped for the same reason."""
        if self.status != other.status or self.stamp_ns != other.stamp_ns:
            return False
        if self.status != PLANNED:
            return self.reason == other.reason
        return (self.command, self.command_source, self.speed_mps, self.acceleration_mps2) == (
            other.command,
            other.command_source,
            other.speed_mps,
            other.acceleration_mps2,
        )

    def describe(self) -> str:
        """One line: planned or skipped and why, the command and the speed."""
        if self.status != PLANNED:
            return f"{self.status} ({self.reason}: {self.detail})"
        return f"planned, command {self.command} ({self.command_source}), speed {self.speed_mps:.3f} m/s"

    @classmethod
    def from_record(cls, record: dict) -> FrameStatus:
        """From an ``evaluate-bag`` ``frames.jsonl`` record."""
        return cls(
            stamp_ns=record.get("stamp_ns"),
            status=record["status"],
            reason=record.get("reason", ""),
            detail=record.get("detail", ""),
            command=record.get("command", ""),
            command_source=record.get("command_source", ""),
            speed_mps=record.get("speed_mps"),
            acceleration_mps2=record.get("acceleration_mps2"),
        )
