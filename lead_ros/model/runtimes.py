"""The inference runtimes: what the ``runtime`` parameter can name, what each can run, and the
seam every runtime implements.

A runtime runs the planning forward of an ensemble at any input height; the ``Planner`` owns
everything around it (preprocessing, input buffers, the ensemble average, perception, frames)
and names no runtime. Each runtime is one module with a ``create_runtime(request)`` function,
imported only when chosen: adding one (TensorRT, say) is that module and one ``register`` call
(a row of ``REGISTRY``). Standard library only, so that ``node_config`` can offer the names as
choices without importing PyTorch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import torch

    from lead_ros.model.ltfv6 import LTFv6, PerceptionHeads

AUTO = "auto"
# Input heights whose buffers (and a runtime's per-height state, e.g. ONNX Runtime sessions) are
# kept; the least recently used is dropped. Two: a camera rig has one height, and the golden
# cases and offline comparisons alternate 256 and 270 rows.
MAX_HEIGHTS = 2
# The height a planner warms up with (NAVSIM's): a runtime may prepare it ahead (a cached graph).
WARMUP_HEIGHT = 270


@dataclass(frozen=True)
class RuntimeRequest:
    """What a runtime is made from: the checkpoint's ``state_dicts`` (one per member),
    ``build_models`` that builds the ensemble from them (BatchNorm folded, eval mode, on the
    CPU), and ``reload_models`` that loads the same files again (their sha256 checked), for a
    runtime that dropped its models and needs them later: picklable, so that a child process
    can run it. The runtime keeps none of the request but ``reload_models``: the state dicts
    are one model's memory each."""

    state_dicts: Sequence[Mapping[str, torch.Tensor]]
    weights_sha256: tuple[str, ...]
    device: torch.device
    autocast: torch.dtype | None
    cache_dir: Path | None
    build_models: Callable[[], list[LTFv6]]
    reload_models: Callable[[], list[LTFv6]]


class Runtime(Protocol):
    """One ensemble's planning forward."""

    # The PyTorch models it holds (empty when it runs without them).
    models: list[LTFv6]
    # The auxiliary perception heads of the first member, run eagerly on its BEV features.
    perception_heads: PerceptionHeads
    # Input layout it wants: channels-last (eager convolutions) or contiguous.
    channels_last_input: bool

    def forward(self, inputs: Sequence[torch.Tensor]) -> list[tuple[torch.Tensor, ...]]:
        """Each member's (waypoints, headings, bev_features) for (rgb (1, 3, H, 1920), speed
        (1, 1), acceleration (1, 1), command (1, 4)) on the runtime's device."""
        ...

    def ready(self) -> None:
        """Called once after the warm-up forward: drop what is no longer needed."""
        ...

    def close(self) -> None:
        """Release everything it holds; it is not used afterwards."""
        ...


@dataclass(frozen=True)
class RuntimeEntry:
    """A row of the registry: a runtime's name, what it runs (device types, precisions, in
    words for errors), whether ``auto`` may pick it, and where it is implemented."""

    name: str
    devices: tuple[str, ...]  # torch device types: cpu, cuda
    precisions: tuple[str, ...]  # fp32, fp16, bf16
    limits: str  # "fp32 on the CPU": what it runs, for one-line errors
    description: str
    module: str  # imported when the runtime is made; has create_runtime(request) -> Runtime
    auto: bool = True

    def runs(self, device_type: str, precision: str) -> bool:
        return device_type in self.devices and precision in self.precisions

    def create(self, request: RuntimeRequest) -> Runtime:
        return importlib.import_module(self.module).create_runtime(request)


# In the order ``auto`` tries them: the first that runs the device and precision.
REGISTRY: dict[str, RuntimeEntry] = {}


def register(entry: RuntimeEntry) -> None:
    """Add (or replace) a runtime; ``auto`` tries it after those registered before it."""
    REGISTRY[entry.name] = entry


register(
    RuntimeEntry(
        "onnxruntime",
        ("cpu",),
        ("fp32",),
        "fp32 on the CPU",
        "ONNX Runtime (fp32, CPU): the fastest here, runs without the GIL, frees its memory",
        "lead_ros.model.onnx_runtime",
    )
)
register(
    RuntimeEntry(
        "eager",
        ("cpu", "cuda"),
        ("fp32", "fp16", "bf16"),
        "every device and precision",
        "PyTorch, eagerly (fp16/bf16 under autocast; CUDA)",
        "lead_ros.model.eager_runtime",
    )
)


def runtime_choices() -> tuple[str, ...]:
    """What the ``runtime`` parameter accepts: auto, then every registered runtime."""
    return (AUTO, *REGISTRY)


class RuntimeChoices(Sequence[str]):
    """``runtime_choices()`` read when asked (a runtime registered later is a choice too):
    what the parameter table and the command line check values against."""

    def __getitem__(self, index):
        return runtime_choices()[index]

    def __len__(self) -> int:
        return len(runtime_choices())

    def __repr__(self) -> str:
        return repr(runtime_choices())


RUNTIME_CHOICES = RuntimeChoices()


def runtimes_help() -> str:
    """The choices in words, for the parameter's description and ``--runtime``'s help."""
    described = ", ".join(f"{e.name} ({e.limits})" for e in REGISTRY.values())
    return f"auto (the first of these that runs the device and precision) or one of: {described}"


def choose_runtime(name: str, device_type: str, precision: str) -> RuntimeEntry:
    """The runtime ``name`` means on this device and precision (``auto``: the first that runs
    them); ValueError with one line when it cannot run them or is unknown."""
    if name == AUTO:
        return next(e for e in REGISTRY.values() if e.auto and e.runs(device_type, precision))
    entry = REGISTRY.get(name)
    if entry is None:
        raise ValueError(f"runtime {name!r}: expected one of {', '.join(runtime_choices())}")
    if not entry.runs(device_type, precision):
        others = [e.name for e in REGISTRY.values() if e.runs(device_type, precision)]
        raise ValueError(
            f"runtime {name} runs {entry.limits} only (got device {device_type}, precision "
            f"{precision}); use runtime {' or '.join([*others, AUTO])}"
        )
    return entry
