"""Inference runtimes for LTFv6, side by side on this machine, in one run (docs/benchmarks.md "Inference
runtimes"): eager PyTorch, torch.compile (inductor), torch.export + AOTInductor, ONNX Runtime
(lead_ros' own, as the planner uses it) and the TorchScript trace lead_ros used before.

    python benchmarks/runtimes.py --weights W [--iters 10] [--heights 270 256] [--json out.json]

Each runtime runs in a process of its own (so memory figures are its own) on the same
weights, fp32, batch 1, torch's default thread count:
- start-up: building the runtime and its first call at the first height, with an empty
  cache (cold) and, where the runtime caches an artefact on disk, again in a new process
  with that cache (warm);
- p50/p90 latency and CPU seconds per forward (all threads of the process) per height;
- beside a busy pure-Python thread (the node's callbacks are such threads): that thread's
  progress during the forwards as a fraction of its progress alone (GIL share; 0: the
  forward holds the GIL and the thread stalls; with both cores busy about 0.5-0.7 is the
  most a GIL-free forward leaves it), and the forward's p50 beside it over the quiet p50;
- RSS after the weights are loaded, after the runtime is built and used, and after it is
  released (dropped, garbage-collected and the free heap returned with
  ``lead_ros.planner.return_free_heap``, as ``Planner.close`` does; no process-global reset).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import psutil
import torch

RUNTIMES = ("torchscript", "eager", "compile", "aoti", "onnxruntime")
WIDTH = 1920


def _rss_mib() -> float:
    return psutil.Process().memory_info().rss / 2**20


def _inputs(height: int) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(height)
    rgb = torch.rand(1, 3, height, WIDTH, generator=generator) * 255
    command = torch.zeros(1, 4)
    command[0, 1] = 1.0
    return rgb, torch.full((1, 1), 5.0), torch.full((1, 1), 0.3), command


def _builder(name: str, model, cache: Path):
    """``build(height) -> forward(inputs) -> waypoints`` for one runtime."""
    from lead_ros.model.onnx_export import PlanningOutputs

    wrapper = PlanningOutputs(model).eval()
    if name == "eager":

        def build(height):
            def forward(inputs):
                with torch.inference_mode():
                    return wrapper(inputs[0].contiguous(memory_format=torch.channels_last), *inputs[1:])[0]

            return forward
    elif name == "torchscript":

        def build(height):
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                wrapper(*_inputs(height))
                traced = torch.jit.freeze(torch.jit.trace(wrapper, _inputs(height), check_trace=False))
            return lambda inputs: traced(*inputs)[0]
    elif name == "compile":
        compiled = torch.compile(wrapper)

        def build(height):
            def forward(inputs):
                with torch.inference_mode():
                    return compiled(*inputs)[0]

            return forward
    elif name == "aoti":

        def build(height):
            package = cache / f"aoti_{height}.pt2"
            if not package.exists():
                with torch.no_grad():
                    wrapper(*_inputs(height))
                    program = torch.export.export(wrapper, _inputs(height))
                    torch._inductor.aoti_compile_and_package(program, package_path=str(package))
            loaded = torch._inductor.aoti_load_package(str(package))

            def forward(inputs):
                with torch.inference_mode():
                    return loaded(*inputs)[0]

            return forward
    elif name == "onnxruntime":
        from lead_ros.model.onnx_runtime import OnnxPlanning

        planning = OnnxPlanning([model], ["benchmark"], cache)

        def build(height):
            planning.run(_inputs(height))
            return lambda inputs: planning.run(inputs)[0][0]
    else:
        raise ValueError(name)
    return build


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _time(forward, inputs, iters: int) -> tuple[list[float], float]:
    forward(inputs)
    wall, cpu0 = [], time.process_time()
    for _ in range(iters):
        start = time.perf_counter()
        forward(inputs)
        wall.append(1e3 * (time.perf_counter() - start))
    return wall, (time.process_time() - cpu0) / iters


def _beside_busy_thread(forward, inputs, iters: int) -> tuple[float, float]:
    """(p50 of the forward beside a busy Python thread, that thread's progress rate during
    the forwards over its rate alone)."""
    stop, count = threading.Event(), [0]

    def spin():
        while not stop.is_set():
            count[0] += 1

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        time.sleep(1.0)
        alone = count[0] / 1.0
        forward(inputs)
        count[0], start = 0, time.perf_counter()
        wall, _ = _time(forward, inputs, iters)
        during = count[0] / (time.perf_counter() - start)
    finally:
        stop.set()
        thread.join()
    return statistics.median(wall), during / alone


def measure(name: str, weights: str, heights: list[int], iters: int, cache: Path, startup_only: bool) -> dict:
    """One runtime in this process."""
    from lead_ros.model.inference import optimize_for_inference
    from lead_ros.planner import return_free_heap
    from lead_ros.weights.loader import build_models, load_checkpoint

    model = optimize_for_inference(build_models(load_checkpoint(weights))[0])
    with torch.no_grad():
        model(*_inputs(heights[0]))  # the LTF cache, as the planner fills it at load
    result = {"runtime": name, "rss_loaded_mib": _rss_mib()}
    build = _builder(name, model, cache)
    start = time.perf_counter()
    forwards = {heights[0]: build(heights[0])}
    forwards[heights[0]](_inputs(heights[0]))
    result["startup_s"] = time.perf_counter() - start
    if startup_only:
        return result
    result["heights"] = {}
    for height in heights:
        forward = forwards.get(height) or build(height)
        forwards[height] = forward
        inputs = _inputs(height)
        wall, cpu = _time(forward, inputs, iters)
        result["heights"][height] = {
            "p50_ms": statistics.median(wall),
            "p90_ms": _percentile(wall, 0.9),
            "cpu_s_per_forward": cpu,
        }
    busy, progress = _beside_busy_thread(forwards[heights[0]], _inputs(heights[0]), max(3, iters // 2))
    result["busy_thread_ratio"] = busy / result["heights"][heights[0]]["p50_ms"]
    result["busy_thread_progress"] = progress
    result["rss_used_mib"] = _rss_mib()
    del forwards, forward, build
    gc.collect()
    return_free_heap()
    result["rss_released_mib"] = _rss_mib()
    return result


def _child(name: str, args: argparse.Namespace, cache: Path, startup_only: bool) -> dict:
    command = [
        sys.executable,
        __file__,
        "--child",
        name,
        "--weights",
        args.weights,
        "--iters",
        str(args.iters),
        "--cache",
        str(cache),
        "--heights",
        *map(str, args.heights),
    ]
    if startup_only:
        command.append("--startup-only")
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=str(cache / "inductor"))
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


CACHED = {"compile", "aoti", "onnxruntime"}


def table(results: list[dict], heights: list[int]) -> str:
    head = [
        "runtime",
        *(f"{h} rows p50 / p90 ms" for h in heights),
        f"CPU s/forward ({heights[0]})",
        "start-up cold / cached s",
        "busy Python thread: its progress / forward slowdown",
        "RSS loaded / used / released MB",
        f"vs torchscript ({heights[0]})",
    ]
    base = next((r["heights"][str(heights[0])]["p50_ms"] for r in results if r["runtime"] == "torchscript"), None)
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        per = r["heights"]
        cached = f"{r['startup_cached_s']:.1f}" if "startup_cached_s" in r else "n/a"
        cells = [
            r["runtime"],
            *(f"{per[str(h)]['p50_ms']:.0f} / {per[str(h)]['p90_ms']:.0f}" for h in heights),
            f"{per[str(heights[0])]['cpu_s_per_forward']:.2f}",
            f"{r['startup_s']:.1f} / {cached}",
            f"{r['busy_thread_progress']:.2f} / {r['busy_thread_ratio']:.2f}x",
            f"{r['rss_loaded_mib']:.0f} / {r['rss_used_mib']:.0f} / {r['rss_released_mib']:.0f}",
            f"{per[str(heights[0])]['p50_ms'] / base:.2f}" if base else "n/a",
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--heights", type=int, nargs="+", default=[270, 256])
    parser.add_argument("--runtimes", nargs="+", default=list(RUNTIMES), choices=RUNTIMES)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--startup-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.weights, args.heights, args.iters, args.cache, args.startup_only)))
        return 0
    results = []
    with tempfile.TemporaryDirectory(prefix="lead_ros_runtimes_") as scratch:
        for name in args.runtimes:
            cache = Path(scratch) / name
            cache.mkdir()
            print(f"{name}: measuring ...", file=sys.stderr, flush=True)
            result = _child(name, args, cache, startup_only=False)
            if name in CACHED:
                result["startup_cached_s"] = _child(name, args, cache, startup_only=True)["startup_s"]
            results.append(result)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, fp32, batch 1, "
        f"{args.iters} timed runs per figure"
    )
    print(table(results, args.heights))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
