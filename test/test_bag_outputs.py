"""The bag tools never lose a user's data: an --out that would delete an input is refused,
and one output folder is written by one run at a time."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from lead_ros.bag.output import BagOutputError, OutputLock, claim_output_dir
from lead_ros.tools.cli import main

SAMPLE = REPO / "data" / "sample_bag"


def _fingerprint(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def bags(tmp_path) -> Path:
    """A folder of two copies of the sample bag."""
    folder = tmp_path / "bags"
    for name in ("a", "b"):
        shutil.copytree(SAMPLE, folder / name)
    return folder


@pytest.mark.parametrize(
    ("given", "out", "relation"),
    [
        ("bags/a", "bags/a", "is"),  # --out = the bag: --overwrite deleted the recording
        ("bags/a", "bags", "contains"),  # --out = the bag's parent folder
        ("bags", "bags", "is"),  # --out = the folder of bags
        ("bags", "bags/a/results", "lies inside"),
        ("bags/a/sample_bag.mcap", "bags/a", "contains"),  # a single-file bag inside --out
    ],
)
def test_an_out_that_would_touch_an_input_is_refused_before_anything(
    capsys, tmp_path, bags, navsim_weights, given, out, relation
):
    _assert_refused(capsys, tmp_path, bags, navsim_weights, given, out, relation, "local")


def test_the_ray_engine_refuses_it_too(capsys, tmp_path, bags, navsim_weights, ray_local):
    _assert_refused(capsys, tmp_path, bags, navsim_weights, "bags", "bags", "is", "ray")


def _assert_refused(capsys, tmp_path, bags, weights, given, out, relation, engine) -> None:
    before = _fingerprint(bags)
    code = main(
        [
            "evaluate-bag",
            str(tmp_path / given),
            "--weights",
            str(weights),
            "--out",
            str(tmp_path / out),
            "--overwrite",
            "--engine",
            engine,
            "--no-pictures",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert f"--out {tmp_path / out} {relation} the input " in err and "nothing was written or deleted" in err
    assert _fingerprint(bags) == before, "the recordings are untouched"
    assert not list(tmp_path.rglob(".*.lock")), "no lock was taken before the check"


def test_the_demo_refuses_to_write_over_its_bag(tmp_path, bags):
    from lead_ros.tools.demo import main as demo

    before = _fingerprint(bags)
    with pytest.raises(BagOutputError, match="contains the input"):
        demo(["--out", str(bags), "--bag", str(bags / "a")])
    assert _fingerprint(bags) == before


def test_a_second_run_into_the_same_out_is_refused_naming_the_first(tmp_path):
    out = tmp_path / "results"
    with claim_output_dir(out, overwrite=False, inputs=[tmp_path / "bag"]):
        (out / "frames.jsonl").write_text("{}\n")
        # Another process: the CLI, exit 2, one line naming this process.
        code = f"from lead_ros.tools.cli import main; raise SystemExit(main({['evaluate-bag', str(SAMPLE), '--weights', 'w', '--out', str(out), '--overwrite']!r}))"  # noqa: E501
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, result.stderr
        errors = [line for line in result.stderr.splitlines() if "[ERROR]" in line]
        assert len(errors) == 1 and "Traceback" not in result.stderr
        import os

        assert f"output folder {out} is being written by another run (pid {os.getpid()}" in errors[0]
        assert (out / "frames.jsonl").read_text() == "{}\n", "--overwrite did not empty a folder in use"
    # Released: the next run may claim it (and --overwrite replaces it).
    with claim_output_dir(out, overwrite=True, inputs=[]):
        assert list(out.iterdir()) == []
    assert not (tmp_path / ".results.lock").exists()


def test_a_lock_left_by_a_dead_process_does_not_block(tmp_path):
    out = tmp_path / "results"
    script = f"from pathlib import Path; from lead_ros.bag.output import OutputLock; OutputLock(Path({str(out)!r}))"
    script += ".acquire()"
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)  # exits holding it: the OS drops it
    assert (tmp_path / ".results.lock").exists()
    with OutputLock(out).acquire():
        pass


# --- a bag that fails midway -------------------------------------------------------------------


def _compressed_sqlite_bag(path: Path, frames: int = 30) -> Path:
    from bag_factory import MS, START, BagSpec, jpeg_image, odometry
    from lead_ros.tools.synthetic_cameras import reference_cameras

    cameras = dict(zip(("l0", "f0", "r0", "b0"), reference_cameras(540, 960), strict=True))
    bag = BagSpec()
    for j in range(-10, frames * 5 + 10):
        bag.add(START + j * 20 * MS, "odometry", "nav_msgs/msg/Odometry", odometry(START + j * 20 * MS, 3.0))
    for k in range(frames):
        for name, image in cameras.items():
            bag.add(
                START + k * 100 * MS + 1,
                name,
                "sensor_msgs/msg/CompressedImage",
                jpeg_image(image, START + k * 100 * MS),
            )
    return bag.write(path, "sqlite3")


def _corrupt(bag: Path, at: float) -> None:
    """16 KB of fixed random bytes ``at`` (fraction) into the bag's .db3 file."""
    db = next(bag.glob("*.db3"))
    data = bytearray(db.read_bytes())
    start = int(len(data) * at)
    data[start : start + 16384] = np.random.default_rng(7).integers(0, 256, 16384, dtype=np.uint8).tobytes()
    db.write_bytes(bytes(data))


