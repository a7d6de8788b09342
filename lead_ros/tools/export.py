"""``lead-ros export onnx``: the model as ONNX files plus a manifest, for robot stacks that run
models outside Python (ONNX Runtime in C++, TensorRT via trtexec, ...).

Each ensemble member becomes one graph (``model.onnx``, or ``model_<i>.onnx`` for an
ensemble: average their waypoints and headings, as lead_ros does). ``model.json`` says
everything a user needs to feed the graph exactly as lead_ros does and to read its output.
After writing, every file is run in ONNX Runtime on the shipped golden inputs and compared
with lead_ros' own fp32 (eager PyTorch) forward of the same weights: the largest difference
is printed and above ``PARITY_TOLERANCE`` the export fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime
import torch

import lead_ros
from lead_ros.bag.output import BagOutputError, claim_output_dir, write_failure, write_json
from lead_ros.golden import load_cases
from lead_ros.model.onnx_export import INPUT_NAMES, OPSET, PlanningOutputs, export_planning_graph, output_names
from lead_ros.model.onnx_runtime import check_feed, open_session
from lead_ros.planner import Planner
from lead_ros.preprocessing import JPEG_QUALITY, MODEL_IMAGE_WIDTH, check_stitched_size

PARITY_TOLERANCE = 1e-4


class ExportParityError(RuntimeError):
    """The exported graph disagrees with lead_ros' own forward beyond the tolerance."""


@dataclass(frozen=True)
class ExportReport:
    files: list[Path]
    manifest: Path
    max_difference: float  # over every output, member and golden input
    cases: int


