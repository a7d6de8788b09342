"""``lead-ros``: the command line. Core: predict, bench, selftest, weights synth, rig-check. Bags: evaluate-bag,
compare-evaluations, replay, record-path, make-sample-bag, bench-bag. Node: bench-node.

Results go to stdout (JSON where asked), logs to stderr; bad input exits 2 with one line.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lead_ros.camera_layout import CAMERA_NAMES
from lead_ros.model.runtimes import runtimes_help
from lead_ros.model.torch_import import is_torch_import_failure, torch_load_problem
from lead_ros.node_config import RUNTIMES, VIRTUAL_DISTORTIONS
from lead_ros.observation import Command
from lead_ros.ros.topics import INPUT_KEYS
from lead_ros.tools.interrupts import Interrupted, exit_code, handled_interrupts
from lead_ros.weights.manifest import VARIANTS

log = logging.getLogger("lead_ros")
EXIT_USAGE = 2


def finite_float(text: str) -> float:
    """An argparse type: a float that is neither NaN nor infinite (those would pass every range
    check and silently change behaviour, e.g. a NaN threshold that keeps no box)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _read_rgb(path: str) -> np.ndarray:
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"image {path!r} could not be read as an image file")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _add_planner_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", required=True, help="local file/directory or hf://OWNER/REPO[@REV]")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"])
    _add_runtime_arg(parser, "auto")
    parser.add_argument("--ensemble-size", type=int, default=None, help="number of model*.pth to average")
    parser.add_argument("--cache-dir", default=None, help="Hugging Face cache directory")


def _add_runtime_arg(parser: argparse.ArgumentParser, default: str | None) -> None:
    parser.add_argument(
        "--runtime",
        default=default,
        choices=RUNTIMES,
        help=runtimes_help() + ("" if default else "; default: the params file's"),
    )


def _add_rig_args(parser: argparse.ArgumentParser, from_params: bool, required: bool = False) -> None:
    default = "; default: the params file's" if from_params else ""
    parser.add_argument(
        "--camera-rig",
        metavar="RIG.yaml",
        default=None,
        required=required,
        help="camera rig: reproject each camera into its nuPlan camera ('nuplan': the trained cameras)" + default,
    )
    parser.add_argument(
        "--virtual-distortion",
        choices=VIRTUAL_DISTORTIONS,
        default=None,
        help="lens distortion of the virtual nuPlan cameras (default nuplan)" + default,
    )


def add_rig_check_arguments(parser: argparse.ArgumentParser) -> None:
    _add_rig_args(parser, from_params=False, required=True)
    images = parser.add_mutually_exclusive_group(required=True)
    images.add_argument(
        "--images",
        nargs=len(CAMERA_NAMES),
        metavar=tuple(n.upper() for n in CAMERA_NAMES),
        help=f"the camera images {' '.join(CAMERA_NAMES)}",
    )
    images.add_argument("--bag", help="a rosbag2 with the four camera topics")
    parser.add_argument("--frame", type=int, default=0, help="with --bag: the N-th image of each camera (0-based)")
    parser.add_argument("--out", required=True, help="output directory (parser.png, parser.txt)")


def cmd_rig_check(args: argparse.Namespace) -> int:
    from lead_ros.cameras.rig import load_rig
    from lead_ros.tools.rig_check import bag_frame, check_rig

    rig = load_rig(args.camera_rig)
    if args.images:
        if rig.from_topics:
            raise ValueError(
                f"--images: the rig takes the calibration of {', '.join(rig.from_topics)} from "
                "CameraInfo; use --bag with the CameraInfo recorded"
            )
        images = {name: _read_rgb(path) for name, path in zip(CAMERA_NAMES, args.images, strict=True)}
    else:
        images, rig = bag_frame(Path(args.bag), args.frame, rig)
    result = check_rig(rig, args.virtual_distortion or "nuplan", images, Path(args.out))
    sys.stdout.write(result.text)
    sys.stdout.write(f"wrote {result.picture} and {result.report}\n")
    return 0


