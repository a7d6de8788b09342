"""Golden-case parity of the public Planner path with LEAD's reference (fp32 CPU, 1e-4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import DATA, load_cases, read_rgb
from lead_ros.observation import Observation
from lead_ros.planner import Planner
from lead_ros.weights.loader import build_models, load_checkpoint

TOLERANCE = 1e-4
MAIN_CASES = load_cases()


def _observation(case: dict) -> Observation:
    return Observation(
        case["speed_mps"],
        case["acceleration_mps2"],
        case["command_index"],
        image=read_rgb(case["image_path"]),
    )


def _assert_matches(plan, reference: dict) -> None:
    np.testing.assert_allclose(plan.waypoints_carla, reference["waypoints_carla"], rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(plan.headings_carla, reference["headings_carla"], rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(plan.waypoints, reference["waypoints_iso8855"], rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(plan.headings, reference["headings_iso8855"], rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("runtime", ["onnxruntime", "eager"])
@pytest.mark.parametrize("case", MAIN_CASES, ids=[c["id"] for c in MAIN_CASES])
def test_main_golden_case(request, case, runtime):
    planner = request.getfixturevalue("planner" if runtime == "onnxruntime" else "eager_planner")
    assert planner.info.runtime == runtime
    image = read_rgb(case["image_path"])
    assert image.shape == tuple(case["image_shape_hwc"])
    plan = planner.plan(_observation(case))
    _assert_matches(plan, case["outputs_float64"])


# Each runtime also meets a checkpoint configuration other than the default: token width 256
# (most likely the released checkpoint's) in ONNX Runtime, the mixed-data heads in eager.
@pytest.mark.parametrize(("variant", "runtime"), [("token256", "onnxruntime"), ("mixed", "eager")])
def test_variant_golden_cases(synthetic_checkpoints, variant, runtime):
    planner = Planner(str(synthetic_checkpoints(variant)), "cpu", "fp32", runtime=runtime)
    assert planner.info.runtime == runtime
    expected_dim = 256 if variant == "token256" else 64
    assert planner.info.config.token_dim == expected_dim
    assert planner.info.config.mixed_data_training == (variant == "mixed")
    cases = load_cases(f"variants/{variant}/cases.json")
    assert len(cases) == 3
    for case in cases:
        _assert_matches(planner.plan(_observation(case)), case["outputs_float64"])
    planner.close()


# --- intermediates of case_00, so a divergence points at its stage -------------------------


def _capture_intermediates(model, case: dict) -> dict[str, torch.Tensor]:
    """Run the unoptimised model with hooks that record every reference stage."""
    captured: dict[str, torch.Tensor] = {}
    backbone = model.backbone
    backbone.clear_cache()
    hooks = []

    def keep(name, pick=lambda out: out):
        def hook(_module, _inputs, output):
            captured.setdefault(name, pick(output).detach().double())

        return hook

    def keep_input(name):
        def hook(_module, inputs):
            captured.setdefault(name, inputs[0].detach().double())

        return hook

    hooks.append(backbone.image_encoder.conv1.register_forward_pre_hook(keep_input("image_normalized")))
    hooks.append(backbone.lidar_encoder.conv1.register_forward_pre_hook(keep_input("ltf_input")))
    hooks.append(backbone.image_encoder.act1.register_forward_hook(keep("image_stem")))
    hooks.append(backbone.lidar_encoder.act1.register_forward_hook(keep("lidar_stem")))
    for i in range(4):
        layer = f"layer{i + 1}"
        hooks.append(getattr(backbone.image_encoder, layer).register_forward_hook(keep(f"image_block{i}_prefusion")))
        hooks.append(getattr(backbone.lidar_encoder, layer).register_forward_hook(keep(f"lidar_block{i}_prefusion")))
        hooks.append(backbone.transformers[i].register_forward_hook(keep(f"gpt{i}_image_tokens_out", lambda o: o[0])))
        hooks.append(backbone.transformers[i].register_forward_hook(keep(f"gpt{i}_lidar_tokens_out", lambda o: o[1])))
    hooks.append(backbone.register_forward_hook(keep("bev_features")))
    decoder = model.planning_decoder
    hooks.append(decoder.planning_context_encoder.register_forward_hook(keep("context_tokens")))
    hooks.append(decoder.transformer_decoder.register_forward_hook(keep("decoder_out")))
    hooks.append(decoder.wp_decoder.register_forward_hook(keep("waypoint_deltas")))
    hooks.append(decoder.heading_decoder.register_forward_hook(keep("heading_deltas")))
    rgb = torch.from_numpy(read_rgb(case["image_path"])).permute(2, 0, 1)[None].float()
    with torch.inference_mode():
        model(
            rgb,
            torch.tensor([[case["speed_mps"]]]),
            torch.tensor([[case["acceleration_mps2"]]]),
            torch.tensor([case["command_onehot"]]),
        )
        for name, value in model.auxiliary(captured["bev_features"].float()).items():
            captured[f"aux_{name}"] = value.double()
    for hook in hooks:
        hook.remove()
    captured["bev_sine_pos_embedding"] = decoder.planning_context_encoder.bev_pos_embedding.double()
    return captured


@pytest.fixture(scope="module")
def case00_intermediates(navsim_weights):
    model = build_models(load_checkpoint(str(navsim_weights)))[0]
    return _capture_intermediates(model, MAIN_CASES[0])


REFERENCE_STATS = MAIN_CASES[0]["intermediates_float64"]


@pytest.mark.parametrize("name", list(REFERENCE_STATS))
def test_case00_intermediate_stats(case00_intermediates, name):
    reference = REFERENCE_STATS[name]
    ours = case00_intermediates[name]
    assert list(ours.shape) == reference["shape"], name
    scale = max(abs(reference["min"]), abs(reference["max"]), 1.0)
    flat = ours.flatten()
    np.testing.assert_allclose(flat.sum().item(), reference["sum"], rtol=0, atol=1e-5 * reference["abs_sum"] + 1e-6)
    np.testing.assert_allclose(flat.abs().sum().item(), reference["abs_sum"], rtol=1e-5)
    np.testing.assert_allclose(
        [flat.min().item(), flat.max().item()],
        [reference["min"], reference["max"]],
        rtol=0,
        atol=1e-4 * scale,
    )
    indices = [int(i) for i in reference["samples"]]
    np.testing.assert_allclose(flat[indices].numpy(), list(reference["samples"].values()), rtol=0, atol=1e-4 * scale)


@pytest.mark.parametrize(
    "name",
    ["bev_features", "context_tokens", "decoder_out", "gpt0_image_tokens_out", "gpt3_lidar_tokens_out"],
)
def test_case00_full_intermediates(case00_intermediates, name):
    reference = np.load(DATA / f"case_00_{name}.npy")
    ours = case00_intermediates[name].numpy()
    assert ours.shape == reference.shape
    scale = max(np.abs(reference).max(), 1.0)
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-4 * scale)


def test_token256_intermediates(synthetic_checkpoints):
    """The 256-d decoder memory and output match, with the head count LEAD uses (8)."""
    model = build_models(load_checkpoint(str(synthetic_checkpoints("token256"))))[0]
    case = load_cases("variants/token256/cases.json")[0]
    captured = _capture_intermediates(model, case)
    folder = DATA / "variants" / "token256"
    for name in ("context_tokens", "decoder_out", "bev_sine_pos_embedding"):
        reference = np.load(folder / f"case_01_{name}.npy")
        scale = max(np.abs(reference).max(), 1.0)
        np.testing.assert_allclose(captured[name].numpy(), reference, rtol=0, atol=1e-4 * scale, err_msg=name)


def test_optimised_model_matches_reference_model(navsim_weights, eager_planner):
    """BatchNorm folding and channels-last keep the unoptimised model's output (1e-5)."""
    model = build_models(load_checkpoint(str(navsim_weights)))[0]
    case = MAIN_CASES[4]
    rgb = torch.from_numpy(read_rgb(case["image_path"])).permute(2, 0, 1)[None].float()
    with torch.inference_mode():
        out = model(rgb, torch.tensor([[7.3]]), torch.tensor([[1.2]]), torch.tensor([case["command_onehot"]]))
    waypoints, headings = eager_planner.infer(read_rgb(case["image_path"]), 7.3, 1.2, case["command_index"])
    np.testing.assert_allclose(waypoints, out.waypoints[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(headings, out.headings[0].numpy(), atol=1e-5)
