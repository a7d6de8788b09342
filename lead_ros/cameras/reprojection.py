"""Reprojection of a vehicle's cameras into the nuPlan cameras LTFv6 was trained with.

For each camera, once per calibration, a remap table takes every pixel of the *virtual* camera
(nuPlan's intrinsics, orientation and, with ``virtual_distortion: nuplan``, its lens
distortion) to a ray, turns the ray from the virtual camera's optical frame into the real
camera's (rotation only: a different mounting position cannot be corrected from one image,
since objects at different depths would need different shifts) and projects it with the real
camera's intrinsics and distortion. Rays the real camera does not image stay black; the
fraction it does image is the camera's *coverage*.

Per frame only the pixels the model input reads are computed: the 4x INTER_LINEAR reduction
of a 1920x1080 virtual image to 480x270 reads rows and columns 4k+1 and 4k+2 with equal
weights, so remapping just those (a 960x540 grid) and halving that with INTER_LINEAR gives
the same bytes as remapping the whole image and reducing it (the tests compare them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from lead_ros.camera_layout import ANCHOR_CAMERA, CAMERA_NAMES, ImageInputError
from lead_ros.cameras.calibration import CameraCalibration
from lead_ros.cameras.rig import NUPLAN, CameraRig, RigCamera, RigError, load_rig
from lead_ros.node_config import VIRTUAL_DISTORTIONS

VIRTUAL_WIDTH, VIRTUAL_HEIGHT = 1920, 1080
MODEL_VIEW_WIDTH, MODEL_VIEW_HEIGHT = VIRTUAL_WIDTH // 4, VIRTUAL_HEIGHT // 4
# Coverage (the fraction of a virtual image the real camera sees) below these is reported:
# WARN under 90 % (a visible black band the model never saw in training), ERROR under 50 %
# (half of the view is invented). Planning stops only for a camera with no coverage at all.
COVERAGE_WARN = 0.90
COVERAGE_ERROR = 0.50
_OUTSIDE = -1000.0  # map value of uncovered pixels: BORDER_CONSTANT makes them black


def virtual_rig(virtual_distortion: str = "nuplan") -> CameraRig:
    """The cameras the model was trained with; ``none`` drops their lens distortion (pinhole)."""
    if virtual_distortion not in VIRTUAL_DISTORTIONS:
        raise ValueError(f"virtual_distortion {virtual_distortion!r}: expected one of {', '.join(VIRTUAL_DISTORTIONS)}")
    rig = load_rig(NUPLAN)
    if virtual_distortion == "nuplan":
        return rig
    pinhole = {
        name: RigCamera(
            name,
            CameraCalibration(
                c.known_calibration.width,
                c.known_calibration.height,
                c.known_calibration.camera_matrix,
                "plumb_bob",
                np.zeros(5),
            ),
            c.rotation,
            c.position,
        )
        for name, c in rig.cameras.items()
    }
    return CameraRig(pinhole, rig.ground_z, f"{NUPLAN} (virtual_distortion none)")


def model_grid() -> tuple[np.ndarray, np.ndarray]:
    """Virtual-image columns and rows that the 4x INTER_LINEAR reduction reads (4k+1, 4k+2)."""

    def read(size: int) -> np.ndarray:
        return (4 * (np.arange(2 * size) // 2) + 1 + np.arange(2 * size) % 2).astype(np.float64)

    return read(MODEL_VIEW_WIDTH), read(MODEL_VIEW_HEIGHT)


def full_grid() -> tuple[np.ndarray, np.ndarray]:
    """Every column and row of the virtual image."""
    return np.arange(VIRTUAL_WIDTH, dtype=np.float64), np.arange(VIRTUAL_HEIGHT, dtype=np.float64)


def remap_tables(real: RigCamera, virtual: RigCamera, columns: np.ndarray, rows: np.ndarray):
    """Float maps (x, y) of shape (len(rows), len(columns)) from the virtual camera's pixels to
    the real camera's, and the mask of the pixels the real camera sees."""
    u, v = np.meshgrid(columns, rows)
    rays = virtual.known_calibration.unproject(np.stack((u.ravel(), v.ravel()), axis=1))
    # virtual optical -> base_link -> real optical (row vectors: r @ R.T applies R).
    rays_real = rays @ (real.rotation.T @ virtual.rotation).T
    pixels, seen = real.known_calibration.project(rays_real)
    pixels[~seen] = _OUTSIDE
    shape = u.shape
    maps = pixels[:, 0].reshape(shape).astype(np.float32), pixels[:, 1].reshape(shape).astype(np.float32)
    return maps, seen.reshape(shape)