def _planner(args: argparse.Namespace, jpeg: bool = True):
    from lead_ros.planner import Planner

    return Planner(
        args.weights,
        args.device,
        args.precision,
        runtime=args.runtime,
        jpeg_roundtrip=jpeg,
        ensemble_size=args.ensemble_size,
        cache_dir=args.cache_dir,
    )


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    _add_planner_args(parser)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--image", help="stitched H x 1920 RGB model input (PNG/JPEG), used as is")
    source.add_argument(
        "--cameras",
        nargs=len(CAMERA_NAMES),
        metavar=tuple(n.upper() for n in CAMERA_NAMES),
        help=f"the camera images {' '.join(CAMERA_NAMES)} (full NAVSIM preprocessing)",
    )
    parser.add_argument("--speed", type=finite_float, required=True, help="ego speed, m/s (>= 0)")
    parser.add_argument("--accel", type=finite_float, required=True, help="ego acceleration, m/s^2")
    parser.add_argument("--command", required=True, help="left, straight, right or unknown")
    parser.add_argument("--no-jpeg", action="store_true", help="skip the JPEG q30 round trip (cameras only)")
    _add_rig_args(parser, from_params=False)
    parser.add_argument(
        "--perception",
        action="store_true",
        help="add the BEV class pixel counts and the detected boxes (ISO 8855) to the JSON",
    )
    parser.add_argument(
        "--detection-score-threshold",
        type=finite_float,
        default=0.3,
        help="boxes with a score above this (strict) are listed (default 0.3, LEAD's)",
    )
    parser.add_argument(
        "--bev-out",
        metavar="FILE.npy",
        default=None,
        help="write the BEV class probabilities, float32 (7, 256, 256), published layout (implies --perception)",
    )


def cmd_predict(args: argparse.Namespace) -> int:
    from lead_ros.observation import Observation

    command = Command.parse(args.command)
    if args.image:
        observation = Observation(args.speed, args.accel, command, image=_read_rgb(args.image))
    else:
        cameras = tuple(_read_rgb(p) for p in args.cameras)
        observation = Observation(args.speed, args.accel, command, cameras=cameras)
    if args.camera_rig and args.image:
        raise ValueError("--camera-rig: applies to --cameras (a stitched --image is used as it is)")
    reprojection = None
    if args.camera_rig:
        from lead_ros.cameras.reprojection import Reprojection
        from lead_ros.cameras.rig import load_rig

        reprojection = Reprojection(load_rig(args.camera_rig), args.virtual_distortion or "nuplan")
    planner = _planner(args, jpeg=not args.no_jpeg)
    perception = args.perception or args.bev_out is not None
    plan = planner.plan(observation, perception=perception, reprojection=reprojection)
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
        "runtime": planner.info.runtime,
        "untrained": planner.info.untrained,
    }
    if perception:
        perceived = plan.perception
        result["perception"] = {  # a fixed contract (docs/node.md): scripts rely on these keys
            "boxes_iso8855": [b.as_dict() for b in perceived.boxes_above(args.detection_score_threshold)],
            "bev_class_pixels": perceived.class_pixel_counts(),
        }
        if args.bev_out is not None:
            np.save(args.bev_out, perceived.bev_probabilities)
            result["perception"]["bev_out"] = str(args.bev_out)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    _add_planner_args(parser)
    parser.add_argument("--iters", type=int, default=20, help="timed runs per measurement (default 20)")
    parser.add_argument("--heights", type=int, nargs="+", default=[256, 270], help="model input heights")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--perception", action="store_true", help="also time inference with the perception heads and box decoding"
    )
    parser.add_argument(
        "--reference",
        action="store_true",
        help="also time the unoptimised full forward (with auxiliary heads) for a same-machine ratio",
    )


def cmd_bench(args: argparse.Namespace) -> int:
    from lead_ros.tools.bench import format_report, run_bench

    planner = _planner(args)
    reference = None
    if args.reference:
        from lead_ros.weights.loader import build_models, load_checkpoint

        if planner.device.type != "cpu":
            raise ValueError("--reference compares CPU timings; use --device cpu")
        reference = build_models(load_checkpoint(args.weights))[0]
    report = run_bench(
        planner, iters=args.iters, heights=tuple(args.heights), reference_model=reference, perception=args.perception
    )
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_report(report))
    return 0


def add_selftest_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"])
    _add_runtime_arg(parser, "auto")
    parser.add_argument("--timing-iters", type=int, default=10, help="timed runs per figure; 0 = no timing")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def cmd_selftest(args: argparse.Namespace) -> int:
    from lead_ros.tools.selftest import format_report, run_selftest

    report = run_selftest(args.device, args.precision, args.runtime, timing_iters=args.timing_iters)
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_report(report))
    return 0 if report.passed else 1


