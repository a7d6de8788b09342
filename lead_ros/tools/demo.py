"""``make demo``: the whole product on the shipped sample drive.

1. Weights: ``--weights``/``LEAD_ROS_WEIGHTS``, else the official checkpoint if it is in the
   Hugging Face cache, else synthetic (untrained) weights, announced as such.
2. The live node (a ``lead_planner`` process, ``use_sim_time``) is fed the sample bag by the
   replayer with /clock in lockstep, and its paths are recorded.
3. ``evaluate-bag`` runs on the same bag; live and offline paths are compared frame by frame.

Exits non-zero if any step fails. Run it through ``make demo``, which sets loopback-only DDS.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from lead_ros.ros.topics import BY_KEY
from lead_ros.weights.source import OFFICIAL_SOURCE

REPO = Path(__file__).resolve().parents[2]
SAMPLE_BAG = REPO / "data" / "sample_bag"
PARAMS = (REPO / "config" / "lead_ros.yaml", REPO / "config" / "sample.yaml")
PATH_TOPIC = BY_KEY["path"].qualified()
STATUS_TOPIC = BY_KEY["frame_status"].qualified()  # lockstep's answer: one per frame, planned or skipped
log = logging.getLogger("lead_ros.demo")


def resolve_weights(requested: str | None, out: Path) -> tuple[str, bool]:
    """The weights to use and whether they are synthetic."""
    from lead_ros.weights.errors import WeightsError
    from lead_ros.weights.loader import load_checkpoint
    from lead_ros.weights.synthetic import write_synthetic_checkpoint

    if requested:
        return requested, False
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the demo never downloads; a cached copy is used
    try:
        load_checkpoint(OFFICIAL_SOURCE)
        return OFFICIAL_SOURCE, False
    except WeightsError:
        log.info("the official checkpoint %s is not in the Hugging Face cache", OFFICIAL_SOURCE)
    synthetic = out / "synthetic_weights"
    if not (synthetic / "model_0000.pth").is_file():
        write_synthetic_checkpoint(synthetic)
    return str(synthetic), True


def _start_node(weights: str, device: str, log_path: Path, rig: str | None) -> subprocess.Popen:
    command = [str(Path(sys.executable).with_name("lead_planner")), "--ros-args"]
    for params in PARAMS:
        command += ["--params-file", str(params)]
    command += ["-p", f"weights:={weights}", "-p", f"device:={device}", "-p", "use_sim_time:=true"]
    if rig:  # CameraInfo reliable: lockstep waits for reliable subscribers to acknowledge each message
        command += ["-p", f"camera_rig_file:={rig}", "-p", "camera_info_qos:=transient_local"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "RCUTILS_COLORIZED_OUTPUT": "0"}
    return subprocess.Popen(command, stdout=log_path.open("w"), stderr=subprocess.STDOUT, env=env)


def _wait_for_line(path: Path, text: str, process: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if text in path.read_text(errors="replace"):
            return
        if process.poll() is not None:
            raise RuntimeError(f"the node exited with code {process.returncode}; see {path}")
        time.sleep(0.2)
    raise RuntimeError(f"the node did not get ready within {timeout_s:.0f} s; see {path}")


def run_live(bag: Path, weights: str, device: str, out: Path, rig: str | None = None) -> tuple[Path, dict, list]:
    """Node process + lockstep replay with /clock + path recording; returns the recorded bag,
    the replay counts and the node's frame statuses."""
    import rclpy

    from lead_ros.bag.record import PathRecorder
    from lead_ros.bag.replay import BagReplayer, wait_until
    from lead_ros.ros.background_spin import BackgroundSpin
    from lead_ros.ros.frame_status import PLANNED

    node_log = out / "node.log"
    process = _start_node(weights, device, node_log, rig)
    recorded = out / "live_paths"
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("lead_ros_demo", context=context)
    spin = BackgroundSpin(node)
    try:
        _wait_for_line(node_log, "active: planning", process, 300)
        recorder = PathRecorder(node, [PATH_TOPIC], recorded)
        replayer = BagReplayer(node, bag, clock=True, lockstep_topic=STATUS_TOPIC, lockstep_timeout_s=60)
        if (problem := replayer.wait_until_ready(60)) is not None:
            raise RuntimeError(problem)
        if not wait_until(lambda: recorder.matched, 60):
            raise RuntimeError(f"the path recorder did not match {PATH_TOPIC} within 60 s")
        stats = replayer.run()
        replayer.close()
        # Each planned status follows its path on another topic: wait for that many paths.
        planned = sum(s.status == PLANNED for s in stats.statuses)
        wait_until(lambda: recorder.count >= planned, 30)
        recorder.close()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
        spin.close()
        node.destroy_node()
        context.try_shutdown()
    if code != 0:
        raise RuntimeError(f"the node exited with code {code}; see {node_log}")
    counts = {
        "anchors": stats.anchors,
        "published": stats.published,
        "lockstep_timeouts": stats.lockstep_timeouts,
        "recorded_paths": recorder.count,
    }
    return recorded, counts, stats.statuses


