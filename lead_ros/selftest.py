"""``lead-ros selftest``: does this install compute the function the tests checked?

A robot's torch/CUDA/driver/OpenCV stack can differ from CI's. The self-test writes the
synthetic weights of every shipped golden case set, runs each case through the public
``Planner`` on the requested device and precision, and compares the ISO 8855 plan with LEAD's
reference (float64) outputs; then it times preprocessing and inference with ``lead-ros
bench``'s measurement (CUDA events on a GPU). The verdict is PASS only when every case is
within the tolerance of that device type and precision.

Tolerances: fp32 is held to the test suite's 1e-4 (m and rad). bf16 on CPU was measured on
the golden cases (max 0.075 m and 0.131 rad, untrained synthetic weights), and its tolerance
keeps about 2x margin. GPU tolerances are provisional until measured on a GPU: fp32 allows
for cuDNN's TF32 convolutions (on by default in torch), fp16 and bf16 borrow CPU bf16's.
"""

from __future__ import annotations

import platform
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import timm
import torch

from lead_ros.bench import LatencyStats, run_bench
from lead_ros.golden import PLANNING_CASE_SETS, load_cases
from lead_ros.observation import Observation
from lead_ros.planner import Planner, check_precision, resolve_device
from lead_ros.weights.synthetic import write_synthetic_checkpoint

TIMING_HEIGHTS = (256, 270)


@dataclass(frozen=True)
class Tolerance:
    waypoint_m: float
    heading_rad: float
    provisional: bool  # not yet measured on this device type


TOLERANCES = {
    ("cpu", "fp32"): Tolerance(1e-4, 1e-4, provisional=False),
    ("cpu", "bf16"): Tolerance(0.15, 0.25, provisional=False),
    ("cuda", "fp32"): Tolerance(1e-3, 1e-3, provisional=True),
    ("cuda", "bf16"): Tolerance(0.15, 0.25, provisional=True),
    ("cuda", "fp16"): Tolerance(0.15, 0.25, provisional=True),
}


@dataclass(frozen=True)
class CaseResult:
    case: str  # <variant>/<case id>
    max_waypoint_diff_m: float
    max_heading_diff_rad: float
    passed: bool


@dataclass(frozen=True)
class SelftestReport:
    device: str
    precision: str
    software: dict[str, str]
    tolerance: Tolerance
    cases: list[CaseResult]
    preprocess_4cam: LatencyStats | None
    inference_by_height: dict[int, LatencyStats]

    @property
    def passed(self) -> bool:
        return all(case.passed for case in self.cases)

    def to_dict(self) -> dict:
        """The ``--json`` document; its keys are fixed (scripts rely on them)."""
        return {
            "verdict": "PASS" if self.passed else "FAIL",
            "device": self.device,
            "precision": self.precision,
            "software": self.software,
            "tolerance": asdict(self.tolerance),
            "cases": [asdict(case) for case in self.cases],
            "timing": {
                "preprocess_4cam": asdict(self.preprocess_4cam) if self.preprocess_4cam else None,
                "inference_by_height": {str(h): asdict(s) for h, s in self.inference_by_height.items()},
            },
        }


def software_versions(device: torch.device) -> dict[str, str]:
    versions = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "cuda": torch.version.cuda or "none",
    }
    if device.type == "cuda":
        versions["gpu"] = torch.cuda.get_device_name(device)
    return versions


def tolerance_for(device: torch.device, precision: str) -> Tolerance:
    return TOLERANCES[(device.type, precision)]


def _case_result(planner: Planner, variant: str, case: dict, tolerance: Tolerance) -> CaseResult:
    rgb = cv2.cvtColor(cv2.imread(str(case["image_path"]), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    plan = planner.plan(Observation(case["speed_mps"], case["acceleration_mps2"], case["command_index"], image=rgb))
    reference = case["outputs_float64"]
    waypoint = float(np.abs(plan.waypoints - np.asarray(reference["waypoints_iso8855"])).max())
    heading = float(np.abs(plan.headings - np.asarray(reference["headings_iso8855"])).max())
    passed = waypoint <= tolerance.waypoint_m and heading <= tolerance.heading_rad
    return CaseResult(f"{variant}/{case['id']}", waypoint, heading, passed)


def run_selftest(device: str = "auto", precision: str = "fp32", timing_iters: int = 10) -> SelftestReport:
    """Every golden planning case on ``device``/``precision``; ``timing_iters`` 0 skips timing."""
    resolved = resolve_device(device)
    check_precision(precision, resolved)  # fp16 on CPU: the planner's own message
    if (resolved.type, precision) not in TOLERANCES:
        raise ValueError(f"no self-test tolerance for precision {precision!r} on {resolved.type}")
    tolerance = tolerance_for(resolved, precision)
    cases: list[CaseResult] = []
    preprocess, inference = None, {}
    with tempfile.TemporaryDirectory(prefix="lead_ros_selftest_") as scratch:
        for variant, cases_file in PLANNING_CASE_SETS:
            weights = Path(scratch) / variant
            write_synthetic_checkpoint(weights, variant)
            planner = Planner(str(weights), str(resolved), precision)
            cases += [_case_result(planner, variant, case, tolerance) for case in load_cases(cases_file)]
            if variant == "navsim" and timing_iters > 0:
                bench = run_bench(planner, iters=timing_iters, heights=TIMING_HEIGHTS, warmup=1)
                preprocess, inference = bench.preprocess_4cam, bench.inference_by_height
            del planner
    return SelftestReport(
        str(resolved), precision, software_versions(resolved), tolerance, cases, preprocess, inference
    )


def format_report(report: SelftestReport) -> str:
    tolerance = report.tolerance
    lines = [
        f"lead-ros selftest: device {report.device}, precision {report.precision}; "
        + ", ".join(f"{k} {v}" for k, v in report.software.items()),
        f"tolerance {tolerance.waypoint_m:g} m / {tolerance.heading_rad:g} rad"
        + (" (provisional: not yet measured on this device type)" if tolerance.provisional else ""),
        f"{'case':<20} {'max |dwaypoint| m':>18} {'max |dheading| rad':>19}  result",
    ]
    for case in report.cases:
        lines.append(
            f"{case.case:<20} {case.max_waypoint_diff_m:>18.2e} {case.max_heading_diff_rad:>19.2e}  "
            + ("PASS" if case.passed else "FAIL")
        )
    if report.preprocess_4cam is not None:
        clock = "CUDA events" if report.device.startswith("cuda") else "wall clock"
        lines.append(f"timing ({clock}):")
        timed = [("preprocess 4x1080x1920", report.preprocess_4cam)]
        timed += [(f"inference {h}x1920", s) for h, s in report.inference_by_height.items()]
        lines += [f"  {name:<24} p50 {s.p50_ms:8.2f}  p90 {s.p90_ms:8.2f} ms  ({s.runs} runs)" for name, s in timed]
    failed = [case.case for case in report.cases if not case.passed]
    if not failed:
        lines.append(f"PASS: all {len(report.cases)} golden cases within tolerance")
    else:
        hint = (
            " The tolerance is provisional for this device type: if the differences are small and"
            " stable, the tolerance may be too tight; please report the figures."
            if tolerance.provisional
            else " This install does not compute the tested function: check the torch/timm/OpenCV"
            " versions against requirements/runtime.txt."
        )
        lines.append(f"FAIL: {len(failed)} of {len(report.cases)} cases outside tolerance: {', '.join(failed)}.{hint}")
    return "\n".join(lines)