def add_weights_synth_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output checkpoint directory")
    parser.add_argument("--variant", default="navsim", choices=VARIANTS)


def cmd_weights_synth(args: argparse.Namespace) -> int:
    from lead_ros.weights.synthetic import write_synthetic_checkpoint

    path = write_synthetic_checkpoint(Path(args.out), args.variant)
    json.dump(
        {"checkpoint": str(path.parent), "weights": str(path), "variant": args.variant, "untrained": True},
        sys.stdout,
    )
    sys.stdout.write("\n")
    return 0


def add_export_onnx_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", required=True, help="local file/directory or hf://OWNER/REPO[@REV]")
    parser.add_argument("--out", required=True, help="output directory (new or empty)")
    parser.add_argument("--height", type=int, default=270, help="input rows of the graph (256..1080, default 270)")
    parser.add_argument("--perception", action="store_true", help="also output the auxiliary perception heads")
    parser.add_argument("--overwrite", action="store_true", help="empty OUT first")
    parser.add_argument("--ensemble-size", type=int, default=None, help="number of model*.pth to export")
    parser.add_argument("--cache-dir", default=None, help="Hugging Face cache directory")


def cmd_export_onnx(args: argparse.Namespace) -> int:
    from lead_ros.tools.export import PARITY_TOLERANCE, ExportParityError, export_onnx

    try:
        report = export_onnx(
            args.weights,
            Path(args.out),
            args.height,
            args.perception,
            args.overwrite,
            args.ensemble_size,
            args.cache_dir,
        )
    except ExportParityError as error:
        log.error("%s", error)
        return 1
    for path in report.files:
        print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    print(f"wrote {report.manifest}")
    print(
        f"largest difference from lead_ros' fp32 forward on {report.cases} golden inputs: "
        f"{report.max_difference:.2e} (tolerance {PARITY_TOLERANCE:g}): OK"
    )
    return 0


def _packaged_params_file() -> Path:
    """config/lead_ros.yaml from the source tree or the installed share directory."""
    source = Path(__file__).resolve().parents[2] / "config" / "lead_ros.yaml"
    if source.is_file():
        return source
    return Path(sys.prefix) / "share" / "lead_ros" / "config" / "lead_ros.yaml"


def _topic_overrides(pairs: list[str]) -> dict[str, str]:
    from lead_ros.bag.reader import default_topics

    topics = default_topics()
    for pair in pairs:
        key, sep, topic = pair.partition("=")
        if not sep or key not in INPUT_KEYS or not topic:
            raise ValueError(f"--topic {pair!r}: expected KEY=TOPIC with KEY one of {' '.join(INPUT_KEYS)}")
        topics[key] = topic
    return topics


def add_evaluate_bag_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bags", nargs="+", metavar="BAG", help="bag directories, .mcap/.db3 files, or a folder of bags")
    parser.add_argument("--weights", required=True, help="local file/directory or hf://OWNER/REPO[@REV]")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument(
        "--params-file",
        default=None,
        help="node params YAML (default: the packaged config/lead_ros.yaml, with camera_mode and image_transport "
        "taken from each bag)",
    )
    parser.add_argument(
        "--camera-mode",
        choices=["navsim_4cam", "stitched"],
        default=None,
        help="override; default: from the params file if it sets it, else from each bag",
    )
    parser.add_argument(
        "--image-transport",
        choices=["raw", "compressed"],
        default=None,
        help="override; default: from the params file if it sets it, else from each bag",
    )
    parser.add_argument(
        "--topic",
        action="append",
        default=[],
        metavar="KEY=TOPIC",
        help=f"input topic override; KEY: {' '.join(INPUT_KEYS)}",
    )
    _add_rig_args(parser, from_params=True)
    parser.add_argument("--device", default=None, help="override the params file's device")
    parser.add_argument("--precision", default=None, choices=["fp32", "fp16", "bf16"])
    _add_runtime_arg(parser, None)
    parser.add_argument("--reorder-window-s", type=finite_float, default=1.0, help="header-stamp reorder window")
    parser.add_argument(
        "--max-input-age-s",
        type=finite_float,
        default=0.0,
        help="skip frames whose anchor stamp is older than this vs record time (stale_input); default 0 = off",
    )
    parser.add_argument("--write-inputs", action="store_true", help="copy the input topics into the output bag")
    parser.add_argument(
        "--perception",
        action="store_true",
        help="also run perception: BEV grids and boxes into the output bag (the node's topics), "
        "boxes into frames.jsonl, the BEV map in the pictures",
    )
    parser.add_argument("--no-pictures", action="store_true", help="skip the contact sheet and video")
    parser.add_argument("--jobs", type=int, default=1, help="bags evaluated in parallel processes (--engine local)")
    parser.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="local: this machine (--jobs processes); ray: long-lived Ray actors, one bag at a time",
    )
    parser.add_argument(
        "--ray-address",
        default=None,
        help="join a Ray cluster (auto, or ray://HOST:PORT); default: start a local instance",
    )
    parser.add_argument("--workers", type=int, default=2, help="Ray actors (--engine ray; default 2)")
    parser.add_argument(
        "--cpus-per-worker",
        type=finite_float,
        default=1.0,
        help="CPUs per Ray actor, also its torch thread count (default 1)",
    )
    parser.add_argument(
        "--gpus-per-worker",
        type=finite_float,
        default=0.0,
        help="GPUs per Ray actor (fractions share a GPU; default 0)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output directory")


