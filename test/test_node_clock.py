"""/diagnostics runs on the steady clock: with use_sim_time and /clock stopped while inputs
keep arriving, diagnostics go on and say that the clock stopped (they used to go silent)."""

from __future__ import annotations

import time

from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock

from lead_ros.ros.encoding import ns_to_stamp

PERIOD_S = 0.2
SIM_START_NS = 1_000 * 10**9


def _inputs_status(array) -> DiagnosticStatus:
    return next(s for s in array.status if s.name.endswith(": inputs"))


def test_diagnostics_go_on_and_warn_while_sim_time_stands_still(harness):
    h = harness(camera_mode="stitched", diagnostics_period_s=PERIOD_S)
    h.node.set_parameters([Parameter("use_sim_time", value=True)])
    clock = h.driver.create_publisher(Clock, "/clock", 10)
    h.wait_for(lambda: clock.get_subscription_count() > 0, what="/clock subscriber")
    clock.publish(Clock(clock=ns_to_stamp(SIM_START_NS)))
    h.wait_for(lambda: h.node.get_clock().now().nanoseconds == SIM_START_NS, what="sim time")
    before = len(h.diagnostics)
    deadline = time.monotonic() + 20
    while not any("has not advanced" in _inputs_status(d).message for d in h.diagnostics[before:]):
        assert time.monotonic() < deadline, [_inputs_status(d).message for d in h.diagnostics[before:]]
        h.send_odometry(SIM_START_NS, 5.0)  # messages keep arriving, the clock does not move
        time.sleep(PERIOD_S / 2)
    stuck = next(d for d in h.diagnostics[before:] if "has not advanced" in _inputs_status(d).message)
    assert _inputs_status(stuck).level == DiagnosticStatus.WARN
    assert {kv.key: kv.value for kv in _inputs_status(stuck).values}["clock_stopped"] == "True"
    # Several diagnostics while the clock stood still: published on the steady clock.
    assert len(h.diagnostics) - before >= 3
    # The clock moves again: the warning goes away.
    after = len(h.diagnostics)
    sim = SIM_START_NS
    deadline = time.monotonic() + 20
    while not any("has not advanced" not in _inputs_status(d).message for d in h.diagnostics[after + 1 :]):
        assert time.monotonic() < deadline
        sim += int(PERIOD_S / 2 * 1e9)
        clock.publish(Clock(clock=ns_to_stamp(sim)))
        h.send_odometry(sim, 5.0)
        time.sleep(PERIOD_S / 2)
