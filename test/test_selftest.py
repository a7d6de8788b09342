"""``lead-ros selftest``: passes on this install (CPU fp32 and bf16), fails naming the case
when the weights or the frame convention are broken, and keeps a fixed JSON contract."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import lead_ros.tools.selftest as selftest
from lead_ros.golden import PLANNING_CASE_SETS, load_cases
from lead_ros.tools.cli import main

ALL_CASES = [f"{variant}/{case['id']}" for variant, cases in PLANNING_CASE_SETS for case in load_cases(cases)]
JSON_KEYS = {
    "verdict",
    "device",
    "precision",
    "runtime",
    "software",
    "tolerance",
    "cases",
    "perception_cases",
    "timing",
}
PERCEPTION_KEYS = {"case", "max_logit_diff", "max_box_diff", "discrete_mismatches", "passed"}
CASE_KEYS = {"case", "max_waypoint_diff_m", "max_heading_diff_rad", "passed"}


@pytest.fixture
def main_cases_only(monkeypatch):
    """The failure checks need the main case set only (the suite's time budget)."""
    monkeypatch.setattr(selftest, "PLANNING_CASE_SETS", PLANNING_CASE_SETS[:1])


def test_cpu_fp32_passes_with_a_fixed_json_contract(capsys, monkeypatch):
    # Eager: the default runtime's golden parity is test_model_parity's (one ONNX export per
    # weights and height costs half a minute; the selftest covers 3 weights x 2 heights).
    argv = ["selftest", "--device", "cpu", "--precision", "fp32", "--runtime", "eager", "--json", "--timing-iters", "1"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == JSON_KEYS and report["verdict"] == "PASS"
    assert (report["device"], report["precision"], report["runtime"]) == ("cpu", "fp32", "eager")
    assert report["tolerance"] == {"waypoint_m": 1e-4, "heading_rad": 1e-4, "provisional": False}
    assert [case["case"] for case in report["cases"]] == ALL_CASES
    assert all(set(case) == CASE_KEYS and case["passed"] for case in report["cases"])
    # Perception of the 8 NAVSIM cases, from the same forward: tensors and boxes within 1e-4,
    # no discrete result off outside the reference's near ties.
    perception = report["perception_cases"]
    assert [p["case"] for p in perception] == [c for c in ALL_CASES if c.startswith("navsim/")]
    assert all(set(p) == PERCEPTION_KEYS and p["passed"] and p["discrete_mismatches"] == 0 for p in perception)
    assert all(p["max_logit_diff"] <= 1e-4 and p["max_box_diff"] <= 1e-4 for p in perception)
    assert set(report["timing"]["inference_by_height"]) == {"256", "270"}
    assert report["timing"]["preprocess_4cam"]["p50_ms"] > 0
    assert {"torch", "timm", "opencv", "numpy", "python", "cuda"} <= set(report["software"])
    # Case results are deterministic: a second run (of the main case set) gives the same numbers.
    monkeypatch.setattr(selftest, "PLANNING_CASE_SETS", PLANNING_CASE_SETS[:1])
    again = selftest.run_selftest("cpu", "fp32", "eager", timing_iters=0).to_dict()
    main_cases = len(load_cases(PLANNING_CASE_SETS[0][1]))
    assert again["cases"] == report["cases"][:main_cases] and again["timing"]["preprocess_4cam"] is None
    assert again["perception_cases"] == report["perception_cases"]


def test_cpu_bf16_passes_within_its_measured_tolerance():
    report = selftest.run_selftest("cpu", "bf16", timing_iters=0)
    assert report.passed, selftest.format_report(report)
    assert not report.tolerance.provisional and report.tolerance.waypoint_m == 0.15
    # bf16 does deviate (it is not silently running fp32), within the tolerance.
    assert max(case.max_waypoint_diff_m for case in report.cases) > 1e-3
    # Perception: the float32 heads see bf16 features; discrete results are not compared.
    assert report.perception_cases and all(p.discrete_mismatches is None for p in report.perception_cases)
    assert max(p.max_logit_diff for p in report.perception_cases) > 1e-4


def _perturbed_writer(write):
    """A corrupted copy of the weights: every waypoint step drifts 0.5 m left, every heading
    step 0.5 rad (4 m and 4 rad at 4 s)."""

    def corrupt(directory, variant="navsim"):
        write(directory, variant)
        path = directory / "model_0000.pth"
        state = torch.load(path, weights_only=True)
        state["planning_decoder.wp_decoder.bias"] += torch.tensor([0.0, 0.5])
        state["planning_decoder.heading_decoder.bias"] += 0.5
        torch.save(state, path)

    return corrupt


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_perturbed_weights_fail_and_name_every_case(monkeypatch, main_cases_only, capsys, precision):
    monkeypatch.setattr(selftest, "write_synthetic_checkpoint", _perturbed_writer(selftest.write_synthetic_checkpoint))
    reports, run = [], selftest.run_selftest

    def kept(*args, **kwargs):  # the report the command printed, kept: one self-test run, not two
        reports.append(run(*args, **kwargs))
        return reports[-1]

    monkeypatch.setattr(selftest, "run_selftest", kept)
    # Eager for both precisions: the corrupted weights would cost the default runtime two ONNX
    # exports (their sha256 is new); the default runtime's failing verdict is the frame test's.
    argv = ["selftest", "--device", "cpu", "--precision", precision, "--runtime", "eager", "--timing-iters", "0"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "FAIL: 8 of 8 cases outside tolerance: navsim/case_00" in out
    (report,) = reports
    tolerance = report.tolerance
    for case in report.cases:  # the perturbation moves every case by at least 10x the tolerance
        assert case.max_waypoint_diff_m >= 10 * tolerance.waypoint_m, case
        assert case.max_heading_diff_rad >= 10 * tolerance.heading_rad, case


def test_broken_frame_convention_fails(monkeypatch, main_cases_only, capsys):
    import lead_ros.planner

    monkeypatch.setattr(lead_ros.planner, "carla_to_iso8855", lambda w, h: (np.array(w), np.array(h)))
    assert main(["selftest", "--device", "cpu", "--timing-iters", "0", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "FAIL"
    failed = [case for case in report["cases"] if not case["passed"]]
    assert failed and max(case["max_waypoint_diff_m"] for case in failed) >= 10 * 1e-4
    assert max(case["max_heading_diff_rad"] for case in failed) >= 10 * 1e-4


def test_precision_without_a_tolerance_is_a_usage_error(capsys):
    assert main(["selftest", "--device", "cpu", "--precision", "fp16"]) == 2
    assert "fp16 is not supported on CPU" in capsys.readouterr().err
