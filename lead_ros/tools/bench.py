"""``lead-ros bench``: latency percentiles, throughput and peak memory of the core.

Preprocessing (four 1080x1920 cameras, JPEG round trip on) and inference are timed
separately; inference at each requested image height. On CUDA, inference is timed with
CUDA events. This is a benchmark that prints figures, never a timed test.
"""

from __future__ import annotations

import resource
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from lead_ros.observation import Command, Observation
from lead_ros.planner import Planner
from lead_ros.preprocessing import MODEL_IMAGE_WIDTH
from lead_ros.tools.synthetic_cameras import reference_cameras


@dataclass(frozen=True)
class LatencyStats:
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    runs: int

    @classmethod
    def of(cls, samples_ms: list[float]) -> LatencyStats:
        p50, p90, p99 = np.percentile(samples_ms, [50, 90, 99])
        return cls(float(p50), float(p90), float(p99), float(np.mean(samples_ms)), len(samples_ms))


@dataclass(frozen=True)
class BenchReport:
    device: str
    precision: str
    runtime: str
    torch_threads: int
    preprocess_4cam: LatencyStats
    inference_by_height: dict[int, LatencyStats]
    inference_cpu_s_by_height: dict[int, float]  # process CPU seconds per inference (all threads)
    end_to_end_fps: float
    reference_forward_by_height: dict[int, LatencyStats]
    peak_rss_mib: float
    cuda_max_allocated_mib: float | None
    untrained: bool
    perception_by_height: dict[int, LatencyStats]  # inference with the perception heads and decoding

    def to_dict(self) -> dict:
        data = asdict(self)
        data["inference_by_height"] = {str(h): asdict(s) for h, s in self.inference_by_height.items()}
        data["inference_cpu_s_by_height"] = {str(h): s for h, s in self.inference_cpu_s_by_height.items()}
        data["reference_forward_by_height"] = {str(h): asdict(s) for h, s in self.reference_forward_by_height.items()}
        data["perception_by_height"] = {str(h): asdict(s) for h, s in self.perception_by_height.items()}
        return data


def _time_inference_ms(planner: Planner, image: np.ndarray, perception: bool = False) -> float:
    """One inference (with the perception heads and box decoding when asked), milliseconds."""
    if planner.device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        planner.infer_with_perception(image, 5.0, 0.5, Command.STRAIGHT, perception)
        end.record()
        end.synchronize()
        return start.elapsed_time(end)
    t0 = time.perf_counter()
    planner.infer_with_perception(image, 5.0, 0.5, Command.STRAIGHT, perception)
    return 1e3 * (time.perf_counter() - t0)


def _time_reference_forward_ms(model, rgb: torch.Tensor, inputs: tuple) -> float:
    """The unoptimised model's full forward, auxiliary heads included: the computation the
    reference latency figures time, measured on this machine for an apples-to-apples ratio."""
    model.backbone.clear_cache()  # the reference computes the LTF stem every time
    t0 = time.perf_counter()
    with torch.inference_mode():
        bev = model.backbone(rgb)
        model.planning_decoder.heads(model.planning_decoder.decode(bev, *inputs))
        model.auxiliary(bev)
    return 1e3 * (time.perf_counter() - t0)


def run_bench(
    planner: Planner,
    iters: int = 20,
    heights: tuple[int, ...] = (256, 270),
    warmup: int = 2,
    reference_model=None,
    perception: bool = False,
) -> BenchReport:
    """``perception`` also times inference with the perception heads, interleaved with plain
    runs of the same image so that both see the same machine state."""
    cameras = reference_cameras()
    observation = Observation(5.0, 0.5, Command.STRAIGHT, cameras=cameras)
    preprocess = []
    for i in range(warmup + iters):
        t0 = time.perf_counter()
        planner.preprocess(observation)
        if i >= warmup:
            preprocess.append(1e3 * (time.perf_counter() - t0))
    by_height, cpu_by_height, perception_by_height = {}, {}, {}
    rng = np.random.default_rng(0)
    for height in heights:
        image = rng.integers(0, 256, (height, MODEL_IMAGE_WIDTH, 3), dtype=np.uint8)
        samples = [_time_inference_ms(planner, image) for _ in range(warmup)]
        cpu_start = time.process_time()
        samples += [_time_inference_ms(planner, image) for _ in range(iters)]
        cpu_by_height[height] = round((time.process_time() - cpu_start) / max(1, iters), 3)
        by_height[height] = LatencyStats.of(samples[warmup:])
        if perception:
            timed = [_time_inference_ms(planner, image, True) for _ in range(warmup + iters)]
            perception_by_height[height] = LatencyStats.of(timed[warmup:])
    reference = {}
    if reference_model is not None:
        inputs = (torch.tensor([[5.0]]), torch.tensor([[0.5]]), torch.tensor([Command.STRAIGHT.one_hot()]))
        for height in heights:
            rgb = torch.from_numpy(rng.integers(0, 256, (1, 3, height, MODEL_IMAGE_WIDTH)).astype(np.float32))
            samples = [_time_reference_forward_ms(reference_model, rgb, inputs) for _ in range(warmup + iters)]
            reference[height] = LatencyStats.of(samples[warmup:])
    t0 = time.perf_counter()
    frames = max(1, iters // 2)
    for _ in range(frames):
        planner.plan(observation)
    fps = frames / (time.perf_counter() - t0)
    cuda = planner.device.type == "cuda"
    return BenchReport(
        device=planner.info.device,
        precision=planner.info.precision,
        runtime=planner.info.runtime,
        torch_threads=torch.get_num_threads(),
        preprocess_4cam=LatencyStats.of(preprocess),
        inference_by_height=by_height,
        inference_cpu_s_by_height=cpu_by_height,
        end_to_end_fps=fps,
        reference_forward_by_height=reference,
        peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        cuda_max_allocated_mib=torch.cuda.max_memory_allocated(planner.device) / 2**20 if cuda else None,
        untrained=planner.info.untrained,
        perception_by_height=perception_by_height,
    )


def format_report(report: BenchReport) -> str:
    def row(name: str, s: LatencyStats) -> str:
        return f"{name:<28} p50 {s.p50_ms:8.2f}  p90 {s.p90_ms:8.2f}  p99 {s.p99_ms:8.2f} ms  ({s.runs} runs)"

    lines = [
        f"device {report.device}, precision {report.precision}, runtime {report.runtime}, "
        f"torch threads {report.torch_threads}" + (", UNTRAINED synthetic weights" if report.untrained else ""),
        row("preprocess 4x1080x1920", report.preprocess_4cam),
    ]
    lines += [
        row(f"inference {h}x1920", s) + f"  CPU {report.inference_cpu_s_by_height[h]:.2f} s/run"
        for h, s in report.inference_by_height.items()
    ]
    for h, s in report.perception_by_height.items():
        ratio = s.p50_ms / report.inference_by_height[h].p50_ms
        lines.append(row(f"with perception {h}", s) + f"  (x{ratio:.3f} of inference)")
    for h, s in report.reference_forward_by_height.items():
        ratio = report.inference_by_height[h].p50_ms / s.p50_ms
        lines.append(row(f"unoptimised full fwd {h}", s) + f"  (inference/this = {ratio:.2f})")
    lines.append(f"end-to-end throughput        {report.end_to_end_fps:.2f} frames/s (4 cameras -> plan)")
    lines.append(f"peak RSS                     {report.peak_rss_mib:.0f} MiB")
    if report.cuda_max_allocated_mib is not None:
        lines.append(f"CUDA max allocated           {report.cuda_max_allocated_mib:.0f} MiB")
    return "\n".join(lines)
