"""Cost of reprojecting four 1080x1920 cameras into the nuPlan cameras, per frame.

    python benchmarks/reprojection.py [--iters 50] [--rig RIG.yaml]

Times ``stitch_cameras`` (stitching, 4x resize, JPEG step) with and without a camera rig on
the same four 1920x1080 images, and reports the median and 90th percentile of each and of the
difference: the cost the reprojection adds per frame. The default rig is the nuPlan rig seen
without its lens distortion (``virtual_distortion none``), so every camera is remapped (the
nuPlan rig as its own virtual camera is not remapped at all). Also prints the one-off cost of
building the remap tables. The target (issue [K]) is <= 25 ms added on the 2-core
development machine, quiet.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from lead_ros.cameras.reprojection import Reprojection
from lead_ros.cameras.rig import load_rig
from lead_ros.preprocessing import stitch_cameras
from lead_ros.tools.synthetic_cameras import reference_cameras


def _times_ms(function, iters: int) -> np.ndarray:
    function()  # warm-up: allocations, OpenCV's thread pool
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        function()
        times.append(1e3 * (time.perf_counter() - start))
    return np.array(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--rig", default="nuplan", help="camera rig (default: nuplan, seen without its distortion)")
    args = parser.parse_args()
    rig = load_rig(args.rig)
    start = time.perf_counter()
    reprojection = Reprojection(rig, "none" if args.rig == "nuplan" else "nuplan")
    build_s = time.perf_counter() - start
    cameras = reference_cameras()
    plain = _times_ms(lambda: stitch_cameras(cameras), args.iters)
    rig_times = _times_ms(lambda: stitch_cameras(cameras, reprojection=reprojection), args.iters)
    print(reprojection.summary())
    print(f"remap tables built in {build_s:.2f} s")
    for label, values in (("without rig", plain), ("with rig", rig_times)):
        print(f"{label:12s} p50 {np.median(values):6.1f} ms  p90 {np.percentile(values, 90):6.1f} ms")
    print(
        f"added        p50 {np.median(rig_times) - np.median(plain):6.1f} ms  "
        f"p90 {np.percentile(rig_times, 90) - np.percentile(plain, 90):6.1f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