def cmd_evaluate_bag(args: argparse.Namespace) -> int:
    from lead_ros.bag.evaluate import FOLLOWABLE, EvaluationOptions, PlannerSpec, evaluate_bags
    from lead_ros.node_config import NodeConfig, params_file_values

    values = params_file_values(Path(args.params_file) if args.params_file else _packaged_params_file())
    # A setting the user states (an option, or in a params file they pass) is kept; the
    # others follow each bag's camera connections.
    given = (
        ("camera_mode", args.camera_mode),
        ("image_transport", args.image_transport),
        ("camera_rig_file", args.camera_rig),
        ("virtual_distortion", args.virtual_distortion),
    )
    stated = {k: v for k, v in given if v}
    config = NodeConfig.from_values({**values, **stated})
    follow = tuple(k for k in FOLLOWABLE if k not in stated and not (args.params_file and k in values))
    options = EvaluationOptions(
        config=config,
        topics=_topic_overrides(args.topic),
        reorder_window_ns=int(args.reorder_window_s * 1e9),
        write_inputs=args.write_inputs,
        pictures=not args.no_pictures,
        max_input_age_s=args.max_input_age_s,
        follow_bag=follow,
        perception=args.perception,
    )
    spec = PlannerSpec(
        args.weights, args.device or config.device, args.precision or config.precision, args.runtime or config.runtime
    )
    if args.engine == "ray":
        return _evaluate_on_ray(args, spec, options)
    summary = evaluate_bags([Path(b) for b in args.bags], Path(args.out), spec, options, args.jobs, args.overwrite)
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 1 if summary.get("failed_bags") or summary.get("incomplete") else 0


def _evaluate_on_ray(args: argparse.Namespace, spec, options) -> int:
    """``evaluate-bag --engine ray``: every bag into OUT/<bag name>/ plus OUT/fleet_summary.json."""
    from dataclasses import replace

    from lead_ros.bag.evaluate import find_bags
    from lead_ros.bag.output import claim_output_dir

    try:
        from lead_ros.bag.fleet import FleetOptions, evaluate_on_ray
    except ModuleNotFoundError as error:  # ray itself
        raise ValueError(
            f"--engine ray needs Ray ({error}): pip install -r requirements/fleet.txt; "
            "everything else, --engine local included, runs without it"
        ) from None
    if args.workers < 1 or args.cpus_per_worker <= 0 or args.gpus_per_worker < 0:
        raise ValueError("--workers must be >= 1, --cpus-per-worker > 0 and --gpus-per-worker >= 0")
    given = [Path(b) for b in args.bags]
    bags = find_bags(given)
    out = Path(args.out)
    fleet = FleetOptions(
        address=args.ray_address,
        workers=args.workers,
        cpus_per_worker=args.cpus_per_worker,
        gpus_per_worker=args.gpus_per_worker,
    )
    with claim_output_dir(out, args.overwrite, [*given, *bags]):
        summary = evaluate_on_ray(bags, out, spec, replace(options, progress=sys.stderr.isatty()), fleet)
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 1 if summary["failed"] else 0