def explain_differences(live: list, offline_frames: Path, comparison, tolerance: float = 1e-4) -> list[str]:
    """One line per frame that live and offline did not treat alike: what each side did
    (planned or skipped and why, the command, the speed) and how far the plans differ."""
    import json

    from lead_ros.ros.frame_status import FrameStatus

    offline = {}
    for line in offline_frames.read_text().splitlines():
        status = FrameStatus.from_record(json.loads(line))
        offline[status.stamp_ns] = status
    live_by_stamp = {s.stamp_ns: s for s in live}
    lines = []
    for stamp in sorted(set(live_by_stamp) | set(offline), key=lambda t: (t is None, t or 0)):
        ours, theirs = live_by_stamp.get(stamp), offline.get(stamp)
        position, heading = comparison.per_frame.get(stamp, (0.0, 0.0))
        alike = ours is not None and theirs is not None and ours.same_decision(theirs)
        same = alike and position <= tolerance and heading <= tolerance
        if not same:
            when = "no stamp" if stamp is None else f"stamp {stamp / 1e9:.3f} s"
            diff = f"; plans differ by {position:.2e} m, {heading:.2e} rad" if stamp in comparison.per_frame else ""
            lines.append(
                f"  {when}: live {ours.describe() if ours else 'no status'} | "
                f"offline {theirs.describe() if theirs else 'no record'}{diff}"
            )
    return lines


