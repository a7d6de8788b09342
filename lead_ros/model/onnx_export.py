"""The planning forward of one LTFv6 as an ONNX graph (torch.onnx's dynamo exporter).

One graph per input height: the image trunk's adaptive pooling to 8 token rows becomes
index arithmetic fixed at export, so a graph exported with a dynamic height gives wrong
indices at other heights (seen with torch 2.14: "GatherND invalid index" at 256 rows for
a graph traced at 270). Shapes are therefore static and the runtime keeps one graph per
height it has seen (``lead_ros.model.onnx_runtime``).

The exported graph takes the model's own inputs: raw RGB 0..255 (normalisation is inside
the graph), speed, acceleration and the command one-hot, and returns CARLA-frame waypoints
and headings plus the fused BEV features (the auxiliary heads' input).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from lead_ros.model.aux_heads import CENTERNET_OUTPUTS
from lead_ros.model.ltfv6 import LTFv6

INPUT_NAMES = ("rgb", "speed", "acceleration", "command")
OUTPUT_NAMES = ("waypoints", "headings", "bev_features")
# The auxiliary heads on the BEV features (``--perception`` exports): LTFv6.auxiliary's keys.
PERCEPTION_OUTPUT_NAMES = ("bev_semantic_logits", *(f"centernet_{name}_head" for name in CENTERNET_OUTPUTS))
OPSET = 20


class PlanningOutputs(nn.Module):
    """Tuple-returning wrapper of the planning forward (an exported graph returns tensors,
    not a dataclass), with the auxiliary heads' outputs appended when ``perception``."""

    def __init__(self, model: LTFv6, perception: bool = False) -> None:
        super().__init__()
        self.model = model
        self.perception = perception

    def forward(self, rgb, speed, acceleration, command):
        out = self.model(rgb, speed, acceleration, command)
        planning = (out.waypoints, out.headings, out.bev_features)
        if not self.perception:
            return planning
        auxiliary = self.model.auxiliary(out.bev_features)
        return planning + tuple(auxiliary[name] for name in PERCEPTION_OUTPUT_NAMES)


def output_names(perception: bool) -> tuple[str, ...]:
    return OUTPUT_NAMES + (PERCEPTION_OUTPUT_NAMES if perception else ())


def example_inputs(height: int, width: int) -> tuple[torch.Tensor, ...]:
    """Inputs of the exported graph's shapes: (1, 3, H, W) float RGB, (1, 1), (1, 1), (1, 4)."""
    command = torch.zeros(1, 4)
    command[0, 3] = 1.0
    return torch.zeros(1, 3, height, width), torch.zeros(1, 1), torch.zeros(1, 1), command


@contextlib.contextmanager
def _quiet_loggers():
    """The exporter's own loggers log every graph rewrite at INFO; keep only their errors."""
    loggers = [logging.getLogger(name) for name in ("onnx_ir", "onnxscript", "torch.onnx")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def export_planning_graph(
    model: LTFv6, height: int, width: int, path: Path, perception: bool = False, external_data: bool = False
) -> None:
    """Write ``model``'s fp32 planning forward for (1, 3, height, width) inputs to ``path``
    (with the auxiliary heads when ``perception``). With ``external_data`` the weights go to
    ``<path>.data`` beside the graph: saving then needs no serialized copy of them (0.4 GB
    less at the peak here), and ONNX Runtime makes a session from it with 0.2 GB less at its
    peak; a single file is what other runtimes' tools expect.

    Written into a directory of its own first and moved into place, the graph file last, so
    that processes sharing a cache directory never read half a file or a graph without its
    weights. The exporter's progress lines and warnings are kept out of the caller's output
    (a node's log, a CLI's stdout) and logged at debug level.
    """
    example = example_inputs(height, width)
    with torch.inference_mode(False), torch.no_grad():
        model(*example)  # fills the input-independent LTF cache: a constant of the graph
        chatter = io.StringIO()
        with contextlib.redirect_stdout(chatter), warnings.catch_warnings(), _quiet_loggers():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                PlanningOutputs(model, perception).eval(),
                example,
                dynamo=True,
                opset_version=OPSET,
                input_names=list(INPUT_NAMES),
                output_names=list(output_names(perception)),
                verbose=False,
                external_data=False,
            )
    logging.getLogger(__name__).debug("exporter: %s", chatter.getvalue().strip())
    if program is None:
        raise RuntimeError(f"torch.onnx.export returned no program for the {height}-row graph")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    try:
        try:
            program.save(str(staging / path.name), external_data=external_data)
        except OSError as error:  # the exporter's own writes name no file: name the graph
            if error.filename is None:
                raise OSError(error.errno, error.strerror or str(error), str(path)) from error
            raise
        data = staging / f"{path.name}.data"
        if data.exists():
            os.replace(data, path.with_name(data.name))
        os.replace(staging / path.name, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