def add_compare_evaluations_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("first", metavar="OUT_A", help="evaluate-bag output directory of one bag")
    parser.add_argument("second", metavar="OUT_B", help="evaluate-bag output directory of the same bag")
    parser.add_argument(
        "--max-diff-m",
        type=finite_float,
        default=None,
        help="exit 1 when a frame's waypoints differ by more (or a frame is in one output only)",
    )
    parser.add_argument(
        "--allow-different-inputs",
        action="store_true",
        help="parser outputs of different drives (refused by default: exit 2)",
    )
    parser.add_argument(
        "--max-diff-rad",
        type=finite_float,
        default=None,
        help="exit 1 when a frame's headings differ by more (or a frame is in one output only)",
    )


def cmd_compare_evaluations(args: argparse.Namespace) -> int:
    from lead_ros.bag.compare import compare_paths, format_evaluation_comparison, input_difference, read_evaluation

    first, second = read_evaluation(Path(args.first)), read_evaluation(Path(args.second))
    if (difference := input_difference(first, second)) is not None:
        if not args.allow_different_inputs:
            raise ValueError(difference)
        log.warning("%s", difference.rpartition(" (--allow")[0])
    comparison = compare_paths(first.plans, second.plans)
    print(format_evaluation_comparison(first, second, comparison))
    if args.max_diff_m is None and args.max_diff_rad is None:
        return 0
    exceeded = [
        stamp
        for stamp, (m, rad) in comparison.per_frame.items()
        if (args.max_diff_m is not None and m > args.max_diff_m)
        or (args.max_diff_rad is not None and rad > args.max_diff_rad)
    ]
    alone = len(comparison.only_first) + len(comparison.only_second)
    if exceeded or alone:
        print(f"result: {len(exceeded)} frames beyond the limits, {alone} frames in one output only")
        return 1
    print("result: every frame within the limits")
    return 0


def add_make_sample_bag_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="bag directory to create")
    parser.add_argument(
        "--duration-s", type=finite_float, default=None, help="camera seconds; default gives data/sample_bag"
    )
    parser.add_argument(
        "--rig",
        metavar="RIG.yaml",
        default=None,
        help="the drive as this camera rig's cameras see it (PNG images, CameraInfo topics)",
    )


def cmd_make_sample_bag(args: argparse.Namespace) -> int:
    from lead_ros.bag.sample_bag import DURATION_S, write_sample_bag

    out = Path(args.out)
    if out.exists():
        raise ValueError(f"{out} exists; remove it first (the bag is regenerated whole)")
    rig = None
    if args.rig:
        from lead_ros.cameras.rig import load_rig

        rig = load_rig(args.rig)
    write_sample_bag(out, DURATION_S if args.duration_s is None else args.duration_s, rig)
    print(out)
    return 0


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", help="bag directory or .mcap/.db3 file")
    parser.add_argument("--rate", type=finite_float, default=1.0, help="playback speed factor")
    parser.add_argument("--loop", action="store_true", help="start again at the end")
    parser.add_argument("--clock", action="store_true", help="publish /clock (run the node with use_sim_time)")
    parser.add_argument("--remap", action="append", default=[], metavar="FROM:=TO", help="topic remap")
    parser.add_argument(
        "--lockstep",
        metavar="TOPIC",
        help="wait for the node's answer on TOPIC after each anchor "
        "frame: its frame_status (every frame) or its path (planned frames only)",
    )
    parser.add_argument("--lockstep-timeout-s", type=finite_float, default=30.0, help="lockstep wait limit")
    parser.add_argument("--wait-s", type=finite_float, default=10.0, help="wait this long for subscribers first")


