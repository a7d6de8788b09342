"""``lead-ros selftest``: does this install compute the function the tests checked?

A robot's torch/CUDA/driver/OpenCV stack can differ from CI's. The self-test writes the
synthetic weights of every shipped golden case set, runs each case through the public
``Planner`` on the requested device and precision, and compares the ISO 8855 plan with LEAD's
reference (float64) outputs; then it times preprocessing and inference with ``lead-ros
bench``'s measurement (CUDA events on a GPU). The verdict is PASS only when every case is
within the tolerance of that device type and precision.

Perception (BEV semantics and CenterNet boxes) is checked on the same NAVSIM cases, from the
same forward: logits against LEAD's (pre-upsample and a 256x256 subgrid), boxes paired by
grid cell (metres and score; radians in fp32), and in fp32 the discrete results too (the
argmax map and the box set above 0.3, except at the near-tie spots the reference lists).

Tolerances: fp32 is held to the test suite's 1e-4 (m and rad). bf16 on CPU was measured on
the golden cases (max 0.075 m and 0.131 rad, untrained synthetic weights), and its tolerance
keeps about 2x margin. GPU tolerances are provisional until measured on a GPU: fp32 allows
for cuDNN's TF32 convolutions (on by default in torch), fp16 and bf16 borrow CPU bf16's.
"""

from __future__ import annotations

import functools
import json
import platform
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime
import timm
import torch

from lead_ros.golden import GOLDEN_DIR, PLANNING_CASE_SETS, load_cases
from lead_ros.observation import Observation
from lead_ros.planner import Planner, check_precision, resolve_device
from lead_ros.tools.bench import LatencyStats, run_bench
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


# Perception tolerance (logits; box metres and score, and radians in fp32) per precision: fp32
# is the reference's own; bf16/fp16 feed the float32 heads bf16 features (measured on CPU bf16:
# logits 0.018, boxes 0.013; about 3x margin; fp16 borrows it). Discrete results (argmax, box
# sets, yaw bins) are compared in fp32 only.
PERCEPTION_TOLERANCES = {"fp32": 1e-4, "bf16": 0.05, "fp16": 0.05}
AUX_DIR = GOLDEN_DIR / "aux"


@dataclass(frozen=True)
class PerceptionResult:
    case: str
    max_logit_diff: float  # pre-upsample and 256x256-subgrid BEV logits
    max_box_diff: float  # boxes paired by grid cell: x, y, w, h (m), score, and in fp32 yaw (rad)
    discrete_mismatches: int | None  # argmax pixels and box cells off outside the near ties; None: not compared
    passed: bool


@functools.cache
def _aux_cases() -> dict[str, dict]:
    """The golden aux cases by id (read once)."""
    return {c["id"]: c for c in json.loads((AUX_DIR / "aux_cases.json").read_text())["cases"]}


def perception_result(case_id: str, perception, precision: str) -> PerceptionResult | None:
    """Compare a case's perception with LEAD's golden aux data (None when there is none)."""
    aux = _aux_cases().get(case_id)
    if aux is None:
        return None
    source = aux["aux_outputs_identical_to"] or aux["id"]
    semantic = np.load(AUX_DIR / f"{source}_bev_semantic.npz")
    boxes = json.loads((AUX_DIR / f"{source}_boxes.json").read_text())
    rows, cols = semantic["subgrid_rows"], semantic["subgrid_cols"]
    logit = max(
        float(np.abs(perception.bev_logits_pre_upsample_lead - semantic["logits_pre_upsample"][0]).max()),
        float(np.abs(perception.bev_logits_lead[:, rows][:, :, cols] - semantic["logits_subgrid"][0]).max()),
    )
    cells = {b["rank"]: (b["grid_row"], b["grid_col"]) for b in boxes["image_system_topk"]}
    lead = {cells[b["rank"]]: b for b in boxes["vehicle_system"]}
    ours = {
        tuple(c): row
        for c, row in zip(perception.decoded.cells.tolist(), perception.decoded.vehicle_system, strict=True)
    }
    # The yaw depends on a discrete decision (the yaw bin, wrapped above pi only): compared in fp32 only.
    keys = ("x", "y", "w", "h", "score") + (("yaw",) if precision == "fp32" else ())
    columns = [0, 1, 2, 3, 8] + ([4] if precision == "fp32" else [])
    paired = [np.abs(ours[c][columns] - [lead[c][k] for k in keys]).max() for c in set(ours) & set(lead)]
    box = float(max(paired, default=0.0))
    tolerance = PERCEPTION_TOLERANCES[precision]
    mismatches = None
    if precision == "fp32":
        margins = _aux_cases()[source]
        ties = {tuple(p) for p in margins["bev_semantic"]["argmax_near_tie_pixels_row_col_gap_lt_1e-4"]}
        fragile = {
            (r, c)
            for r, c, *_ in margins["centernet"]["decision_margins"][
                "fragile_cells_row_col_margin_islocalmax_abs_margin_lt_1e-5"
            ]
        }
        flipped = {tuple(p) for p in np.argwhere(perception.bev_labels[::-1, :] != semantic["argmax"]).tolist()}
        above = {(b.grid_row, b.grid_col) for b in perception.boxes_above(0.3)}
        mismatches = len(flipped - ties) + len((above ^ set(lead)) - fragile)
    passed = logit <= tolerance and box <= tolerance and not mismatches
    return PerceptionResult(f"navsim/{case_id}", logit, box, mismatches, passed)


