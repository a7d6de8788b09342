"""``lead-ros``: command-line entry to the core (predict, bench, weights synth).

Results go to stdout (JSON where asked), logs to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import cv2
import numpy as np

from lead_ros.observation import Command
from lead_ros.preprocessing import CAMERA_NAMES
from lead_ros.weights.manifest import VARIANTS

log = logging.getLogger("lead_ros")


def _read_rgb(path: str) -> np.ndarray:
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"image {path!r} could not be read as an image file")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _add_planner_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", required=True, help="local file/directory or hf://OWNER/REPO[@REV]")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"])
    parser.add_argument("--ensemble-size", type=int, default=None, help="number of model*.pth to average")
    parser.add_argument("--cache-dir", default=None, help="Hugging Face cache directory")


def _planner(args: argparse.Namespace, jpeg: bool = True):
    from lead_ros.planner import Planner

    return Planner(
        args.weights,
        args.device,
        args.precision,
        jpeg_roundtrip=jpeg,
        ensemble_size=args.ensemble_size,
        cache_dir=args.cache_dir,
    )


def cmd_predict(args: argparse.Namespace) -> int:
    from lead_ros.observation import Observation

    command = Command.parse(args.command)
    if args.image:
        observation = Observation(args.speed, args.accel, command, image=_read_rgb(args.image))
    else:
        cameras = tuple(_read_rgb(p) for p in args.cameras)
        observation = Observation(args.speed, args.accel, command, cameras=cameras)
    planner = _planner(args, jpeg=not args.no_jpeg)
    plan = planner.plan(observation)
    result = {
        "waypoints_iso8855": plan.waypoints.tolist(),
        "headings_iso8855": plan.headings.tolist(),
        "waypoints_carla": plan.waypoints_carla.tolist(),
        "headings_carla": plan.headings_carla.tolist(),
        "times_s": list(plan.times_s),
        "timings_ms": {
            "preprocess": plan.timings.preprocess_ms,
            "inference": plan.timings.inference_ms,
            "postprocess": plan.timings.postprocess_ms,
        },
        "command": command.name.lower(),
        "model_input_shape": list(plan.model_image.shape),
        "weights": planner.info.weights,
        "weights_sha256": list(planner.info.weights_sha256),
        "device": planner.info.device,
        "precision": planner.info.precision,
        "untrained": planner.info.untrained,
    }
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from lead_ros.bench import format_report, run_bench

    report = run_bench(_planner(args), iters=args.iters, heights=tuple(args.heights))
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_report(report))
    return 0


def cmd_weights_synth(args: argparse.Namespace) -> int:
    from lead_ros.weights.synthetic import write_synthetic_checkpoint

    path = write_synthetic_checkpoint(Path(args.out), args.variant)
    json.dump(
        {"checkpoint": str(path.parent), "weights": str(path), "variant": args.variant, "untrained": True},
        sys.stdout,
    )
    sys.stdout.write("\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lead-ros", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = parser.add_subparsers(dest="command_name", required=True)

    predict = sub.add_parser("predict", help="plan once from an image or four cameras; JSON on stdout")
    _add_planner_args(predict)
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--image", help="stitched H x 1920 RGB model input (PNG/JPEG), used as is")
    source.add_argument(
        "--cameras",
        nargs=4,
        metavar=tuple(n.upper() for n in CAMERA_NAMES),
        help="four camera images l0 f0 r0 b0 (full NAVSIM preprocessing)",
    )
    predict.add_argument("--speed", type=float, required=True, help="ego speed, m/s (>= 0)")
    predict.add_argument("--accel", type=float, required=True, help="ego acceleration, m/s^2")
    predict.add_argument("--command", required=True, help="left, straight, right or unknown")
    predict.add_argument("--no-jpeg", action="store_true", help="skip the JPEG q30 round trip (cameras only)")
    predict.set_defaults(func=cmd_predict)

    bench = sub.add_parser("bench", help="latency/throughput/memory benchmark of the core")
    _add_planner_args(bench)
    bench.add_argument("--iters", type=int, default=20, help="timed runs per measurement (default 20)")
    bench.add_argument("--heights", type=int, nargs="+", default=[256, 270], help="model input heights")
    bench.add_argument("--json", action="store_true", help="print JSON instead of a table")
    bench.set_defaults(func=cmd_bench)

    weights = sub.add_parser("weights", help="weights utilities").add_subparsers(dest="weights_command", required=True)
    synth = weights.add_parser("synth", help="write synthetic (untrained) weights in LEAD's layout")
    synth.add_argument("--out", required=True, help="output checkpoint directory")
    synth.add_argument("--variant", default="navsim", choices=VARIANTS)
    synth.set_defaults(func=cmd_weights_synth)
    return parser


def _log_to_stderr(verbose: bool) -> None:
    """One stderr handler on the package logger (replaced on every call, so repeated
    in-process calls write to the current stderr)."""
    package = logging.getLogger("lead_ros")
    for handler in [h for h in package.handlers if getattr(h, "lead_ros_cli", False)]:
        package.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[%(levelname)s] %(name)s: %(message)s"))
    handler.lead_ros_cli = True
    package.addHandler(handler)
    package.setLevel(logging.DEBUG if verbose else logging.INFO)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _log_to_stderr(args.verbose)
    try:
        return args.func(args)
    except ValueError as error:  # every input/weights/config error is a ValueError subclass
        log.error("%s", error)
        return 2


if __name__ == "__main__":
    sys.exit(main())