def golden_feeds(height: int) -> list[dict[str, np.ndarray]]:
    """The shipped golden cases' inputs as graph feeds (images of another height resized to
    ``height`` with INTER_AREA: the comparison is graph vs lead_ros on the same input)."""
    feeds = []
    for case in load_cases():
        image = cv2.cvtColor(cv2.imread(str(case["image_path"]), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        if image.shape[0] != height:
            image = cv2.resize(image, (MODEL_IMAGE_WIDTH, height), interpolation=cv2.INTER_AREA)
        command = np.zeros((1, 4), np.float32)
        command[0, case["command_index"]] = 1.0
        feeds.append(
            {
                "rgb": np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32),
                "speed": np.full((1, 1), case["speed_mps"], np.float32),
                "acceleration": np.full((1, 1), case["acceleration_mps2"], np.float32),
                "command": command,
            }
        )
    return feeds


def run_graph(path: Path, feeds: list[dict[str, np.ndarray]]) -> list[list[np.ndarray]]:
    """Every feed through the ONNX file in ONNX Runtime (CPU)."""
    session = open_session(path)
    outputs = []
    for feed in feeds:
        check_feed(session, feed)
        outputs.append(session.run(None, feed))
    return outputs


def _torch_outputs(model, feed: dict[str, np.ndarray], perception: bool) -> list[np.ndarray]:
    with torch.inference_mode():
        outputs = PlanningOutputs(model, perception)(*(torch.from_numpy(feed[name]) for name in INPUT_NAMES))
    return [o.numpy() for o in outputs]


def manifest(planner: Planner, files: list[Path], height: int, perception: bool) -> dict:
    """``model.json``: how to feed the graph and read its output, and where it came from."""
    info = planner.info
    outputs = [{"name": o.name, "shape": o.shape, "dtype": "float32"} for o in open_session(files[0]).get_outputs()]
    return {
        "format": "lead_ros ONNX export 1",
        "model": "LTFv6 (Latent TransFuser v6, LEAD, CVPR 2026), NAVSIM configuration, planning forward"
        + (" with the auxiliary perception heads" if perception else ""),
        "files": [f.name for f in files],
        "ensemble": "average waypoints and headings over the files" if len(files) > 1 else "single model",
        "inputs": [
            {
                "name": "rgb",
                "shape": [1, 3, height, MODEL_IMAGE_WIDTH],
                "dtype": "float32",
                "layout": "NCHW",
                "channel_order": "RGB",
                "value_range": "raw pixel values 0..255 as float; ImageNet normalisation "
                "(mean 0.485 0.456 0.406, std 0.229 0.224 0.225 on value/255) happens inside the graph",
            },
            {
                "name": "speed",
                "shape": [1, 1],
                "dtype": "float32",
                "meaning": "ego speed, m/s (norm of the velocity; the graph divides by 15)",
            },
            {
                "name": "acceleration",
                "shape": [1, 1],
                "dtype": "float32",
                "meaning": "ego acceleration, m/s^2 (norm; the graph divides by 4)",
            },
            {
                "name": "command",
                "shape": [1, 4],
                "dtype": "float32",
                "meaning": "one-hot driving command",
                "order": ["left", "straight", "right", "unknown"],
            },
        ],
        "outputs": outputs,
        "image_preprocessing": {
            "cameras": "nuPlan CAM_L0, CAM_F0, CAM_R0, CAM_B0 (1920x1080 each) concatenated left to right",
            "resize": f"to {MODEL_IMAGE_WIDTH} x {height} with OpenCV INTER_LINEAR",
            "jpeg": f"then a JPEG quality-{JPEG_QUALITY} encode/decode round trip (OpenCV, the RGB array handed to "
            "imencode as if it were BGR), as NAVSIM's training data had it; skipping it shifts the input "
            "distribution",
        },
        "output_frame": {
            "frame": "CARLA ego frame: x forward, y right, heading positive clockwise seen from above",
            "to_iso8855_base_link": "negate y and heading (x forward, y left, z up); forgetting this mirrors every "
            "turn",
            "waypoints": "8 poses at t = 0.5, 1.0, ..., 4.0 s, metres; headings in radians relative to the current "
            "heading",
        },
        "weights": {
            "source": info.weights,
            "sha256": list(info.weights_sha256),
            "untrained": info.untrained,
            "token_dim": info.config.token_dim,
        },
        "opset": OPSET,
        "exported_with": {
            "lead_ros": lead_ros.__version__,
            "torch": torch.__version__,
            "onnxruntime_checked": onnxruntime.__version__,
        },
    }


def check_parity(models: list, files: list[Path], height: int, perception: bool) -> tuple[float, int]:
    """The largest difference between each file in ONNX Runtime and its model's own fp32
    forward over the golden inputs, and the number of inputs; beyond ``PARITY_TOLERANCE``
    an ``ExportParityError``."""
    feeds = golden_feeds(height)
    worst = 0.0
    for model, path in zip(models, files, strict=True):
        for feed, outputs in zip(feeds, run_graph(path, feeds), strict=True):
            expected = _torch_outputs(model, feed, perception)
            worst = max(worst, *(float(np.abs(o - e).max()) for o, e in zip(outputs, expected, strict=True)))
    if worst > PARITY_TOLERANCE:
        raise ExportParityError(
            f"{files[0].parent}: the exported graph differs from lead_ros' fp32 forward by up to {worst:.2e} on the "
            f"golden inputs (tolerance {PARITY_TOLERANCE:g}); outputs {', '.join(output_names(perception))}"
        )
    return worst, len(feeds)


def export_onnx(
    weights: str,
    out_dir: Path,
    height: int = 270,
    perception: bool = False,
    overwrite: bool = False,
    ensemble_size: int | None = None,
    cache_dir: str | None = None,
) -> ExportReport:
    """Export, write the manifest, then check every file on the golden inputs."""
    check_stitched_size("--height", MODEL_IMAGE_WIDTH, height)
    with Planner(weights, "cpu", "fp32", runtime="eager", ensemble_size=ensemble_size, cache_dir=cache_dir) as planner:
        with claim_output_dir(out_dir, overwrite, [Path(weights)] if Path(weights).exists() else []):
            models = planner.models
            files = [out_dir / ("model.onnx" if len(models) == 1 else f"model_{i}.onnx") for i in range(len(models))]
            manifest_path = out_dir / "model.json"
            try:
                for model, path in zip(models, files, strict=True):
                    export_planning_graph(model, height, MODEL_IMAGE_WIDTH, path, perception)
                write_json(manifest_path, manifest(planner, files, height, perception))
            except OSError as error:  # a full disk, a read-only folder: the file and the folder named
                raise BagOutputError(write_failure(error, out_dir, "export")) from error
            worst, cases = check_parity(models, files, height, perception)
    return ExportReport(files, manifest_path, worst, cases)
