"""Planner API: configuration errors, bad observations, outputs and timings."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from lead_ros.observation import WAYPOINT_TIMES_S, Command, Observation, ObservationError
from lead_ros.planner import Planner, PlannerConfigError, check_precision, resolve_device
from lead_ros.tools.synthetic_cameras import reference_cameras

IMAGE = np.zeros((256, 1920, 3), np.uint8)


def test_fp16_on_cpu_is_refused_with_a_suggestion(navsim_weights):
    with pytest.raises(PlannerConfigError, match=r"fp16 is not supported on CPU; use fp32 .* or bf16"):
        Planner(str(navsim_weights), "cpu", "fp16")


@pytest.mark.parametrize(
    ("device", "message"), [("gpu", "expected auto, cpu, cuda or cuda:N"), ("cuda:x", "expected auto")]
)
def test_bad_device_names(device, message):
    with pytest.raises(PlannerConfigError, match=message):
        resolve_device(device)


def test_cuda_requested_without_cuda(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(PlannerConfigError, match="CUDA is not available"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


def test_unknown_precision():
    import torch

    with pytest.raises(PlannerConfigError, match="precision 'int8': expected one of fp32, fp16, bf16"):
        check_precision("int8", torch.device("cpu"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"speed_mps": math.nan}, "speed: expected a finite value >= 0 m/s, got nan"),
        ({"speed_mps": -0.5}, "speed: expected a finite value >= 0 m/s, got -0.5"),
        ({"speed_mps": math.inf}, "speed: expected a finite value"),
        ({"acceleration_mps2": math.inf}, "acceleration: expected a finite value in m/s^2, got inf"),
        ({"acceleration_mps2": math.nan}, "acceleration: expected a finite value"),
        ({"command": "north"}, "command 'north' is not one of left, straight, right, unknown"),
        ({"command": 7}, "command 7 is outside 0..3"),
        ({"image": None}, "give exactly one of cameras"),
    ],
)
def test_bad_observations_name_the_input(kwargs, message):
    values = {"speed_mps": 1.0, "acceleration_mps2": 0.0, "command": 1, "image": IMAGE, **kwargs}
    with pytest.raises(ObservationError if "command" not in message else ValueError, match=re.escape(message)):
        Observation(**values)


def test_command_names_and_indices():
    assert Command.parse("Left") is Command.LEFT
    assert Command.parse(" straight ") is Command.STRAIGHT
    assert Command.parse("2") is Command.RIGHT
    assert Command.parse(3) is Command.UNKNOWN
    assert Command.RIGHT.one_hot() == [0.0, 0.0, 1.0, 0.0]


def test_plan_from_cameras(planner):
    plan = planner.plan(Observation(4.0, 0.2, Command.LEFT, cameras=reference_cameras()))
    assert plan.model_image.shape == (270, 1920, 3)
    assert plan.waypoints.shape == (8, 2) and plan.headings.shape == (8,)
    assert plan.times_s == WAYPOINT_TIMES_S == (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0)
    np.testing.assert_array_equal(plan.waypoints[:, 1], -plan.waypoints_carla[:, 1])
    np.testing.assert_array_equal(plan.headings, -plan.headings_carla)
    assert plan.timings.preprocess_ms > 0 and plan.timings.inference_ms > 0
    # The same stitched input gives the same plan as the cameras it came from.
    again = planner.plan(Observation(4.0, 0.2, Command.LEFT, image=plan.model_image))
    np.testing.assert_array_equal(again.waypoints, plan.waypoints)


def test_jpeg_switch_changes_the_model_input(navsim_weights, planner):
    cameras = reference_cameras()
    without = Planner(str(navsim_weights), "cpu", jpeg_roundtrip=False, runtime="eager")
    a = planner.preprocess(Observation(0.0, 0.0, 1, cameras=cameras))
    b = without.preprocess(Observation(0.0, 0.0, 1, cameras=cameras))
    without.close()
    assert a.shape == b.shape and not np.array_equal(a, b)


def test_bf16_on_cpu_runs_close_to_fp32(navsim_weights, planner):
    bf16 = Planner(str(navsim_weights), "cpu", "bf16")
    observation = Observation(5.0, 0.5, Command.STRAIGHT, cameras=reference_cameras())
    reference = planner.plan(observation)
    approx = bf16.plan(observation)
    bf16.close()
    assert approx.waypoints.dtype == np.float64
    # bf16 keeps about 3 significant digits; LEAD documents ~1e-2 against bf16 GPU runs.
    assert np.abs(approx.waypoints - reference.waypoints).max() < 0.5


def test_runtime_choice_and_refusals():
    import torch

    from lead_ros.planner import resolve_runtime

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_runtime("auto", cpu, None) == "onnxruntime"
    assert resolve_runtime("auto", cpu, torch.bfloat16) == "eager"
    assert resolve_runtime("auto", cuda, None) == "eager"
    assert resolve_runtime("eager", cpu, None) == "eager"
    with pytest.raises(PlannerConfigError, match=r"runtime onnxruntime runs fp32 on the CPU only .*precision bf16"):
        resolve_runtime("onnxruntime", cpu, torch.bfloat16)
    with pytest.raises(PlannerConfigError, match=r"runtime onnxruntime runs fp32 on the CPU only .*device cuda"):
        resolve_runtime("onnxruntime", cuda, None)
    with pytest.raises(PlannerConfigError, match="runtime 'torchscript': expected one of auto, onnxruntime, eager"):
        resolve_runtime("torchscript", cpu, None)


def test_input_buffers_are_kept_for_a_bounded_number_of_heights(eager_planner):
    from lead_ros.planner import MAX_HEIGHTS

    assert MAX_HEIGHTS == 2
    images = {h: np.random.default_rng(h).integers(0, 256, (h, 1920, 3), dtype=np.uint8) for h in range(300, 306)}
    for image in images.values():  # a stream whose height keeps changing
        eager_planner.infer(image, 4.0, 0.5, 1)
    assert eager_planner.heights == (304, 305)
    eager_planner.infer(images[304], 4.0, 0.5, 1)
    assert eager_planner.heights == (305, 304)  # least recently used first


def test_a_closed_planner_holds_nothing_and_refuses_work(navsim_weights):
    import gc
    import weakref

    planner = Planner(str(navsim_weights), "cpu")
    heads = weakref.ref(planner.runtime.perception_heads)
    sessions = [weakref.ref(s) for s in planner.runtime._sessions[270]]
    planner.close()
    gc.collect()
    assert heads() is None and all(s() is None for s in sessions) and planner.heights == ()
    with pytest.raises(RuntimeError, match="this planner was closed; create a new one"):
        planner.infer(IMAGE, 1.0, 0.0, 1)
