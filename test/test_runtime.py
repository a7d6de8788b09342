"""The ONNX Runtime inference path: sessions per height, bounded and freed; the graph cache
key; clear errors for inputs of the wrong shape. (Golden parity of both runtimes:
test_model_parity.py; memory over configure/cleanup cycles: test_reconfigure_memory.py.)"""

from __future__ import annotations

import gc
import shutil
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch

from lead_ros.model.onnx_runtime import OnnxPlanning, graph_key


def _inputs(height: int, width: int = 1920) -> tuple[torch.Tensor, ...]:
    rgb = torch.from_numpy(np.random.default_rng(height).uniform(0, 255, (1, 3, height, width)).astype(np.float32))
    command = torch.tensor([[0.0, 1.0, 0.0, 0.0]])
    return rgb, torch.tensor([[4.0]]), torch.tensor([[0.5]]), command


def test_sessions_beyond_the_bound_are_dropped_and_reloaded_from_the_graph_cache(planner, eager_planner):
    onnx = OnnxPlanning(eager_planner.models, planner.info.weights_sha256, max_heights=1)
    onnx.run(_inputs(270))  # the session planner exported this height's graph already
    first = weakref.ref(onnx._sessions[270][0])
    graph_270 = onnx.graph_path(0, 270)
    written = graph_270.stat().st_mtime_ns
    # The weights beside the graph (less memory to save it and to make its session), nothing
    # left of the staging directory.
    assert sorted(p.name for p in graph_270.parent.iterdir() if p.name.startswith(graph_270.name)) == [
        graph_270.name,
        f"{graph_270.name}.data",
        f"{graph_270.name}.sha256",
    ]
    assert not [p for p in graph_270.parent.iterdir() if p.name.endswith(".partial")]
    waypoints, headings, bev = onnx.run(_inputs(256))[0]
    gc.collect()
    assert onnx.heights == (256,) and first() is None  # evicted and freed
    with torch.inference_mode():
        expected = eager_planner.models[0](*_inputs(256))
    np.testing.assert_allclose(waypoints.numpy(), expected.waypoints.numpy(), rtol=0, atol=1e-4)
    np.testing.assert_allclose(headings.numpy(), expected.headings.numpy(), rtol=0, atol=1e-4)
    np.testing.assert_allclose(bev.numpy(), expected.bev_features.numpy(), rtol=0, atol=1e-4)
    onnx.run(_inputs(270))
    assert onnx.heights == (270,) and graph_270.stat().st_mtime_ns == written  # from the cache, not re-exported
    onnx.close()
    assert onnx.heights == ()


