"""Fleet evaluation on Ray (``evaluate-bag --engine ray``): many bags over many machines.

Workers are long-lived Ray actors that each load the Planner once and evaluate one bag at a
time with the same per-bag code as the local engine (``lead_ros.bag.evaluate``). The actor
API takes no output path: it evaluates into a private temporary directory, returns the bag's
artefacts (output bag, ``frames.jsonl``, summary, pictures) as bytes and removes the
directory; the driver writes them under ``OUT/<bag name>/`` exactly as the local engine does.
So workers need to see the bags (same paths) and the weights, but no shared output
filesystem.

A bag that fails (corrupt, wrong types) comes back with the local engine's one-line error
and the others go on. A worker that dies mid-bag (killed, out of memory) is replaced and its
bag retried up to ``max_retries`` times, then reported failed. Ctrl-C marks the bags in
flight as interrupted in ``fleet_summary.json``, shuts down the Ray instance the driver
started, and exits 130.

Ray is imported only here, and only when this engine is used: everything else runs without
it.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path

from tqdm import tqdm

from lead_ros.bag.evaluate import (
    EvaluationOptions,
    PlannerSpec,
    bag_output_dirs,
    evaluate_one,
    fleet_summary,
    format_fleet_summary,
)
from lead_ros.bag.output import write_json

log = logging.getLogger("lead_ros.fleet")


@dataclass(frozen=True)
class FleetOptions:
    """``address``: None starts a local Ray instance (node address 127.0.0.1, no dashboard,
    usage statistics off), shut down at the end; ``auto`` or ``ray://host:port`` joins a
    cluster."""

    address: str | None = None
    workers: int = 2
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    max_retries: int = 2
    kill_once_marker: str | None = None  # test hook: the first actor to see this file dies once


class BagWorker:
    """One Ray actor: a Planner loaded once, then bags evaluated one at a time."""

    def __init__(self, spec: PlannerSpec, options: EvaluationOptions, threads: int, kill_once_marker: str | None):
        import torch

        torch.set_num_threads(threads)
        self.options = options
        self.planner = spec.build(options.config)
        self.kill_once_marker = kill_once_marker

    def evaluate(self, bag: str) -> dict:
        """``{"summary": ..., "files": {relative path: bytes}}``, or ``{"bag", "error"}``.
        Writes nothing that outlives the call."""
        if self.kill_once_marker and _take(self.kill_once_marker):
            os.kill(os.getpid(), signal.SIGKILL)  # test hook: a worker dying mid-bag
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="lead_ros_bag_") as scratch:
            summary = evaluate_one(Path(bag), Path(scratch), self.planner, self.options)
            if "error" in summary and not summary.get("incomplete"):  # nothing written worth keeping
                return summary
            files = {str(p.relative_to(scratch)): p.read_bytes() for p in Path(scratch).rglob("*") if p.is_file()}
            relative = _relocated(summary, lambda path: str(Path(path).relative_to(scratch)))
            return {
                "summary": relative,
                "files": files,
                "busy_s": time.perf_counter() - started,
                "worker_pid": os.getpid(),
            }


def _take(marker: str) -> bool:
    """Remove ``marker``; True for the one caller (of several actors at once) that removed it."""
    try:
        os.remove(marker)
    except FileNotFoundError:
        return False
    return True


def _relocated(summary: dict, move) -> dict:
    """The summary with each output path mapped through ``move``."""
    outputs = summary["outputs"]
    moved = {
        "bag": move(outputs["bag"]),
        "frames": move(outputs["frames"]),
        "pictures": [move(p) for p in outputs["pictures"]],
    }
    return {**summary, "outputs": moved}


def _write_artefacts(result: dict, out: Path) -> dict:
    """Write a worker's artefacts under ``out`` (as the local engine would); the summary."""
    out.mkdir(parents=True, exist_ok=True)
    for relative, data in result["files"].items():
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    summary = _relocated(result["summary"], lambda path: str(out / path))
    write_json(out / "summary.json", summary)
    return summary


# Ray (2.60) replaces a node address of 127.0.0.1 by the machine's network address ("remotely
# reachable") and binds its servers (GCS, raylet, workers) there, unless clustering is off for
# the process, as Ray has it on macOS and Windows: then the node's address is the loopback one
# and every Ray server listens on 127.0.0.1 only. Ray reads this when it is imported.
LOOPBACK_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def start_local_ray(**init_options):
    """A Ray instance of this machine only: every server on 127.0.0.1, no dashboard, no usage
    statistics (unless ``RAY_USAGE_STATS_ENABLED`` says otherwise). Refused, in one line, when
    Ray was imported before lead_ros could keep it on loopback."""
    imported = sys.modules.get("ray")
    if imported is not None and imported._private.ray_constants.ENABLE_RAY_CLUSTER:
        raise RuntimeError(
            f"Ray was imported before lead_ros could keep it on 127.0.0.1: set {LOOPBACK_ONLY}=0 "
            "before importing ray, or start Ray yourself and pass --ray-address"
        )
    os.environ[LOOPBACK_ONLY] = "0"
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    ray.init(include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False, **init_options)
    addresses = sorted({node["NodeManagerAddress"] for node in ray.nodes()})
    if addresses != ["127.0.0.1"]:
        ray.shutdown()
        raise RuntimeError(f"the local Ray instance came up on {', '.join(addresses)}, not 127.0.0.1 only; shut down")
    return ray


