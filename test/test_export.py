"""``lead-ros export onnx``: the files, the manifest, parity with the golden cases in ONNX
Runtime, and clear errors. One export for the whole module (about half a minute)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from conftest import load_cases
from lead_ros.tools.cli import main
from lead_ros.tools.export import ExportParityError, check_parity, golden_feeds, run_graph

HEIGHT = 256  # five of the eight golden cases have 256 rows


@pytest.fixture(scope="module")
def exported(tmp_path_factory, navsim_weights):
    out = tmp_path_factory.mktemp("export") / "ltfv6_onnx"
    code = main(
        ["export", "onnx", "--weights", str(navsim_weights), "--out", str(out), "--height", str(HEIGHT), "--perception"]
    )
    assert code == 0
    return out


def test_export_writes_a_graph_and_a_manifest_that_describes_it(exported, navsim_weights, capsys):
    assert sorted(p.name for p in exported.iterdir()) == ["model.json", "model.onnx"]
    manifest = json.loads((exported / "model.json").read_text())
    assert [i["name"] for i in manifest["inputs"]] == ["rgb", "speed", "acceleration", "command"]
    assert manifest["inputs"][0]["shape"] == [1, 3, HEIGHT, 1920]
    assert manifest["inputs"][3]["order"] == ["left", "straight", "right", "unknown"]
    outputs = {o["name"]: o["shape"] for o in manifest["outputs"]}
    assert outputs["waypoints"] == [1, 8, 2] and outputs["headings"] == [1, 8]
    assert outputs["bev_semantic_logits"] == [1, 7, 256, 256] and "centernet_heatmap_head" in outputs
    assert "negate y and heading" in manifest["output_frame"]["to_iso8855_base_link"]
    assert "quality-30" in manifest["image_preprocessing"]["jpeg"]
    weights_file = navsim_weights / "model_0000.pth"
    assert manifest["weights"]["sha256"] == [hashlib.sha256(weights_file.read_bytes()).hexdigest()]
    assert manifest["opset"] == 20 and manifest["weights"]["untrained"] is True


def test_the_exported_graph_reproduces_the_golden_outputs(exported):
    """ONNX Runtime on the file alone (no lead_ros model) against LEAD's float64 outputs."""
    cases = [c for c in load_cases() if c["image_shape_hwc"][0] == HEIGHT]
    assert len(cases) == 5
    feeds = {c["id"]: f for c, f in zip(load_cases(), golden_feeds(HEIGHT), strict=True)}
    results = run_graph(exported / "model.onnx", [feeds[c["id"]] for c in cases])
    for case, (waypoints, headings, *_) in zip(cases, results, strict=True):
        reference = case["outputs_float64"]
        np.testing.assert_allclose(waypoints[0], reference["waypoints_carla"], rtol=0, atol=1e-4, err_msg=case["id"])
        np.testing.assert_allclose(headings[0], reference["headings_carla"], rtol=0, atol=1e-4, err_msg=case["id"])


def test_the_perception_outputs_match_the_models_auxiliary_heads(exported, eager_planner):
    feed = golden_feeds(HEIGHT)[0]
    outputs = run_graph(exported / "model.onnx", [feed])[0]
    model = eager_planner.models[0]
    with torch.inference_mode():
        bev = model(*(torch.from_numpy(feed[k]) for k in ("rgb", "speed", "acceleration", "command"))).bev_features
        aux = model.auxiliary(bev)
    manifest = json.loads((exported / "model.json").read_text())
    names = [o["name"] for o in manifest["outputs"]]
    for name, value in zip(names[3:], outputs[3:], strict=True):
        np.testing.assert_allclose(value, aux[name].numpy(), rtol=0, atol=1e-4, err_msg=name)


def test_a_graph_that_disagrees_with_its_model_fails_the_parity_check(exported, navsim_weights):
    from lead_ros.planner import Planner

    with Planner(str(navsim_weights), "cpu", runtime="eager") as other:
        with torch.no_grad():
            other.models[0].planning_decoder.wp_decoder.bias.add_(1e-3)
        with pytest.raises(ExportParityError, match=r"differs from lead_ros' fp32 forward by up to (7\.99|8\.0\d)e-03"):
            check_parity(other.models, [exported / "model.onnx"], HEIGHT, perception=True)


def test_inputs_of_the_wrong_shape_are_one_clear_error(exported):
    feed = golden_feeds(270)[0]
    with pytest.raises(
        ValueError,
        match=r"input 'rgb': float32 of shape \[1, 3, 270, 1920\]; the graph expects "
        r"float32 of shape \[1, 3, 256, 1920\]",
    ):
        run_graph(exported / "model.onnx", [feed])


def test_a_height_outside_the_models_range_exits_2(tmp_path, navsim_weights, capsys):
    code = main(["export", "onnx", "--weights", str(navsim_weights), "--out", str(tmp_path / "x"), "--height", "100"])
    assert code == 2
    assert "--height: height must be 256..1080" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
