"""The runtime seam: the ``runtime`` parameter's names come from one registry
(``lead_ros.model.runtimes``), the planner runs any registered runtime through the
``Runtime`` protocol and names none of them, and a new runtime is one module and one row."""

from __future__ import annotations

import ast

import numpy as np
import pytest

from conftest import REPO
from lead_ros.model.eager_runtime import EagerRuntime
from lead_ros.model.runtimes import REGISTRY, RuntimeEntry, RuntimeRequest, choose_runtime
from lead_ros.node_config import NodeConfig
from lead_ros.observation import Command, Observation
from lead_ros.planner import Planner

FAKE = RuntimeEntry("fake", ("cpu",), ("fp32",), "fp32 on the CPU", "a test's runtime", __name__, auto=False)
CALLS: list[str] = []


class FakeRuntime(EagerRuntime):
    """The eager runtime under another name, recording what the planner asks of it."""

    def forward(self, inputs):
        CALLS.append(f"forward {inputs[0].shape[2]}")
        return super().forward(inputs)

    def ready(self) -> None:
        CALLS.append("ready")

    def close(self) -> None:
        CALLS.append("close")
        super().close()


def create_runtime(request: RuntimeRequest) -> FakeRuntime:
    """What the registry calls for ``FAKE`` (its ``module`` is this file)."""
    CALLS.append("create")
    return FakeRuntime(request.build_models(), request.autocast)


@pytest.fixture
def fake_runtime(monkeypatch):
    monkeypatch.setitem(REGISTRY, FAKE.name, FAKE)  # its module is this file: the registry imports it by name
    CALLS.clear()
    return FAKE


def test_a_registered_runtime_is_a_parameter_choice_and_runs_a_planner(fake_runtime, navsim_weights, eager_planner):
    config = NodeConfig.from_values({"runtime": "fake", "weights": str(navsim_weights), "device": "cpu"})
    planner = Planner.from_config(config)
    try:
        assert planner.info.runtime == "fake" and CALLS == ["create", "forward 270", "ready"]
        image = np.random.default_rng(3).integers(0, 256, (256, 1920, 3), dtype=np.uint8)
        observation = Observation(4.0, 0.5, Command.LEFT, image=image)
        plan = planner.plan(observation, perception=True)
        expected = eager_planner.plan(observation, perception=True)
        np.testing.assert_array_equal(plan.waypoints, expected.waypoints)
        np.testing.assert_array_equal(plan.perception.bev_probabilities, expected.perception.bev_probabilities)
        assert CALLS[-1] == "forward 256"
    finally:
        planner.close()
    assert CALLS[-1] == "close"
    assert choose_runtime("auto", "cpu", "fp32").name == "onnxruntime", "auto=False: auto never picks it"


def test_an_unregistered_runtime_is_refused_by_the_parameters_and_the_planner(navsim_weights):
    with pytest.raises(ValueError, match=r"runtime: 'fake' is not one of auto, onnxruntime, eager"):
        NodeConfig.from_values({"runtime": "fake"})
    with pytest.raises(ValueError, match=r"runtime 'fake': expected one of auto, onnxruntime, eager"):
        Planner(str(navsim_weights), "cpu", runtime="fake")


def test_a_runtime_that_cannot_run_the_precision_is_refused_in_one_line(fake_runtime):
    with pytest.raises(
        ValueError,
        match=r"^runtime fake runs fp32 on the CPU only \(got device cpu, precision bf16\); "
        r"use runtime eager or auto$",
    ):
        choose_runtime("fake", "cpu", "bf16")


def test_the_planner_names_no_runtime():
    """planner.py imports no runtime module and has no identifier about a particular runtime."""
    tree = ast.parse((REPO / "lead_ros" / "planner.py").read_text())
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    runtime_modules = {entry.module for entry in REGISTRY.values()}
    assert not runtime_modules & set(imported), imported
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    names |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    names |= {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    names |= {a.arg for n in ast.walk(tree) if isinstance(n, ast.arguments) for a in n.args + n.kwonlyargs}
    assert not [n for n in names if any(word in n.lower() for word in ("onnx", "tensorrt", "eager"))]