@dataclass(frozen=True, eq=False)
class CameraReprojection:
    """One camera's remap onto its virtual camera; ``maps`` None: it is its virtual camera."""

    real: RigCamera
    virtual: RigCamera
    maps: tuple[np.ndarray, np.ndarray] | None
    coverage: float

    def model_view(self, image: np.ndarray | None) -> np.ndarray:
        """A camera image -> its 480x270 share of the model input (black when ``None``: a
        camera filled black is black in the virtual image too)."""
        if image is None:
            return np.zeros((MODEL_VIEW_HEIGHT, MODEL_VIEW_WIDTH, 3), np.uint8)
        width, height = self.real.known_calibration.width, self.real.known_calibration.height
        if image.shape[:2] != (height, width):
            got = f"{image.shape[1]}x{image.shape[0]}"
            raise ImageInputError(f"camera {self.real.name}: {got} pixels; the camera rig says {width}x{height}")
        grid = (
            image
            if self.maps is None
            else cv2.remap(image, *self.maps, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        )
        return cv2.resize(grid, (MODEL_VIEW_WIDTH, MODEL_VIEW_HEIGHT), interpolation=cv2.INTER_LINEAR)

    def virtual_view(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The whole 1920x1080 virtual image of a camera image and the mask of the pixels the
        real camera sees (for looking at a rig: tables built for this call, not kept)."""
        if self.maps is None:
            return image, np.ones(image.shape[:2], bool)
        (map_x, map_y), seen = remap_tables(self.real, self.virtual, *full_grid())
        view = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return view, seen


@dataclass(frozen=True, eq=False)
class FrontView:
    """Where ``base_link`` ground points appear in the f0 share of the model input: through the
    virtual f0 camera (its orientation, intrinsics, distortion) placed at the real f0 camera's
    position (the reprojection rotates about the real camera's optical centre)."""

    camera: RigCamera
    position: np.ndarray
    ground_z: float

    def project(self, points_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 2) ground points (x, y in base_link) -> (N, 2) pixel coordinates in the 480x270
        f0 view and the mask of those the camera sees."""
        points = np.asarray(points_xy, np.float64).reshape(-1, 2)
        world = np.column_stack((points, np.full(len(points), self.ground_z)))
        rays = (world - self.position) @ self.camera.rotation  # base_link -> optical: R^T (p - c)
        pixels, seen = self.camera.known_calibration.project(rays)
        return (pixels + 0.5) / (VIRTUAL_WIDTH / MODEL_VIEW_WIDTH) - 0.5, seen


@cache
def nuplan_front_view(virtual_distortion: str = "nuplan") -> FrontView:
    """The trained f0 camera itself (no rig: the cameras are taken to be nuPlan's)."""
    rig = virtual_rig(virtual_distortion)
    return FrontView(rig.cameras[ANCHOR_CAMERA], rig.cameras[ANCHOR_CAMERA].position, rig.ground_z)


class Reprojection:
    """The four cameras of a rig, each reprojected into its nuPlan camera."""

    def __init__(
        self,
        rig: CameraRig,
        virtual_distortion: str = "nuplan",
        *,
        require_coverage: bool = True,
        built: dict[str, CameraReprojection] | None = None,
    ) -> None:
        """Every camera of ``rig`` must be calibrated. ``require_coverage``: refuse a rig in
        which a camera sees none of its nuPlan view (nothing to plan with; ``rig-check`` shows
        such a rig instead). ``built``: cameras whose tables are reused as they are."""
        if rig.from_topics:
            raise ValueError(f"camera rig {rig.source}: no calibration yet for {', '.join(rig.from_topics)}")
        self.rig = rig
        self.virtual_distortion = virtual_distortion
        self.virtual = virtual_rig(virtual_distortion)
        built = built or {}
        self.cameras = {
            name: built.get(name) or self._camera(rig.cameras[name], self.virtual.cameras[name])
            for name in CAMERA_NAMES
        }
        blind = [name for name, camera in self.cameras.items() if camera.coverage == 0.0]
        if require_coverage and blind:
            raise RigError(
                f"camera rig {rig.source}: {', '.join(blind)} see(s) none of the nuPlan camera view it stands for "
                "(coverage 0%): check the orientation (lead-ros rig-check shows it)"
            )

    @staticmethod
    def _camera(real: RigCamera, virtual: RigCamera) -> CameraReprojection:
        if real.known_calibration.same_as(virtual.known_calibration) and np.array_equal(
            real.rotation, virtual.rotation
        ):
            return CameraReprojection(real, virtual, None, 1.0)
        (map_x, map_y), seen = remap_tables(real, virtual, *model_grid())
        # Fixed-point maps (what initUndistortRectifyMap gives by default): remap is ~2x faster.
        maps = cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)
        return CameraReprojection(real, virtual, maps, float(seen.mean()))

    def front_view(self) -> FrontView:
        """The f0 view for drawing the plan (``FrontView``)."""
        front = self.cameras[ANCHOR_CAMERA]
        return FrontView(front.virtual, front.real.position, self.rig.ground_z)

    def with_calibration(self, name: str, calibration: CameraCalibration) -> Reprojection:
        """This reprojection with one camera's calibration replaced: only its table is rebuilt."""
        kept = {other: camera for other, camera in self.cameras.items() if other != name}
        return Reprojection(self.rig.calibrated(name, calibration), self.virtual_distortion, built=kept)

    @property
    def coverage(self) -> dict[str, float]:
        return {name: camera.coverage for name, camera in self.cameras.items()}

    def model_views(self, images: Sequence[np.ndarray | None]) -> list[np.ndarray]:
        """(l0, f0, r0, b0) images -> their four 480x270 shares of the model input."""
        return [self.cameras[name].model_view(image) for name, image in zip(CAMERA_NAMES, images, strict=True)]

    def summary(self) -> str:
        """One line for logs: the rig and each camera's coverage."""
        covered = ", ".join(f"{name} {100 * c:.0f}%" for name, c in self.coverage.items())
        return f"camera rig {self.rig.source} (virtual_distortion {self.virtual_distortion}): coverage {covered}"
