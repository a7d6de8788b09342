"""Memory over repeated model loads: does everything a planner holds come back?

    python benchmarks/reconfigure_memory.py --weights W [--cycles 20] [--what node planner]

- node: one ``lead_planner`` lifecycle node in this process, cycled configure -> activate ->
  one frame planned with the node's planner -> deactivate -> cleanup, as a lifecycle
  manager that resets the node would;
- planner: a ``Planner`` created, used for one frame and closed, in the same process.

Prints the RSS after each cycle (for the node also after each configure, model loaded) and
the growth of the after-cycle RSS from the first cycle to the last; exits 1 when that growth
exceeds ``--limit-mb`` (default 50). The first cycle pays for one-off costs
(imports, the graph export into the cache, allocator pools), so the bound is measured from it.
Run under the DDS settings of ``make`` (loopback only) when ``node`` is included.
"""

from __future__ import annotations

import argparse
import gc
import sys

import psutil

from lead_ros.observation import Observation
from lead_ros.planner import Planner
from lead_ros.tools.synthetic_cameras import reference_cameras


def _rss_mb() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 1e6


def _frame() -> Observation:
    return Observation(5.0, 0.2, 1, cameras=reference_cameras())


def planner_cycles(weights: str, cycles: int) -> tuple[list[float], list[float]]:
    rss = []
    for _ in range(cycles):
        with Planner(weights, "cpu") as planner:
            planner.plan(_frame())
        rss.append(_rss_mb())
    return rss, []


def node_cycles(weights: str, cycles: int) -> tuple[list[float], list[float]]:
    import rclpy
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter

    from lead_ros.ros.node import LeadPlannerNode

    context = rclpy.Context()
    rclpy.init(context=context)
    node = LeadPlannerNode(
        context=context,
        parameter_overrides=[
            Parameter("weights", value=weights),
            Parameter("device", value="cpu"),
            Parameter("autostart", value=False),
        ],
    )
    rss, configured = [], []
    try:
        for cycle in range(cycles):
            for transition in (node.trigger_configure, node.trigger_activate):
                if transition() != TransitionCallbackReturn.SUCCESS:
                    raise RuntimeError(f"cycle {cycle}: {transition.__name__} failed: {node.configure_error}")
            configured.append(_rss_mb())
            node.planner.plan(_frame())
            node.trigger_deactivate()
            node.trigger_cleanup()
            rss.append(_rss_mb())
    finally:
        node.close()
        node.destroy_node()
        context.try_shutdown()
    return rss, configured


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--what", nargs="+", choices=["node", "planner"], default=["node", "planner"])
    parser.add_argument("--limit-mb", type=float, default=50.0)
    args = parser.parse_args()
    failed = False
    for what in args.what:
        rss, configured = (node_cycles if what == "node" else planner_cycles)(args.weights, args.cycles)
        growth = rss[-1] - rss[0]
        failed |= growth > args.limit_mb
        if configured:
            print(f"{what}: RSS after configure 1..{len(rss)} (MB): {' '.join(f'{r:.0f}' for r in configured)}")
        print(f"{what}: RSS after cycle 1..{len(rss)} (MB): {' '.join(f'{r:.0f}' for r in rss)}")
        print(
            f"{what}: growth from cycle 1 to {len(rss)}: {growth:+.1f} MB (limit {args.limit_mb:g}): "
            + ("OK" if growth <= args.limit_mb else "EXCEEDED")
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
