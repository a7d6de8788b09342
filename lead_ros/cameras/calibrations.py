"""A camera rig over time: calibrations from the rig file, and from CameraInfo as it arrives.

Shared by the node (CameraInfo topics) and ``evaluate-bag`` (CameraInfo recorded in the bag),
so both plan with the same tables. Cameras calibrated in the rig file are known from the start;
a camera with ``camera_info: topic`` is known from its first CameraInfo. The reprojection exists
once every camera is known; until then no frame is planned. A CameraInfo that differs from the
one in force rebuilds that camera's remap table once; repeating an equal one changes nothing.
"""

from __future__ import annotations

from lead_ros.cameras.calibration import CameraCalibration
from lead_ros.cameras.reprojection import Reprojection
from lead_ros.cameras.rig import CameraRig, load_rig
from lead_ros.node_config import NodeConfig


class RigCalibrations:
    def __init__(self, rig: CameraRig, virtual_distortion: str = "nuplan") -> None:
        self.rig = rig
        self.virtual_distortion = virtual_distortion
        self.from_topics = rig.from_topics
        # Read by the planning thread as one reference per frame, replaced (never changed) here.
        self.reprojection: Reprojection | None = None if rig.from_topics else Reprojection(rig, virtual_distortion)
        self.rebuilds = 0  # tables rebuilt because a camera's CameraInfo changed

    @classmethod
    def from_config(cls, config: NodeConfig) -> RigCalibrations | None:
        """What ``camera_rig_file`` asks for (navsim_4cam only), or None (no rig)."""
        if not config.camera_rig_file or config.camera_mode != "navsim_4cam":
            return None
        return cls(load_rig(config.camera_rig_file), config.virtual_distortion)

    @property
    def missing(self) -> tuple[str, ...]:
        """Cameras whose CameraInfo has not arrived yet."""
        return self.rig.from_topics

    def size(self, name: str) -> tuple[int, int] | None:
        """(width, height) a camera's images must have; None while its CameraInfo is awaited."""
        return self.rig.size(name)

    def is_rectified(self, name: str) -> bool:
        return self.rig.cameras[name].rectified

    def update(self, name: str, calibration: CameraCalibration) -> bool:
        """A camera's calibration from its CameraInfo; True when it changed what is in force.
        Raises ``RigError`` (nothing changed) when it leaves the camera blind."""
        current = self.rig.cameras[name].calibration
        if current is not None and current.same_as(calibration):
            return False
        rig = self.rig.calibrated(name, calibration)
        if rig.from_topics:  # others still awaited
            self.rig = rig
            return True
        if self.reprojection is None:
            self.reprojection = Reprojection(rig, self.virtual_distortion)
        else:
            self.reprojection = self.reprojection.with_calibration(name, calibration)
            self.rebuilds += 1
        self.rig = rig
        return True

    def summary(self) -> str:
        """One line for logs."""
        if self.reprojection is not None:
            return self.reprojection.summary()
        cameras = ", ".join(self.missing)
        return f"camera rig {self.rig.source}: waiting for the CameraInfo of {cameras} (no frame is planned before)"