@dataclass(frozen=True)
class SelftestReport:
    device: str
    precision: str
    runtime: str
    software: dict[str, str]
    tolerance: Tolerance
    cases: list[CaseResult]
    preprocess_4cam: LatencyStats | None
    inference_by_height: dict[int, LatencyStats]
    perception_cases: list[PerceptionResult]

    @property
    def passed(self) -> bool:
        return all(case.passed for case in self.cases) and all(p.passed for p in self.perception_cases)

    def to_dict(self) -> dict:
        """The ``--json`` document; its keys are fixed (scripts rely on them)."""
        return {
            "verdict": "PASS" if self.passed else "FAIL",
            "device": self.device,
            "precision": self.precision,
            "runtime": self.runtime,
            "software": self.software,
            "tolerance": asdict(self.tolerance),
            "cases": [asdict(case) for case in self.cases],
            "perception_cases": [asdict(case) for case in self.perception_cases],
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
        "onnxruntime": onnxruntime.__version__,
    }
    if device.type == "cuda":
        versions["gpu"] = torch.cuda.get_device_name(device)
    return versions


def tolerance_for(device: torch.device, precision: str) -> Tolerance:
    return TOLERANCES[(device.type, precision)]


def _case_result(
    planner: Planner, variant: str, case: dict, tolerance: Tolerance
) -> tuple[CaseResult, PerceptionResult | None]:
    """The planning case, and its perception for the NAVSIM variant (one forward for both)."""
    rgb = cv2.cvtColor(cv2.imread(str(case["image_path"]), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    observation = Observation(case["speed_mps"], case["acceleration_mps2"], case["command_index"], image=rgb)
    plan = planner.plan(observation, perception=variant == "navsim")
    reference = case["outputs_float64"]
    waypoint = float(np.abs(plan.waypoints - np.asarray(reference["waypoints_iso8855"])).max())
    heading = float(np.abs(plan.headings - np.asarray(reference["headings_iso8855"])).max())
    passed = waypoint <= tolerance.waypoint_m and heading <= tolerance.heading_rad
    perceived = perception_result(case["id"], plan.perception, planner.info.precision) if plan.perception else None
    return CaseResult(f"{variant}/{case['id']}", waypoint, heading, passed), perceived


def run_selftest(
    device: str = "auto", precision: str = "fp32", runtime: str = "auto", timing_iters: int = 10
) -> SelftestReport:
    """Every golden planning case on ``device``/``precision`` with ``runtime``; ``timing_iters``
    0 skips timing."""
    resolved = resolve_device(device)
    check_precision(precision, resolved)  # fp16 on CPU: the planner's own message
    if (resolved.type, precision) not in TOLERANCES:
        raise ValueError(f"no self-test tolerance for precision {precision!r} on {resolved.type}")
    tolerance = tolerance_for(resolved, precision)
    cases: list[CaseResult] = []
    perception: list[PerceptionResult] = []
    preprocess, inference, used = None, {}, runtime
    with tempfile.TemporaryDirectory(prefix="lead_ros_selftest_") as scratch:
        for variant, cases_file in PLANNING_CASE_SETS:
            weights = Path(scratch) / variant
            write_synthetic_checkpoint(weights, variant)
            planner = Planner(str(weights), str(resolved), precision, runtime=runtime)
            used = planner.info.runtime
            for case in load_cases(cases_file):
                result, perceived = _case_result(planner, variant, case, tolerance)
                cases.append(result)
                perception += [perceived] if perceived is not None else []
            if variant == "navsim" and timing_iters > 0:
                bench = run_bench(planner, iters=timing_iters, heights=TIMING_HEIGHTS, warmup=1)
                preprocess, inference = bench.preprocess_4cam, bench.inference_by_height
            planner.close()
    return SelftestReport(
        str(resolved),
        precision,
        used,
        software_versions(resolved),
        tolerance,
        cases,
        preprocess,
        inference,
        perception,
    )


def format_report(report: SelftestReport) -> str:
    tolerance = report.tolerance
    lines = [
        f"lead-ros selftest: device {report.device}, precision {report.precision}, runtime {report.runtime}; "
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
    if report.perception_cases:
        lines.append(
            f"perception: {'case':<14} {'max |dlogit|':>13} {'max |dbox|':>11} {'discrete':>9}  result "
            f"(tolerance {PERCEPTION_TOLERANCES[report.precision]:g})"
        )
        for p in report.perception_cases:
            discrete = "n/a" if p.discrete_mismatches is None else str(p.discrete_mismatches)
            lines.append(
                f"            {p.case:<14} {p.max_logit_diff:>13.2e} {p.max_box_diff:>11.2e} {discrete:>9}  "
                + ("PASS" if p.passed else "FAIL")
            )
    if report.preprocess_4cam is not None:
        clock = "CUDA events" if report.device.startswith("cuda") else "wall clock"
        lines.append(f"timing ({clock}):")
        timed = [("preprocess 4x1080x1920", report.preprocess_4cam)]
        timed += [(f"inference {h}x1920", s) for h, s in report.inference_by_height.items()]
        lines += [f"  {name:<24} p50 {s.p50_ms:8.2f}  p90 {s.p90_ms:8.2f} ms  ({s.runs} runs)" for name, s in timed]
    failed = [case.case for case in report.cases if not case.passed]
    failed += [f"perception {p.case}" for p in report.perception_cases if not p.passed]
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