@pytest.mark.parametrize("at", [0.3, 0.9])
def test_a_bag_corrupt_midway_keeps_what_was_evaluated_and_is_marked_incomplete(capsys, tmp_path, navsim_weights, at):
    """16 KB of random bytes inside a .db3 ended in an apsw.CorruptError traceback, an empty
    frames.jsonl and no summary.json."""
    bag = _compressed_sqlite_bag(tmp_path / "drive")
    _corrupt(bag, at)
    out = tmp_path / "out"
    code = main(["evaluate-bag", str(bag), "--weights", str(navsim_weights), "--out", str(out), "--no-pictures"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err, err
    errors = [line for line in err.splitlines() if "[ERROR]" in line]
    assert len(errors) == 1 and f"reading {bag} failed after " in errors[0] and "CorruptError" in errors[0]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["incomplete"] is True and summary["error"] in errors[0]
    records = (out / "frames.jsonl").read_text().splitlines()
    assert len(records) == summary["position"]["frames_written"] == summary["planned"] + summary["skipped"]
    if at == 0.9:
        assert len(records) >= 10, "the frames before the damage were evaluated and kept"
    assert all(json.loads(line)["stamp_ns"] for line in records)


def test_a_folder_goes_on_after_a_corrupt_bag(capsys, tmp_path, navsim_weights):
    folder = tmp_path / "bags"
    _corrupt(_compressed_sqlite_bag(folder / "a_broken", frames=30), 0.3)
    _compressed_sqlite_bag(folder / "b_fine", frames=3)
    out = tmp_path / "out"
    code = main(["evaluate-bag", str(folder), "--weights", str(navsim_weights), "--out", str(out), "--no-pictures"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    fleet = json.loads((out / "fleet_summary.json").read_text())
    assert fleet["succeeded"] == [str(folder / "b_fine")]
    assert [f["bag"] for f in fleet["failed"]] == [str(folder / "a_broken")]
    assert json.loads((out / "a_broken" / "summary.json").read_text())["incomplete"] is True
    assert json.loads((out / "b_fine" / "summary.json").read_text())["planned"] == 3


# --- a full disk ---------------------------------------------------------------------------------


def test_a_failing_write_is_one_line_naming_the_file_and_keeps_what_was_written(tmp_path, navsim_weights):
    """A 2 MB tmpfs as --out gave `[Errno 28] No space left on device` without a path, a 0-byte
    frames.jsonl, a truncated output bag and no summary.json. Here the process may write files
    of at most 6 KB (RLIMIT_FSIZE: every further write fails with EFBIG, as a full disk fails
    with ENOSPC): frames.jsonl outgrows it after a few frames."""
    import resource
    import signal

    from lead_ros.bag.sample_bag import write_sample_bag

    bag = write_sample_bag(tmp_path / "drive", duration_s=1.0)
    out = tmp_path / "out"
    limit = 6 * 1024

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "lead_ros.tools.cli",
            "evaluate-bag",
            str(bag),
            "--weights",
            str(navsim_weights),
            "--out",
            str(out),
            "--no-pictures",
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=small_files,
    )
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if "[ERROR]" in line]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert (
        f"writing {out / 'frames.jsonl'} failed (File too large); the evaluation output in {out} is incomplete"
        in (errors[0])
    )
    records = (out / "frames.jsonl").read_bytes()
    assert records.endswith(b"\n") and len(records.splitlines()) >= 1, "whole records, flushed as written"
    for line in records.splitlines():
        json.loads(line)
    summary = json.loads((out / "summary.json").read_text())  # small enough to fit
    assert summary["incomplete"] is True and summary["error"] in errors[0]


# --- compare-evaluations and the drive an output came from ------------------------------------------


def _stitched_drive(path: Path, image) -> Path:
    from bag_factory import MS, START, BagSpec, odometry, raw_image

    bag = BagSpec()
    for j in range(-5, 10):
        bag.add(START + j * 20 * MS, "odometry", "nav_msgs/msg/Odometry", odometry(START + j * 20 * MS, 2.0))
    bag.add(START + 1, "image", "sensor_msgs/msg/Image", raw_image(image, START))
    return bag.write(path)


def test_compare_refuses_outputs_of_different_drives_that_share_stamps(capsys, tmp_path, planner):
    """Two different bags with the same stamps were compared frame by frame, exit 0."""
    from conftest import DATA, read_rgb
    from lead_ros.bag.evaluate import EvaluationOptions, evaluate_bag
    from lead_ros.bag.reader import default_topics
    from lead_ros.node_config import NodeConfig

    options = EvaluationOptions(
        config=NodeConfig.from_values({"camera_mode": "stitched"}),
        topics=default_topics(),
        pictures=False,
        progress=False,
    )
    drives = [_stitched_drive(tmp_path / f"drive_{i}", read_rgb(DATA / "images" / f"case_0{i}.png")) for i in (1, 2)]
    outs = []
    for i, drive in enumerate([*drives, drives[0]]):
        outs.append(tmp_path / f"out_{i}")
        outs[-1].mkdir()
        assert evaluate_bag(drive, outs[-1], planner, options)["planned"] == 1
    summary = json.loads((outs[0] / "summary.json").read_text())
    assert summary["input"]["bag"] == str(drives[0].resolve())
    assert set(summary["input"]["messages_sha256"]) == {"/lead_planner/input/image", "/lead_planner/input/odometry"}
    capsys.readouterr()
    assert main(["compare-evaluations", str(outs[0]), str(outs[1])]) == 2
    err = capsys.readouterr().err
    assert "come from different drives" in err and "different messages on /lead_planner/input/image" in err
    assert main(["compare-evaluations", str(outs[0]), str(outs[1]), "--allow-different-inputs"]) == 0
    assert "come from different drives" in capsys.readouterr().err
    assert main(["compare-evaluations", str(outs[0]), str(outs[2]), "--max-diff-m", "0"]) == 0, "the same drive twice"
