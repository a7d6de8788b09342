"""The eager PyTorch runtime: the ensemble's models on the planner's device, fp16/bf16 under
autocast. What ``auto`` picks on CUDA and for reduced precision."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lead_ros.model.ltfv6 import LTFv6, PerceptionHeads
from lead_ros.model.runtimes import RuntimeRequest


class EagerRuntime:
    channels_last_input = True

    def __init__(self, models: list[LTFv6], autocast: torch.dtype | None) -> None:
        self.models = models
        self.perception_heads = PerceptionHeads.of(models[0])
        self._autocast = autocast

    def forward(self, inputs: Sequence[torch.Tensor]) -> list[tuple[torch.Tensor, ...]]:
        outputs = [model(*inputs, autocast_dtype=self._autocast) for model in self.models]
        return [(o.waypoints, o.headings, o.bev_features) for o in outputs]

    def ready(self) -> None:
        pass

    def close(self) -> None:
        self.models.clear()


def create_runtime(request: RuntimeRequest) -> EagerRuntime:
    return EagerRuntime([m.to(request.device) for m in request.build_models()], request.autocast)
