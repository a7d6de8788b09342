"""The ``Planner``: weights + device + precision in, ``plan(observation) -> Plan`` out.

Shared by the ROS node, the bag tools, the CLI and the benchmark so that they all run the
same preprocessing, inference and frame conversion.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lead_ros.frames import carla_to_iso8855
from lead_ros.model import LTFv6Config
from lead_ros.model.aux_heads import CENTERNET_OUTPUTS
from lead_ros.model.inference import AUX_OUTPUTS, optimize_for_inference, trace_auxiliary, trace_for_inference
from lead_ros.node_config import NodeConfig
from lead_ros.observation import Observation, Plan, PlanTimings
from lead_ros.perception.outputs import Perception, perceive
from lead_ros.preprocessing import MODEL_IMAGE_WIDTH, prepare_stitched, stitch_cameras
from lead_ros.weights.loader import build_models, load_checkpoint

log = logging.getLogger(__name__)

PRECISIONS = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
WARMUP_HEIGHT = 270
# fp32 traces and input buffers are made for at most this many input heights (the first
# ones seen, 270 from the warm-up among them); other heights run eagerly (the same function,
# no trace to build). A stream whose height keeps changing thus cannot grow memory without
# bound. Traces are never evicted: TorchScript does not give a dropped trace's memory back
# (measured here: about 40 MB per traced height, with or without a compilation unit of its own).
# The auxiliary (perception) path adds one small trace of its own, made on first request: its
# input, the BEV features, has the same shape at every height.
MAX_TRACED_HEIGHTS = 3


class PlannerConfigError(ValueError):
    """A device or precision the planner cannot run with."""


def resolve_device(device: str) -> torch.device:
    """``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device != "cpu" and not (device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit())):
        raise PlannerConfigError(f"device {device!r}: expected auto, cpu, cuda or cuda:N")
    resolved = torch.device(device)
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise PlannerConfigError(f"device {device!r}: CUDA is not available on this machine; use cpu or auto")
        if (resolved.index or 0) >= torch.cuda.device_count():
            raise PlannerConfigError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s)")
    return resolved


def check_precision(precision: str, device: torch.device) -> torch.dtype | None:
    if precision not in PRECISIONS:
        raise PlannerConfigError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type == "cpu":
        raise PlannerConfigError("precision fp16 is not supported on CPU; use fp32 (exact) or bf16")
    return PRECISIONS[precision]


@dataclass
class _HeightState:
    """What inference keeps per input height: the (1, 3, H, 1920) input buffer (plus pinned
    and device uint8 staging on CUDA) and the fp32 traces of the ensemble."""

    input: torch.Tensor
    staging: torch.Tensor | None
    device_u8: torch.Tensor | None
    traced: list | None = None
    eager: bool = False

    @classmethod
    def allocate(cls, height: int, device: torch.device) -> _HeightState:
        shape = (height, MODEL_IMAGE_WIDTH, 3)
        target = torch.empty((1, 3, height, MODEL_IMAGE_WIDTH), device=device)
        target = target.contiguous(memory_format=torch.channels_last)
        if device.type != "cuda":
            return cls(target, None, None)
        staging = torch.empty(shape, dtype=torch.uint8, pin_memory=True)
        return cls(target, staging, torch.empty(shape, dtype=torch.uint8, device=device))


@dataclass(frozen=True)
class PlannerInfo:
    """What was loaded, for logs, diagnostics and CLI output."""

    weights: str
    weights_sha256: tuple[str, ...]
    device: str
    precision: str
    untrained: bool
    config: LTFv6Config
    ensemble_size: int


