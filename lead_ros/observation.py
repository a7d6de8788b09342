"""Typed planner inputs and outputs shared by the node, the tools and the CLI."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from lead_ros.perception.outputs import Perception

WAYPOINT_PERIOD_S = 0.5
NUM_WAYPOINTS = 8
WAYPOINT_TIMES_S = tuple(WAYPOINT_PERIOD_S * (i + 1) for i in range(NUM_WAYPOINTS))


class Command(IntEnum):
    """NAVSIM driving command; the value is the one-hot index and the UInt8 on the wire."""

    LEFT = 0
    STRAIGHT = 1
    RIGHT = 2
    UNKNOWN = 3

    @classmethod
    def parse(cls, value: str | int) -> Command:
        """A name (left, straight, right, unknown) or an index 0..3."""
        if isinstance(value, str) and not value.strip().isdigit():
            try:
                return cls[value.strip().upper()]
            except KeyError:
                raise ValueError(f"command {value!r} is not one of {', '.join(c.name.lower() for c in cls)}") from None
        try:
            return cls(int(value))
        except ValueError:
            raise ValueError(f"command {value!r} is outside 0..3 (0 left, 1 straight, 2 right, 3 unknown)") from None

    def one_hot(self) -> list[float]:
        return [1.0 if i == self.value else 0.0 for i in range(len(Command))]


class ObservationError(ValueError):
    """An ego-state value the model cannot take; the message names it."""


@dataclass(frozen=True)
class Observation:
    """One planning input: either four cameras or a stitched image, plus the ego state.

    ``cameras`` are (l0, f0, r0, b0) arrays (``None`` for a side camera filled black), of equal
    size unless a camera rig describes them; ``image`` is an already stitched (H, 1920, 3)
    model input. ``encoding`` is rgb8 or bgr8 for whichever is given.
    """

    speed_mps: float
    acceleration_mps2: float
    command: Command
    cameras: tuple[np.ndarray | None, ...] | None = None
    image: np.ndarray | None = None
    encoding: str = "rgb8"

    def __post_init__(self) -> None:
        if (self.cameras is None) == (self.image is None):
            raise ObservationError("observation: give exactly one of cameras (4 images) or image (stitched)")
        if not math.isfinite(self.speed_mps) or self.speed_mps < 0:
            raise ObservationError(f"speed: expected a finite value >= 0 m/s, got {self.speed_mps}")
        if not math.isfinite(self.acceleration_mps2):
            raise ObservationError(f"acceleration: expected a finite value in m/s^2, got {self.acceleration_mps2}")
        if not isinstance(self.command, Command):
            object.__setattr__(self, "command", Command.parse(self.command))


@dataclass(frozen=True)
class PlanTimings:
    preprocess_ms: float
    inference_ms: float
    postprocess_ms: float


@dataclass(frozen=True)
class Plan:
    """Planned trajectory: ISO 8855 (x forward, y left) plus the raw CARLA-frame output."""

    waypoints: np.ndarray  # (8, 2) metres, ISO 8855
    headings: np.ndarray  # (8,) radians, ISO 8855 (counter-clockwise positive)
    waypoints_carla: np.ndarray  # (8, 2) metres, model frame (y right)
    headings_carla: np.ndarray  # (8,) radians, model frame
    timings: PlanTimings
    model_image: np.ndarray  # (H, 1920, 3) uint8 RGB the network saw
    times_s: tuple[float, ...] = WAYPOINT_TIMES_S
    perception: Perception | None = None  # with Planner.plan(..., perception=True)