def cmd_replay(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    from lead_ros.bag.replay import BagReplayer
    from lead_ros.ros.background_spin import BackgroundSpin

    remaps = {}
    for pair in args.remap:
        source, sep, target = pair.partition(":=")
        if not sep or not source or not target:
            raise ValueError(f"--remap {pair!r}: expected FROM:=TO")
        remaps[source] = target
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)  # ours: lead_ros.tools.interrupts
    node = rclpy.create_node("lead_ros_replay")
    try:
        replayer = BagReplayer(
            node,
            Path(args.bag),
            rate=args.rate,
            loop=args.loop,
            clock=args.clock,
            remaps=remaps,
            lockstep_topic=args.lockstep,
            lockstep_timeout_s=args.lockstep_timeout_s,
        )
    except BaseException:  # a bag it cannot replay (one line, exit 2): leave ROS cleanly first
        node.destroy_node()
        rclpy.try_shutdown()
        raise
    spin = BackgroundSpin(node)
    try:
        if (problem := replayer.wait_until_ready(args.wait_s)) is not None:
            if replayer.lockstep:  # its promise cannot hold: say what is missing instead
                log.error("%s", problem)
                return 1
            log.warning("%s; publishing anyway", problem)
        stats = replayer.run()
        log.info(
            "replayed %d messages (%d anchor frames, %d lockstep timeouts); skipped topics: %s",
            stats.published,
            stats.anchors,
            stats.lockstep_timeouts,
            stats.skipped_topics or "none",
        )
    except KeyboardInterrupt as error:
        replayer.stop()
        return exit_code(error)
    finally:
        replayer.close()
        spin.close()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def add_record_path_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--topic", action="append", default=None, required=True, help="Path topic (repeatable)")
    parser.add_argument("--out", required=True, help="bag directory to create")
    parser.add_argument("--duration-s", type=finite_float, default=0.0, help="stop after this long; 0 = until Ctrl-C")


def cmd_record_path(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    from lead_ros.bag.record import PathRecorder
    from lead_ros.ros.background_spin import BackgroundSpin

    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)  # ours: lead_ros.tools.interrupts
    node = rclpy.create_node("lead_ros_record_path")
    recorder = spin = None
    code = 0
    try:
        recorder = PathRecorder(node, args.topic, Path(args.out))  # closes its bag if interrupted while made
        spin = BackgroundSpin(node)
        deadline = time.monotonic() + args.duration_s if args.duration_s else None
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.1)
    except KeyboardInterrupt as error:  # the usual way to stop recording; the bag is still closed properly
        code = exit_code(error)
    finally:
        if spin is not None:
            spin.close()
        if recorder is not None:
            recorder.close()
        node.destroy_node()
        rclpy.try_shutdown()
    log.info("recorded %d paths into %s", recorder.count if recorder is not None else 0, args.out)
    return code


def add_bench_node_arguments(parser: argparse.ArgumentParser) -> None:
    _add_planner_args(parser)
    parser.add_argument("--rates", type=finite_float, nargs="+", default=[10.0, 30.0], help="camera rates, Hz")
    parser.add_argument("--durations-s", type=finite_float, nargs="+", default=[30.0, 130.0], help="seconds per rate")
    parser.add_argument(
        "--publisher",
        choices=["process", "inline"],
        default="process",
        help="camera stream from a separate process (default, as on a robot) or a thread of the benchmark",
    )
    parser.add_argument(
        "--transports",
        choices=["raw", "jpeg"],
        nargs="+",
        default=["raw"],
        help="camera messages: raw rgb8 Image, JPEG CompressedImage, or each in turn (every rate runs per transport)",
    )


def cmd_bench_node(args: argparse.Namespace) -> int:
    from lead_ros.tools.node_bench import format_reports, run

    if len(args.rates) != len(args.durations_s):
        raise ValueError("--rates and --durations-s need the same number of values")
    runs = [
        (transport, rate, seconds)
        for transport in args.transports
        for rate, seconds in zip(args.rates, args.durations_s, strict=True)
    ]
    reports = run(
        args.weights,
        args.device,
        args.precision,
        runs,
        separate_publisher=args.publisher == "process",
        runtime=args.runtime,
    )
    print(format_reports(reports))
    return 0


def add_bench_bag_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", required=True, help="weights source")
    parser.add_argument("--device", default="cpu", help="device (default cpu)")
    parser.add_argument("--durations-s", type=finite_float, nargs="+", default=[2.0, 8.0], help="sample drive lengths")


def cmd_bench_bag(args: argparse.Namespace) -> int:
    from lead_ros.tools.bag_bench import main as bench_bag

    return bench_bag(args.weights, args.device, args.durations_s)