class Planner:
    """LTFv6 inference with NAVSIM preprocessing and ISO 8855 output."""

    def __init__(
        self,
        weights: str,
        device: str = "auto",
        precision: str = "fp32",
        *,
        jpeg_roundtrip: bool = True,
        ensemble_size: int | None = None,
        cache_dir: str | None = None,
        expected_sha256: Sequence[str] = (),
    ) -> None:
        self.device = resolve_device(device)
        self._autocast = check_precision(precision, self.device)
        self.jpeg_roundtrip = jpeg_roundtrip
        checkpoint = load_checkpoint(
            weights, ensemble_size=ensemble_size, cache_dir=cache_dir, expected_sha256=expected_sha256
        )
        self.models = [optimize_for_inference(m).to(self.device) for m in build_models(checkpoint)]
        self.info = PlannerInfo(
            weights=checkpoint.source,
            weights_sha256=tuple(f.sha256 for f in checkpoint.files),
            device=str(self.device),
            precision=precision,
            untrained=checkpoint.untrained,
            config=checkpoint.config,
            ensemble_size=len(self.models),
        )
        self._cuda = self.device.type == "cuda"
        self._heights: dict[int, _HeightState] = {}  # traced heights, at most MAX_TRACED_HEIGHTS
        self._speed = torch.zeros(1, 1, device=self.device)
        self._acceleration = torch.zeros(1, 1, device=self.device)
        self._command = torch.zeros(1, 4, device=self.device)
        self._aux_traced: torch.jit.ScriptModule | None = None
        self.infer(np.zeros((WARMUP_HEIGHT, MODEL_IMAGE_WIDTH, 3), np.uint8), 0.0, 0.0, 3)
        log.info(
            "planner ready: weights %s (sha256 %s), device %s, precision %s%s",
            self.info.weights,
            ", ".join(s[:12] for s in self.info.weights_sha256),
            self.info.device,
            precision,
            ", UNTRAINED synthetic weights" if self.info.untrained else "",
        )

    @classmethod
    def from_config(
        cls, config: NodeConfig, weights: str | None = None, device: str | None = None, precision: str | None = None
    ) -> Planner:
        """The planner a node configuration describes (node and bag tools alike)."""
        return cls(
            weights or config.weights,
            device or config.device,
            precision or config.precision,
            jpeg_roundtrip=config.jpeg_roundtrip,
            ensemble_size=config.ensemble_size or None,
            cache_dir=config.hf_cache_dir or None,
            expected_sha256=config.expected_sha256_list,
        )

    def preprocess(self, observation: Observation) -> np.ndarray:
        """The (H, 1920, 3) uint8 RGB model input for an observation."""
        if observation.cameras is not None:
            return stitch_cameras(observation.cameras, observation.encoding, jpeg=self.jpeg_roundtrip)
        return prepare_stitched(observation.image, observation.encoding)

    def _height_state(self, height: int) -> _HeightState:
        """The kept state of an input height, or a temporary eager one once the cache is full."""
        state = self._heights.get(height)
        if state is None:
            state = _HeightState.allocate(height, self.device)
            if len(self._heights) < MAX_TRACED_HEIGHTS:
                self._heights[height] = state
            else:
                state.eager = True
        return state

    def _input_tensor(self, image: np.ndarray, state: _HeightState) -> torch.Tensor:
        """Copy the image into the height's (1, 3, H, 1920) float buffer on the device."""
        source = torch.from_numpy(image)
        if self._cuda:
            # Pinned host buffer -> device buffer, both reused: no per-frame allocation, and
            # the copy overlaps with host work until the result is read back.
            state.staging.copy_(source)
            source = state.device_u8.copy_(state.staging, non_blocking=True)
        state.input[0].copy_(source.permute(2, 0, 1))
        return state.input

    def infer(
        self, image: np.ndarray, speed_mps: float, acceleration_mps2: float, command: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Raw model output (CARLA frame), averaged over the ensemble: (8, 2), (8,)."""
        waypoints, headings, _ = self.infer_with_perception(image, speed_mps, acceleration_mps2, command, False)
        return waypoints, headings

    @torch.inference_mode()
    def infer_with_perception(
        self, image: np.ndarray, speed_mps: float, acceleration_mps2: float, command: int, perception: bool = True
    ) -> tuple[np.ndarray, np.ndarray, Perception | None]:
        """``infer``, plus (when ``perception``) the first member's perception of the image."""
        state = self._height_state(image.shape[0])
        rgb = self._input_tensor(image, state)
        self._speed.fill_(speed_mps)
        self._acceleration.fill_(acceleration_mps2)
        self._command.zero_()[0, int(command)] = 1.0
        total = None
        outputs = self._forward(rgb, state)
        for waypoints, headings, _ in outputs:
            joined = torch.cat((waypoints, headings.unsqueeze(-1)), dim=-1)
            total = joined if total is None else total + joined
        # One device-to-host copy per frame: the only synchronisation point (perception,
        # when asked for, adds the copies of its own results).
        result = (total / len(self.models))[0].double().cpu().numpy()
        return result[:, :2], result[:, 2], self._perceive(outputs[0][2]) if perception else None

    def _forward(self, rgb: torch.Tensor, state: _HeightState) -> list[tuple[torch.Tensor, ...]]:
        """Each ensemble member's (waypoints, headings, bev_features): traced in fp32 (one
        trace per cached image height, made on first use), eager under autocast for
        bf16/fp16 and for heights outside the cache."""
        inputs = (rgb, self._speed, self._acceleration, self._command)
        if self._autocast is not None or state.eager:
            outs = [m(*inputs, autocast_dtype=self._autocast) for m in self.models]
            return [(o.waypoints, o.headings, o.bev_features) for o in outs]
        if state.traced is None:
            with torch.inference_mode(False):
                example = tuple(t.clone() for t in inputs)
                state.traced = [trace_for_inference(m, example) for m in self.models]
        return [traced(*inputs) for traced in state.traced]

    def _perceive(self, bev_features: torch.Tensor) -> Perception:
        """The auxiliary heads on the first member's BEV features, always in float32 (LEAD
        runs its output heads in float32 under autocast too): traced for fp32, eager else."""
        features = bev_features.float()
        if self._autocast is not None:
            aux = self.models[0].auxiliary(features)
            outputs = tuple(aux[name] for name in AUX_OUTPUTS)
        else:
            if self._aux_traced is None:
                with torch.inference_mode(False):
                    self._aux_traced = trace_auxiliary(self.models[0], features.clone())
            outputs = self._aux_traced(features)
        named = dict(zip(AUX_OUTPUTS, outputs, strict=True))
        heads = {name: named[f"centernet_{name}_head"] for name in CENTERNET_OUTPUTS}
        return perceive(named["bev_semantic_logits_pre_upsample"], named["bev_semantic_logits"], heads)

    @property
    def traced_heights(self) -> tuple[int, ...]:
        """Input heights with a trace and kept buffers, in the order they came."""
        return tuple(h for h, state in self._heights.items() if state.traced is not None)

    def plan(self, observation: Observation, perception: bool = False) -> Plan:
        """Preprocess, infer, convert to ISO 8855; timings in milliseconds. ``perception``
        also runs the auxiliary heads (about 4 % of the forward) and returns what the model
        perceived in ``Plan.perception``."""
        t0 = time.perf_counter()
        image = self.preprocess(observation)
        t1 = time.perf_counter()
        waypoints_carla, headings_carla, perceived = self.infer_with_perception(
            image, observation.speed_mps, observation.acceleration_mps2, observation.command, perception
        )
        t2 = time.perf_counter()
        waypoints, headings = carla_to_iso8855(waypoints_carla, headings_carla)
        t3 = time.perf_counter()
        return Plan(
            waypoints=waypoints,
            headings=headings,
            waypoints_carla=waypoints_carla,
            headings_carla=headings_carla,
            timings=PlanTimings(1e3 * (t1 - t0), 1e3 * (t2 - t1), 1e3 * (t3 - t2)),
            model_image=image,
            perception=perceived,
        )