def _copy_graph(source: Path, folder: Path) -> None:
    """A cached graph's files (graph, weights, digests) into another cache folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in ("", ".data", ".sha256"):
        shutil.copy(source.with_name(source.name + suffix), folder / (source.name + suffix))


def test_a_new_height_is_exported_in_a_child_process_from_the_weights_files(
    planner, eager_planner, navsim_weights, tmp_path, monkeypatch
):
    """An ONNX Runtime planner holds no PyTorch models (208 MB per member): a height whose graph
    is not cached is exported in a spawned child that builds them from the same files, so the
    planner's process does not grow by the models and the exporter's heap for every height."""
    from functools import partial

    import lead_ros.model.onnx_runtime as onnx_runtime
    from lead_ros.planner import _reload_inference_models

    def not_here(*args, **kwargs):
        raise AssertionError("exported in the planner's process")

    monkeypatch.setattr(onnx_runtime, "export_planning_graph", not_here)  # this process only: the child imports anew
    assert planner.models == [] and len(eager_planner.models) == 1
    sha256 = planner.info.weights_sha256
    reload = partial(_reload_inference_models, str(navsim_weights), 1, None, sha256)
    onnx = OnnxPlanning([], sha256, tmp_path, max_heights=1, load_models=reload)
    _copy_graph(OnnxPlanning([], sha256).graph_path(0, 270), onnx.graph_path(0, 270).parent)  # the session's
    onnx.run(_inputs(270))  # cached: nothing exported
    waypoints, headings, _ = onnx.run(_inputs(256))[0]
    assert onnx_runtime.graph_problem(onnx.graph_path(0, 256)) is None  # exported, with its digests
    with torch.inference_mode():
        expected = eager_planner.models[0](*_inputs(256))
    np.testing.assert_allclose(waypoints.numpy(), expected.waypoints.numpy(), rtol=0, atol=1e-4)
    np.testing.assert_allclose(headings.numpy(), expected.headings.numpy(), rtol=0, atol=1e-4)
    onnx.close()


@pytest.mark.parametrize("damage", ["truncated-data", "flipped-data", "truncated-graph", "no-digest"])
def test_a_damaged_cached_graph_is_exported_again(eager_planner, planner, tmp_path, caplog, damage):
    """A truncated graph or weights file killed predict and the node with an ONNX Runtime
    traceback at every start; flipped bytes of the same size loaded and planned wrong."""
    sha256 = planner.info.weights_sha256
    with torch.inference_mode():
        expected = eager_planner.models[0](*_inputs(256))
    OnnxPlanning(eager_planner.models, sha256, tmp_path).run(_inputs(256))
    graph = OnnxPlanning([], sha256, tmp_path).graph_path(0, 256)
    data = graph.with_name(graph.name + ".data")
    if damage == "truncated-data":
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    elif damage == "flipped-data":
        raw = bytearray(data.read_bytes())
        raw[len(raw) // 2 : len(raw) // 2 + 64] = bytes(b ^ 0xFF for b in raw[len(raw) // 2 : len(raw) // 2 + 64])
        data.write_bytes(bytes(raw))
    elif damage == "truncated-graph":
        graph.write_bytes(graph.read_bytes()[:100])
    else:
        graph.with_name(graph.name + ".sha256").unlink()
    caplog.set_level("WARNING", logger="lead_ros.model.onnx_runtime")
    waypoints, headings, _ = OnnxPlanning(eager_planner.models, sha256, tmp_path).run(_inputs(256))[0]
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warning.startswith(f"onnxruntime: the cached graph {graph} is damaged (") and warning.endswith(
        "): removed, exporting it again"
    )
    np.testing.assert_allclose(waypoints.numpy(), expected.waypoints.numpy(), rtol=0, atol=1e-4)
    np.testing.assert_allclose(headings.numpy(), expected.headings.numpy(), rtol=0, atol=1e-4)
    from lead_ros.model.onnx_runtime import graph_problem

    assert graph_problem(graph) is None


def test_a_cache_that_cannot_be_written_gives_way_to_a_private_one(eager_planner, planner, tmp_path, caplog):
    """Under a read-only HOME or LEAD_ROS_CACHE_DIR, or a path under a regular file, the whole
    export ran and then failed with [Errno 30] / [Errno 20]: the default runtime was unusable."""
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    caplog.set_level("WARNING", logger="lead_ros.model.onnx_runtime")
    onnx = OnnxPlanning(eager_planner.models, planner.info.weights_sha256, blocker / "cache")
    waypoints, _, _ = onnx.run(_inputs(256))[0]
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    private = onnx.cache_dir
    assert warning == (
        f"onnxruntime: the graph cache {blocker / 'cache'} cannot be written (Not a directory); graphs go to "
        f"{private} for this process and are removed with it: set runtime_cache_dir or LEAD_ROS_CACHE_DIR to a "
        "writable directory to keep them"
    )
    with torch.inference_mode():
        expected = eager_planner.models[0](*_inputs(256))
    np.testing.assert_allclose(waypoints.numpy(), expected.waypoints.numpy(), rtol=0, atol=1e-4)
    assert private.is_dir()
    onnx.close()
    assert not private.exists()


def test_a_planner_whose_graph_is_cached_builds_no_trunk_and_perceives_as_the_built_model(
    planner, eager_planner, navsim_weights, monkeypatch
):
    """The session planner exported the 270-row graph into this run's cache: a second planner
    of the same files loads it without building the PyTorch trunk (timm and 1.2 s less per
    start), and its perception heads, built from the state dict, equal the built model's."""
    import lead_ros.planner as planner_module
    from lead_ros.model.ltfv6 import PerceptionHeads

    def refuse(checkpoint):
        raise AssertionError("built the PyTorch models although the graph is cached")

    monkeypatch.setattr(planner_module, "build_models", refuse)
    with planner_module.Planner(str(navsim_weights), "cpu", "fp32") as cached:
        assert cached.models == [] and cached.info.ensemble_size == 1
        bev = torch.from_numpy(np.random.default_rng(0).normal(size=(1, 512, 8, 8)).astype(np.float32))
        with torch.inference_mode():
            own = cached.runtime.perception_heads(bev)
            built = PerceptionHeads.of(eager_planner.models[0])(bev)
        assert own.keys() == built.keys()
        for name in own:
            assert torch.equal(own[name], built[name]), name
        image = np.random.default_rng(1).integers(0, 256, (270, 1920, 3), dtype=np.uint8)
        mine, theirs = (each.infer_with_perception(image, 4.0, 0.5, 1) for each in (cached, planner))
    np.testing.assert_array_equal(mine[0], theirs[0])
    np.testing.assert_array_equal(mine[2].bev_logits_lead, theirs[2].bev_logits_lead)


def test_models_are_kept_without_a_way_to_build_them_again(planner):
    with pytest.raises(ValueError, match="release_models needs load_models"):
        OnnxPlanning([], planner.info.weights_sha256).release_models()


def test_the_graph_cache_key_changes_with_weights_shape_and_versions(monkeypatch):
    import lead_ros

    base = graph_key("a" * 64, 270, 1920)
    assert graph_key("a" * 64, 270, 1920) == base
    assert graph_key("b" * 64, 270, 1920) != base
    assert graph_key("a" * 64, 256, 1920) != base
    monkeypatch.setattr(torch, "__version__", "9.9.9")
    assert graph_key("a" * 64, 270, 1920) != base
    monkeypatch.undo()
    monkeypatch.setattr(lead_ros, "__version__", "9.9.9")
    assert graph_key("a" * 64, 270, 1920) != base


def test_an_input_of_the_wrong_shape_is_one_clear_error(planner):
    onnx = OnnxPlanning([], planner.info.weights_sha256)  # the session planner exported the 270-row graph
    rgb, speed, acceleration, command = _inputs(270)
    with pytest.raises(
        ValueError,
        match=r"input 'rgb': float32 of shape \[1, 3, 270, 1000\]; the graph expects "
        r"float32 of shape \[1, 3, 270, 1920\]",
    ):
        onnx.run((rgb[..., :1000].contiguous(), speed, acceleration, command))
    with pytest.raises(ValueError, match=r"input 'command': float32 of shape \[1, 3\]; the graph expects .*\[1, 4\]"):
        onnx.run((rgb, speed, acceleration, command[:, :3]))
    onnx.close()
