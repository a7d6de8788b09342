"""The LTFv6 network, with parameter names equal to LEAD's checkpoint keys, and the runtimes
that run it (``runtimes``: the registry; one module per runtime).

The network's names load on first use (PEP 562), so that importing the light registry
(``lead_ros.model.runtimes``, which the parameter table reads) does not import PyTorch.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "LTFv6": "lead_ros.model.ltfv6",
    "PlanningOutput": "lead_ros.model.ltfv6",
    "LTFv6Config": "lead_ros.model.config",
}
__all__ = ["LTFv6", "LTFv6Config", "PlanningOutput"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
