"""RSS of a planner fed one new input height after another (issue H4: 30 new heights grew an
ONNX Runtime planner by 353 MiB when each export ran in its own process; target: < 150 MiB).

Each new height's graph is exported in a spawned child (lead_ros.model.onnx_runtime); at most
two heights keep sessions. The heights are 271, 272, ... (sessions of about one size, so the
figure is growth, not bigger sessions); the baseline is the RSS once two heights hold
sessions (after the second new height). Prints JSON lines on stdout.

    python benchmarks/new_heights_memory.py --weights W [--heights 30] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import psutil

from lead_ros.planner import Planner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True)
    parser.add_argument("--heights", type=int, default=30)
    parser.add_argument("--cache-dir", default=None, help="graph cache (default: a new temporary one)")
    args = parser.parse_args()
    cache = args.cache_dir or tempfile.mkdtemp(prefix="lead_ros_heights_")
    process = psutil.Process()
    with Planner(args.weights, "cpu", "fp32", runtime="onnxruntime", runtime_cache_dir=cache) as planner:
        image = np.random.default_rng(0).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
        planner.infer(image[:270], 4.0, 0.5, 1)
        print(json.dumps({"height": 270, "rss_mib": round(process.memory_info().rss / 2**20, 1)}), flush=True)
        started = time.perf_counter()
        start_mib = 0.0
        for k in range(args.heights):
            height = 271 + k
            planner.infer(image[:height], 4.0, 0.5, 1)
            rss = process.memory_info().rss / 2**20
            if k == 1:
                start_mib = rss  # two heights hold sessions from here on
            if k == 1 or (k + 1) % 5 == 0 or k + 1 == args.heights:
                print(json.dumps({"heights": k + 1, "height": height, "rss_mib": round(rss, 1)}), flush=True)
        end_mib = process.memory_info().rss / 2**20
    print(
        json.dumps(
            {
                "new_heights": args.heights,
                "growth_after_second_mib": round(end_mib - start_mib, 1),
                "seconds": round(time.perf_counter() - started, 1),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