def describe_commands(frames_jsonl: Path) -> str:
    """The planned frames' commands as runs, e.g. ``straight 0.0-0.5 s, left 0.6-2.2 s``, with
    where they came from (route rule with its lateral range, or the command topic)."""
    import itertools
    import json

    records = [json.loads(line) for line in frames_jsonl.read_text().splitlines()]
    planned = [r for r in records if r["status"] == "planned"]
    if not planned:
        return "no frames planned"
    start = planned[0]["stamp_ns"]
    runs = []
    for command, group in itertools.groupby(planned, key=lambda r: r["command"]):
        group = list(group)
        times = f"{(group[0]['stamp_ns'] - start) / 1e9:.1f}-{(group[-1]['stamp_ns'] - start) / 1e9:.1f} s"
        laterals = [r["route_lateral_m"] for r in group if r.get("route_lateral_m") is not None]
        spread = f", lateral {min(laterals):+.1f}..{max(laterals):+.1f} m" if laterals else ""
        runs.append(f"{command} {times} ({len(group)} frames{spread})")
    source = "route (NAVSIM rule)" if planned[0].get("command_input") == "route" else "command topic"
    return f"from the {source}: " + ", ".join(runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lead_ros.tools.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/demo", help="output directory (replaced)")
    parser.add_argument("--weights", default=os.environ.get("LEAD_ROS_WEIGHTS"), help="weights source")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--bag", default=str(SAMPLE_BAG), help="bag to drive with (default: the sample)")
    parser.add_argument("--camera-rig", default=None, help="camera rig of the bag's cameras (node and offline)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s] %(name)s: %(message)s", stream=sys.stderr)

    from lead_ros.bag.output import claim_output_dir

    out, bag = Path(args.out), Path(args.bag)
    with claim_output_dir(out, overwrite=True, inputs=[bag]):  # never the bag it drives with
        return _demo(args, out, bag)


def _demo(args: argparse.Namespace, out: Path, bag: Path) -> int:
    """The three steps into ``out`` (claimed by ``main``); 0 when live and offline agree."""
    from lead_ros.bag.compare import compare_paths, read_paths
    from lead_ros.bag.evaluate import EvaluationOptions, PlannerSpec, evaluate_bags
    from lead_ros.bag.metrics import format_table
    from lead_ros.bag.reader import default_topics
    from lead_ros.node_config import NodeConfig

    weights, synthetic = resolve_weights(args.weights, out)
    banner = "UNTRAINED SYNTHETIC WEIGHTS: the paths show the pipeline working, not a driving policy"
    if synthetic:
        print(f"\n*** {banner} ***\n", flush=True)
    print(f"[1/3] live: lead_planner + lockstep replay of {bag} with /clock, recording {PATH_TOPIC}", flush=True)
    recorded, live, statuses = run_live(bag, weights, args.device, out, args.camera_rig)
    print(f"      {live['anchors']} frames replayed, {live['recorded_paths']} paths recorded", flush=True)

    print("[2/3] offline: evaluate-bag on the same bag, with the node's rules", flush=True)
    config = NodeConfig.from_yaml(PARAMS[1])
    if args.camera_rig:
        config = replace(config, camera_rig_file=args.camera_rig, camera_info_qos="transient_local")
    # The node's input age limit too (evaluate-bag leaves it off unless asked): same rules.
    options = EvaluationOptions(
        config=config, topics=default_topics(), progress=False, max_input_age_s=config.max_input_age_s
    )
    offline_dir = out / "offline"
    spec = PlannerSpec(weights, args.device, config.precision, config.runtime)
    summary = evaluate_bags([bag], offline_dir, spec, options)

    print(f"      commands {describe_commands(Path(summary['outputs']['frames']))}", flush=True)
    print("      open-loop metrics against the logged drive (m, rad; lead_ros/bag/metrics.py):", flush=True)
    print("\n".join("      " + line for line in format_table(summary["metrics"]).splitlines()), flush=True)

    print("[3/3] compare live vs offline, frame by frame", flush=True)
    live_paths = read_paths(recorded, PATH_TOPIC)
    offline_paths = read_paths(Path(summary["outputs"]["bag"]), PATH_TOPIC)
    comparison = compare_paths(live_paths, offline_paths)
    same_frames = not comparison.only_first and not comparison.only_second
    differences = explain_differences(statuses, Path(summary["outputs"]["frames"]), comparison)
    ok = (
        same_frames
        and comparison.matches()
        and live["lockstep_timeouts"] == 0
        and comparison.common > 0
        and not differences
    )
    if differences:
        print(f"\nframes treated differently ({len(differences)}):\n" + "\n".join(differences), flush=True)
    print(
        f"\nframes planned: live {len(live_paths)}, offline {len(offline_paths)}, in common {comparison.common}\n"
        f"max |live - offline|: position {comparison.max_abs_position_m:.2e} m, "
        f"heading {comparison.max_abs_heading_rad:.2e} rad (tolerance 1e-4)\n"
        f"weights: {weights}{' (UNTRAINED)' if synthetic else ''}, device {summary['device']}, "
        f"offline {summary['frames_per_second']:.2f} frames/s\n"
        f"pictures: {', '.join(summary['outputs']['pictures'])}\n"
        f"offline bag: {summary['outputs']['bag']}   per-frame records: {summary['outputs']['frames']}\n"
        f"live bag: {recorded}   node log: {out / 'node.log'}\n"
        f"result: {'OK, live and offline agree' if ok else 'MISMATCH'}",
        flush=True,
    )
    if synthetic:
        print(f"*** {banner} ***", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