def start_ray(options: FleetOptions):
    """Connect to Ray; returns (ray module, started here, start-up seconds)."""
    if options.address:
        import ray

        if ray.is_initialized():
            return ray, False, 0.0
        started = time.perf_counter()
        ray.init(address=options.address, log_to_driver=False)
        return ray, True, time.perf_counter() - started
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        return ray, False, 0.0
    started = time.perf_counter()
    return start_local_ray(), True, time.perf_counter() - started


def evaluate_on_ray(
    bags: list[Path], out_dir: Path, spec: PlannerSpec, options: EvaluationOptions, fleet: FleetOptions
) -> dict:
    """Evaluate ``bags`` on Ray actors into ``out_dir`` (which exists and is empty); writes and
    returns the fleet summary. Ctrl-C: the bags not finished are marked interrupted, the
    summary is written, and KeyboardInterrupt propagates."""
    wall_start = time.perf_counter()
    outs = bag_output_dirs(bags, out_dir)
    results: dict[int, dict] = {}
    busy: dict[int, float] = {}  # actor number -> seconds spent on bags
    frames_by_actor: dict[int, int] = {}
    startup_s, ray, started_here = 0.0, None, False
    progress = tqdm(total=len(bags), desc="bags", unit="bag", disable=not options.progress)
    try:
        ray, started_here, startup_s = start_ray(fleet)
        threads = max(1, int(fleet.cpus_per_worker))
        actor_class = ray.remote(num_cpus=fleet.cpus_per_worker, num_gpus=fleet.gpus_per_worker)(BagWorker)
        quiet = replace(options, progress=False)  # one progress bar, the driver's

        def new_actor():
            return actor_class.remote(spec, quiet, threads, fleet.kill_once_marker)

        attempts = dict.fromkeys(range(len(bags)), 0)
        todo = deque(range(len(bags)))
        idle = deque((k, new_actor()) for k in range(fleet.workers))
        next_actor = len(idle)
        in_flight: dict = {}  # object ref -> (bag index, actor number, actor)
        while todo or in_flight:
            while todo and idle:
                index = todo.popleft()
                number, actor = idle.popleft()
                attempts[index] += 1
                in_flight[actor.evaluate.remote(str(bags[index]))] = (index, number, actor)
                log.info("%s: sent to worker %d (bags in flight: %d)", bags[index], number, len(in_flight))
            (ref,), _ = ray.wait(list(in_flight), num_returns=1)
            index, number, actor = in_flight.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayActorError as error:
                ray.kill(actor, no_restart=True)
                idle.append((next_actor, new_actor()))
                next_actor += 1
                if attempts[index] <= fleet.max_retries:
                    log.warning(
                        "%s: the worker died (%s); retrying with a new worker (attempt %d)",
                        bags[index],
                        type(error).__name__,
                        attempts[index] + 1,
                    )
                    todo.appendleft(index)
                    continue
                result = {
                    "bag": str(bags[index]),
                    "error": f"{bags[index]}: the worker evaluating it died {attempts[index]} times; given up",
                }
            else:
                idle.append((number, actor))
            if "error" in result:
                log.error("%s", result["error"])
                results[index] = result
            else:
                results[index] = _write_artefacts(result, outs[index])
                if results[index].get("incomplete"):  # frames so far kept, the bag counted as failed
                    log.error("%s", results[index]["error"])
                busy[number] = busy.get(number, 0.0) + result["busy_s"]
                frames_by_actor[number] = frames_by_actor.get(number, 0) + results[index]["planned"]
            progress.update()
    except KeyboardInterrupt:
        _finish(out_dir, bags, results, wall_start, startup_s, busy, frames_by_actor, fleet)
        raise
    finally:
        progress.close()
        if started_here:
            ray.shutdown()
    return _finish(out_dir, bags, results, wall_start, startup_s, busy, frames_by_actor, fleet)


def _finish(out_dir, bags, results, wall_start, startup_s, busy, frames_by_actor, fleet) -> dict:
    summaries = [results.get(i, {"bag": str(bag), "interrupted": True}) for i, bag in enumerate(bags)]
    per_worker = {f"worker_{k}": frames_by_actor[k] / busy[k] for k in sorted(busy) if busy[k] > 0}
    overall = fleet_summary(
        summaries, time.perf_counter() - wall_start, engine="ray", workers=fleet.workers, per_worker_fps=per_worker
    )
    overall["ray_startup_s"] = startup_s
    write_json(out_dir / "fleet_summary.json", overall)
    log.info("fleet summary (%s)\n%s", out_dir / "fleet_summary.json", format_fleet_summary(overall))
    return overall