@dataclass(frozen=True)
class CliCommand:
    """One command of ``lead-ros`` (ros2cli's verbs): its words, its help, the function that
    adds its arguments and the one that runs it (exit code)."""

    words: tuple[str, ...]  # ("predict",), or a group and a command: ("export", "onnx")
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS = (
    CliCommand(
        ("predict",),
        "plan once from an image or four cameras; JSON on stdout",
        add_predict_arguments,
        cmd_predict,
    ),
    CliCommand(
        ("rig-check",),
        "look at a camera rig: reprojected views, coverage, model input",
        add_rig_check_arguments,
        cmd_rig_check,
    ),
    CliCommand(
        ("bench",),
        "latency/throughput/memory benchmark of the core",
        add_bench_arguments,
        cmd_bench,
    ),
    CliCommand(
        ("selftest",),
        "check this install against the shipped golden cases (exit 0 PASS, 1 FAIL)",
        add_selftest_arguments,
        cmd_selftest,
    ),
    CliCommand(
        ("bench-node",),
        "benchmark the node in-process under a 4-camera stream",
        add_bench_node_arguments,
        cmd_bench_node,
    ),
    CliCommand(
        ("bench-bag",),
        "offline evaluation throughput and memory vs bag length",
        add_bench_bag_arguments,
        cmd_bench_bag,
    ),
    CliCommand(
        ("evaluate-bag",),
        "run the planner over rosbag2 bags offline",
        add_evaluate_bag_arguments,
        cmd_evaluate_bag,
    ),
    CliCommand(
        ("compare-evaluations",),
        "compare two evaluate-bag outputs of the same bag",
        add_compare_evaluations_arguments,
        cmd_compare_evaluations,
    ),
    CliCommand(
        ("replay",),
        "publish a bag's topics into a live ROS graph",
        add_replay_arguments,
        cmd_replay,
    ),
    CliCommand(
        ("record-path",),
        "record published paths into a bag (MCAP)",
        add_record_path_arguments,
        cmd_record_path,
    ),
    CliCommand(
        ("make-sample-bag",),
        "regenerate the shipped sample bag",
        add_make_sample_bag_arguments,
        cmd_make_sample_bag,
    ),
    CliCommand(
        ("export", "onnx"),
        "ONNX files + model.json, checked in ONNX Runtime on the golden inputs",
        add_export_onnx_arguments,
        cmd_export_onnx,
    ),
    CliCommand(
        ("weights", "synth"),
        "write synthetic (untrained) weights in LEAD's layout",
        add_weights_synth_arguments,
        cmd_weights_synth,
    ),
)
# Commands of two words are grouped under the first: its help.
GROUPS = {
    "export": "export the model for other runtimes",
    "weights": "weights utilities",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lead-ros", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = parser.add_subparsers(dest="command_name", required=True)
    groups: dict[str, argparse._SubParsersAction] = {}  # made where their first command stands
    for command in COMMANDS:
        parent = sub
        if len(command.words) > 1:
            group = command.words[0]
            if group not in groups:
                groups[group] = sub.add_parser(group, help=GROUPS[group]).add_subparsers(
                    dest=f"{group}_command", required=True
                )
            parent = groups[group]
        command_parser = parent.add_parser(command.words[-1], help=command.help)
        command.add_arguments(command_parser)
        command_parser.set_defaults(run=command.run)
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
    """Exit codes (every command): 0 success; 1 the run completed but something it checked
    failed (a bag, a self-test case); 2 usage error or unusable input; 130 interrupted by
    SIGINT, 143 by SIGTERM (``lead_ros.tools.interrupts``)."""
    args = build_parser().parse_args(argv)  # a usage error exits 2 here (argparse)
    _log_to_stderr(args.verbose)
    try:
        with handled_interrupts():
            return args.run(args)
    except (ValueError, OSError) as error:  # input/weights/config errors; output errors name the path
        log.error("%s", error)
        return EXIT_USAGE
    except ImportError as error:
        if not is_torch_import_failure(error):
            raise
        log.error("%s", torch_load_problem(error))  # an address-space limit, typically: one line
        return EXIT_USAGE
    except KeyboardInterrupt as error:  # Interrupted (SIGINT, SIGTERM), or a KeyboardInterrupt of its own
        log.error("interrupted%s", f" ({error})" if isinstance(error, Interrupted) else "")
        return exit_code(error)


if __name__ == "__main__":
    sys.exit(main())
