"""Checkpoint sources, layouts, validation errors and the synthetic recipe."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from lead_ros.weights.errors import WeightsError
from lead_ros.weights.loader import build_models, file_sha256, load_checkpoint
from lead_ros.weights.manifest import load_manifest
from lead_ros.weights.source import HubSource, parse_source


@pytest.fixture(scope="module")
def state(navsim_weights):
    return torch.load(navsim_weights / "model_0000.pth", weights_only=True)


def _save(tmp_path: Path, obj, name: str = "model.pth") -> Path:
    path = tmp_path / name
    torch.save(obj, path)
    return path


def _expect_error(spec, *fragments, **kwargs):
    with pytest.raises(WeightsError) as error:
        checkpoint = load_checkpoint(str(spec), **kwargs)
        build_models(checkpoint)
    for fragment in fragments:
        assert fragment in str(error.value), str(error.value)
    return str(error.value)


def test_synthetic_checkpoint_layout_and_strict_load(navsim_weights, state):
    config = json.loads((navsim_weights / "config.json").read_text())
    assert config["synthetic"] is True and config["recipe"] == "ltfv6-synthetic-v1"
    assert list(state) == [e.key for e in load_manifest("navsim").entries]
    checkpoint = load_checkpoint(str(navsim_weights))
    assert checkpoint.untrained and len(checkpoint.files) == 1
    assert checkpoint.files[0].sha256 == file_sha256(navsim_weights / "model_0000.pth")
    model = build_models(checkpoint)[0]
    assert not model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


@pytest.mark.parametrize("prefix", ["module.", "_orig_mod.", "module._orig_mod."])
def test_wrapper_prefixes_are_stripped(tmp_path, state, prefix):
    path = _save(tmp_path, {prefix + k: v for k, v in state.items()})
    build_models(load_checkpoint(str(path)))


def test_safetensors_file_loads(tmp_path, state):
    from safetensors.torch import save_file

    path = tmp_path / "model.safetensors"
    save_file(state, str(path))
    model = build_models(load_checkpoint(str(path)))[0]
    key = "planning_decoder.query"
    assert torch.equal(model.state_dict()[key], state[key])


def test_missing_keys_are_named(tmp_path, state):
    broken = dict(state)
    del broken["planning_decoder.wp_decoder.weight"]
    del broken["backbone.transformers.2.ln_f.bias"]
    message = _expect_error(_save(tmp_path, broken), "2 missing keys", "planning_decoder.wp_decoder.weight")
    assert "backbone.transformers.2.ln_f.bias" in message


def test_unexpected_keys_are_named(tmp_path, state):
    extra = {**state, "planning_decoder.route_decoder.weight": torch.zeros(3)}
    _expect_error(_save(tmp_path, extra), "1 unexpected keys", "planning_decoder.route_decoder.weight")


def test_wrong_shapes_name_expected_and_found(tmp_path, state):
    bad = {**state, "planning_decoder.wp_decoder.weight": torch.zeros(3, 64)}
    _expect_error(_save(tmp_path, bad), "planning_decoder.wp_decoder.weight: expected (2, 64), found (3, 64)")


def test_checkpoint_of_another_model_is_refused(tmp_path):
    import timm

    other = timm.create_model("resnet18", pretrained=False).state_dict()
    _expect_error(_save(tmp_path, other), "not an LTFv6 checkpoint", "top-level prefixes", "layer1.* ")


def test_training_checkpoint_is_not_a_plain_state_dict(tmp_path, state):
    _expect_error(_save(tmp_path, {"epoch": 3, "state_dict": state}), "not a plain state dict", "'epoch'")


def test_arbitrary_pickle_is_refused(tmp_path):
    _expect_error(_save(tmp_path, {"model": Path("x")}), "is not a plain tensor checkpoint", "(pathlib.PosixPath)")


def test_truncated_file_is_refused(tmp_path, navsim_weights):
    data = (navsim_weights / "model_0000.pth").read_bytes()
    path = tmp_path / "model.pth"
    path.write_bytes(data[: len(data) // 3])
    _expect_error(path, f"weights file {path}", "it is not a checkpoint", "truncated or corrupted")


def test_corrupted_file_is_refused(tmp_path):
    path = tmp_path / "model.pth"
    path.write_bytes(b"\x00garbage" * 100)
    _expect_error(path, "it is not a checkpoint", "truncated or corrupted")


@pytest.mark.parametrize("text", ["hello\n", "a\n", "hello", "not a checkpoint\n"])
def test_text_file_named_like_a_checkpoint_is_refused(tmp_path, text):
    # Each text makes torch's unpickler fail differently (IndexError, KeyError, UnpicklingError).
    path = tmp_path / "model.pth"
    path.write_text(text)
    _expect_error(path, f"weights file {path}", "it is not a checkpoint")


def test_nonexistent_source(tmp_path):
    _expect_error(tmp_path / "nope.pth", "neither an existing path nor an hf://")


def test_directory_without_weights_lists_its_files(tmp_path):
    (tmp_path / "README.md").write_text("hi")
    (tmp_path / "notes.txt").write_text("x")
    _expect_error(tmp_path, "matches no known checkpoint layout", "README.md", "notes.txt")


def test_config_json_must_agree_with_shapes(tmp_path, navsim_weights):
    shutil.copy(navsim_weights / "model_0000.pth", tmp_path / "model_0000.pth")
    (tmp_path / "config.json").write_text(json.dumps({"transfuser_token_dim": 256}))
    _expect_error(tmp_path, "declares token dim 256")


def test_expected_sha256_is_checked(navsim_weights):
    _expect_error(navsim_weights, "not one of the expected", expected_sha256=["0" * 64])
    sha = file_sha256(navsim_weights / "model_0000.pth")
    assert load_checkpoint(str(navsim_weights), expected_sha256=[sha]).files[0].sha256 == sha


def test_mixed_checkpoint_ignores_only_known_carla_heads(synthetic_checkpoints, caplog):
    with caplog.at_level(logging.INFO):
        checkpoint = load_checkpoint(str(synthetic_checkpoints("mixed")))
    assert checkpoint.config.mixed_data_training
    assert len(checkpoint.ignored_keys) == 39
    assert all(
        k.split(".")[0] in {"semantic_decoder", "bev_semantic_decoder", "center_net_decoder"}
        for k in checkpoint.ignored_keys
    )
    assert "ignoring 39 auxiliary CARLA-head tensors" in caplog.text
    build_models(checkpoint)


def test_ensemble_directory_averages_members(tmp_path, navsim_weights, state):
    from lead_ros.planner import Planner

    shutil.copy(navsim_weights / "config.json", tmp_path / "config.json")
    torch.save(state, tmp_path / "model_0000.pth")
    other = dict(state)
    other["planning_decoder.wp_decoder.bias"] = state["planning_decoder.wp_decoder.bias"] + torch.tensor([1.0, -2.0])
    torch.save(other, tmp_path / "model_0001.pth")
    image = np.zeros((256, 1920, 3), np.uint8)
    # Averaging happens after the runtime, so eager (no graph export) checks it for both.
    both = Planner(str(tmp_path), "cpu", runtime="eager")
    assert both.info.ensemble_size == 2 and len(both.info.weights_sha256) == 2
    first = Planner(str(tmp_path), "cpu", ensemble_size=1, runtime="eager")
    assert first.info.ensemble_size == 1
    wp_both, hd_both = both.infer(image, 3.0, 0.0, 1)
    wp_first, hd_first = first.infer(image, 3.0, 0.0, 1)
    both.close()
    first.close()
    # The bias shift adds k*(1, -2) to waypoint k (cumulative sum); the mean adds half of it.
    steps = np.arange(1, 9)[:, None] * np.array([1.0, -2.0])
    np.testing.assert_allclose(wp_both, wp_first + steps / 2, atol=1e-4)
    np.testing.assert_allclose(hd_both, hd_first, atol=1e-5)
    _expect_error(tmp_path, "ensemble_size 3 is out of range", "2 weights files", ensemble_size=3)


# --- Hugging Face Hub sources (never on the network: a fabricated offline cache) ---------

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _fabricate_hub_cache(cache: Path, repo: str, files: dict[str, Path | str]) -> Path:
    storage = cache / ("models--" + repo.replace("/", "--"))
    snapshot = storage / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (storage / "refs").mkdir()
    (storage / "refs" / "main").write_text(COMMIT)
    for name, content in files.items():
        if isinstance(content, Path):
            shutil.copy(content, snapshot / name)
        else:
            (snapshot / name).write_text(content)
    return snapshot


def test_parse_sources(navsim_weights):
    assert parse_source("hf://ln2697/ltfv6-navsim@v1") == HubSource("ln2697/ltfv6-navsim", "v1")
    assert parse_source("hf://") == HubSource("ln2697/ltfv6-navsim", None)
    assert parse_source(str(navsim_weights)) == navsim_weights
    with pytest.raises(WeightsError, match="expected hf://OWNER/REPO"):
        parse_source("hf://just-a-name")


def test_hub_source_loads_from_offline_cache(tmp_path, navsim_weights, monkeypatch, caplog):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = "ln2697/ltfv6-navsim"
    _fabricate_hub_cache(
        tmp_path,
        repo,
        {
            "config.json": navsim_weights / "config.json",
            "model_0000.pth": navsim_weights / "model_0000.pth",
        },
    )
    with caplog.at_level(logging.WARNING):
        checkpoint = load_checkpoint(f"hf://{repo}", cache_dir=str(tmp_path))
    assert "revision not pinned" in caplog.text
    assert checkpoint.source == f"hf://{repo}"
    assert checkpoint.files[0].sha256 == file_sha256(navsim_weights / "model_0000.pth")
    pinned = load_checkpoint(f"hf://{repo}@{COMMIT}", cache_dir=str(tmp_path))
    assert pinned.files[0].path.parent.name == COMMIT
    build_models(pinned)


def test_hub_source_not_cached_offline_names_what_was_tried(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _expect_error(
        "hf://someone/missing@v2",
        "hf://someone/missing@v2",
        "revision v2",
        str(tmp_path),
        "HF_HUB_OFFLINE is set",
        cache_dir=str(tmp_path),
    )


def test_hub_snapshot_of_unknown_layout_lists_its_files(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _fabricate_hub_cache(tmp_path, "a/b", {"README.md": "model card", "ltfv6.json": "{}"})
    _expect_error("hf://a/b", "matches no known checkpoint layout", "README.md", "ltfv6.json", cache_dir=str(tmp_path))


@pytest.mark.parametrize("dtype", [torch.int8, torch.bool, torch.uint8, torch.int64])
def test_weights_of_a_non_float_dtype_are_refused_naming_the_first(tmp_path, state, dtype):
    """Right names and shapes, wrong dtype: load_state_dict would copy them in silently."""
    from safetensors.torch import save_file

    path = tmp_path / "model.safetensors"
    save_file({k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}, str(path))
    first = next(k for k, v in state.items() if v.is_floating_point())
    name = str(dtype).removeprefix("torch.")
    _expect_error(path, f"tensor {first} has dtype {name}; expected floating point")


def test_a_float_batch_counter_is_refused(tmp_path, state):
    counters = [k for k in state if k.endswith("num_batches_tracked")]
    assert len(counters) == 72 and all(state[k].dtype == torch.int64 for k in counters)
    broken = {k: v.float() if k == counters[0] else v for k, v in state.items()}
    _expect_error(_save(tmp_path, broken), f"tensor {counters[0]} has dtype float32; expected an integer (int64)")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_files_are_converted_with_an_info_line(tmp_path, state, dtype, caplog):
    """The model then holds exactly the half-precision values, widened to float32."""
    half = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    with caplog.at_level(logging.INFO, logger="lead_ros.weights.loader"):
        model = build_models(load_checkpoint(str(_save(tmp_path, half))))[0]
    floats = sum(v.is_floating_point() for v in state.values())
    name = str(dtype).removeprefix("torch.")
    assert any(f"converting {floats} {name} tensors to float32" in r.message for r in caplog.records)
    for key, value in model.state_dict().items():
        assert value.dtype == state[key].dtype and torch.equal(value, half[key].to(state[key].dtype)), key


class _RunsCode:
    """A pickle payload that would create ``marker`` if it were executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_pickle_is_one_complete_line_and_never_executed(tmp_path, capsys):
    from lead_ros.tools.cli import main

    marker = tmp_path / "executed"
    path = _save(tmp_path, {"planning_decoder.query": _RunsCode(marker)})
    message = _expect_error(path, "is not a plain tensor checkpoint", "nothing in it was executed", "(posix.system)")
    assert "\n" not in message and "weights_only" not in message
    image = tmp_path / "image.png"
    import cv2

    cv2.imwrite(str(image), np.zeros((256, 1920, 3), np.uint8))
    capsys.readouterr()
    code = main(
        ["predict", "--weights", str(path), "--image", str(image), "--speed", "1", "--accel", "0", "--command", "left"]
    )
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "[ERROR]" in line]
    assert code == 2 and len(errors) == 1 and err.endswith("\n"), err
    assert "Warning" not in err and "weights_only" not in err and "nothing in it was executed" in errors[0]
    assert not marker.exists()


@pytest.mark.parametrize("variant", ["navsim", "token256", "mixed"])
def test_synthetic_config_carries_leads_navsim_flags(tmp_path, variant):
    """LEAD's NAVSIM agent builds its CARLA configuration without these flags, and the strict load
    of the synthetic weights then fails (unexpected *_navsim keys, lidar_encoder.conv1 [64,2,7,7]
    vs [64,1,7,7], pos_emb 544 vs 552)."""
    from lead_ros.weights.synthetic import write_synthetic_checkpoint

    write_synthetic_checkpoint(tmp_path, variant)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["use_navsim_data"] is True and config["LTF"] is True and config["use_planning_decoder"] is True
    assert config["use_carla_data"] is (variant == "mixed")
    assert config["transfuser_token_dim"] == (256 if variant == "token256" else 64)
    assert config["transfuser_num_bev_cross_attention_heads"] == 8
    loaded = load_checkpoint(str(tmp_path)).config  # lead_ros reads the same file
    assert (loaded.token_dim, loaded.mixed_data_training) == (config["transfuser_token_dim"], config["use_carla_data"])
