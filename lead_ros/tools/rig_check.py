"""``lead-ros rig-check``: look at a camera rig before driving with it.

For each camera: the input image, its reprojection into the nuPlan camera it stands for with
the outline of what the real camera covers, and the coverage; below them the stitched model
input (``rig_check.png``). ``rig_check.txt`` (also printed) lists per camera the coverage and
how its orientation and position differ from nuPlan's: the reprojection corrects the
orientation; a different position it cannot correct.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lead_ros.camera_layout import CAMERA_NAMES
from lead_ros.cameras.reprojection import Reprojection
from lead_ros.cameras.rig import CameraRig, calibration_from_fields
from lead_ros.preprocessing import stitch_cameras

OUTLINE_RGB = (0, 255, 0)


@dataclass(frozen=True)
class RigCheck:
    picture: Path
    report: Path
    text: str


def rig_report(reprojection: Reprojection) -> str:
    """Coverage, orientation and position of each camera against nuPlan's, as text."""
    header = "camera  coverage  yaw/pitch/roll deg (nuPlan's; difference)  position m (nuPlan's; difference)"
    lines = [reprojection.summary(), "", header]
    for name in CAMERA_NAMES:
        camera = reprojection.cameras[name]
        real, virtual = camera.real, camera.virtual
        angles, reference = np.array(real.yaw_pitch_roll_deg()), np.array(virtual.yaw_pitch_roll_deg())
        turned = (angles - reference + 180.0) % 360.0 - 180.0
        moved = real.position - virtual.position
        lines.append(
            f"{name:6s}  {100 * camera.coverage:6.1f}%  {_triple(angles)} ({_triple(reference)}; {_triple(turned)})"
            f"  {_triple(real.position, 3)} ({_triple(virtual.position, 3)}; {_triple(moved, 3)}, "
            f"{np.linalg.norm(moved):.3f} m not corrected)"
        )
    return "\n".join(lines) + "\n"


def _triple(values, digits: int = 1) -> str:
    return "/".join(f"{v:+.{digits}f}" for v in values)


def check_rig(rig: CameraRig, virtual_distortion: str, images: dict[str, np.ndarray], out_dir: Path) -> RigCheck:
    """Write ``rig_check.png`` and ``rig_check.txt`` for RGB ``images`` (l0, f0, r0, b0)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    reprojection = Reprojection(rig, virtual_distortion, require_coverage=False)
    # First, as it checks each image against the rig's size.
    stitched = stitch_cameras([images[n] for n in CAMERA_NAMES], "rgb8", True, reprojection)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = len(CAMERA_NAMES)
    figure = plt.figure(figsize=(12, 3.4 * rows + 3.4), dpi=80)
    grid = figure.add_gridspec(rows + 1, 2, height_ratios=[1] * rows + [0.6])
    axes = [[figure.add_subplot(grid[row, column]) for column in range(2)] for row in range(rows)]
    try:
        for row, name in enumerate(CAMERA_NAMES):
            camera = reprojection.cameras[name]
            view, seen = camera.virtual_view(images[name])
            view = np.ascontiguousarray(view)
            contours, _ = cv2.findContours(seen.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(view, contours, -1, OUTLINE_RGB, 6)
            width, height = camera.real.calibration.width, camera.real.calibration.height
            axes[row][0].imshow(images[name])
            axes[row][0].set_title(f"{name}: input {width}x{height} ({camera.real.calibration.distortion_model})")
            axes[row][1].imshow(view)
            axes[row][1].set_title(f"{name}: as nuPlan's {name}, coverage {100 * camera.coverage:.1f}% (outline)")
        bottom = figure.add_subplot(grid[rows, :])
        bottom.imshow(stitched)
        bottom.set_title("model input (l0 | f0 | r0 | b0, 1920x270 after the JPEG step)")
        for axis in figure.axes:
            axis.set_xticks([])
            axis.set_yticks([])
        figure.tight_layout()
        picture = out_dir / "rig_check.png"
        figure.savefig(picture)
    finally:
        plt.close(figure)
    text = rig_report(reprojection)
    report = out_dir / "rig_check.txt"
    report.write_text(text)
    return RigCheck(picture, report, text)


def bag_frame(bag: Path, frame: int, rig: CameraRig | None = None) -> tuple[dict[str, np.ndarray], CameraRig | None]:
    """The ``frame``-th (0-based) image of each camera topic of a bag, as RGB, and ``rig`` with
    the calibration of its ``camera_info: topic`` cameras from the first CameraInfo recorded."""
    from sensor_msgs.msg import CameraInfo

    from lead_ros.bag.reader import ReadStats, bag_camera_settings, default_topics, stream_messages
    from lead_ros.ros.decoding import CameraView, camera_info_fields, camera_to_array
    from lead_ros.ros.interfaces import message_class
    from lead_ros.ros.topics import BY_KEY, CAMERA_INFO_SUFFIX, CAMERA_TYPES

    topics = default_topics()
    settings = bag_camera_settings(bag, topics)
    if settings.get("camera_mode") != "navsim_4cam":
        raise ValueError(f"{bag}: no four-camera topics ({', '.join(topics[n] for n in CAMERA_NAMES)})")
    message_type = message_class(CAMERA_TYPES[settings.get("image_transport", "raw")])
    awaited = set(rig.from_topics) if rig is not None else set()
    seen = dict.fromkeys(CAMERA_NAMES, 0)
    images: dict[str, np.ndarray] = {}
    classes = {**dict.fromkeys(CAMERA_NAMES, message_type), **{f"{n}{CAMERA_INFO_SUFFIX}": CameraInfo for n in awaited}}
    for message in stream_messages(bag, topics, classes, 0, ReadStats()):
        if message.key.endswith(CAMERA_INFO_SUFFIX):
            name = BY_KEY[message.key].camera
            if name in awaited:
                where = f"{bag}: CameraInfo of {name}"
                calibration = calibration_from_fields(
                    camera_info_fields(message.msg), where, rig.cameras[name].rectified
                )
                rig, awaited = rig.calibrated(name, calibration), awaited - {name}
        elif message.key not in images:
            if seen[message.key] == frame:
                image, encoding = camera_to_array(CameraView.of_message(message.msg), f"camera {message.key}")
                images[message.key] = cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if encoding == "bgr8" else image
            seen[message.key] += 1
        if len(images) == len(CAMERA_NAMES) and not awaited:
            return images, rig
    missing = [n for n in CAMERA_NAMES if n not in images]
    if missing:
        raise ValueError(f"{bag}: frame {frame} not found for {', '.join(missing)} (images per camera: {seen})")
    raise ValueError(f"{bag}: no CameraInfo recorded for {', '.join(sorted(awaited))} (the rig takes it from there)")
