"""Camera rig documents for the tests, in the rig file's own terms (lead_ros.cameras.rig)."""

from __future__ import annotations

import copy

from lead_ros.preprocessing import CAMERA_NAMES

NUPLAN_K = [1545.0, 0.0, 960.0, 0.0, 1545.0, 560.0, 0.0, 0.0, 1.0]
# (yaw, pitch, roll) degrees from the nuPlan camera table (docs: OpenScene camera-to-ego).
NUPLAN_ANGLES = {"l0": (54.9, 0.8, -0.2), "f0": (-0.4, 1.3, 0.4), "r0": (-55.6, 0.8, 1.4), "b0": (179.6, 0.6, 0.7)}
YAWS = {"l0": 55.0, "f0": 0.0, "r0": -55.0, "b0": 180.0}


def camera_entry(model="plumb_bob", d=(0.0,) * 5, k=NUPLAN_K, size=(1920, 1080), rpy=(0.0, 0.0, 0.0), **extra):
    return {
        "width": size[0],
        "height": size[1],
        "distortion_model": model,
        "k": list(k),
        "d": list(d),
        "rpy_deg": list(rpy),
        "position": [1.5, 0.0, 1.5],
        **extra,
    }


def rig_of(entries: dict) -> dict:
    return {"cameras": {name: copy.deepcopy(entries[name]) for name in CAMERA_NAMES}}


def uniform_rig(**camera) -> dict:
    """Four cameras alike except the yaw, which follows nuPlan's (l0 left, b0 rear)."""
    rpy = camera.pop("rpy", (0.0, 0.0, 0.0))
    return rig_of({n: camera_entry(rpy=(rpy[0], rpy[1], rpy[2] + YAWS[n]), **camera) for n in CAMERA_NAMES})
