"""The node's last line of defence: an exception that escapes a subscription callback, a
timer or the inference worker is logged once per (place, exception type), counted in
/diagnostics as ERROR, and the node goes on with the next message. Failures are injected at
each place; every other node test fails if its node counted one (``ros_harness``)."""

from __future__ import annotations

import time

import pytest
from diagnostic_msgs.msg import DiagnosticStatus

import lead_ros.ros.node as node_module
from conftest import DATA, read_rgb

STITCHED = read_rgb(DATA / "images" / "case_01.png")
MS = 1_000_000
FAILURES = 2


class LoggerSpy:
    """The node's logger, recording error lines."""

    def __init__(self, logger) -> None:
        self._logger, self.errors = logger, []

    def error(self, message: str) -> None:
        self.errors.append(message)
        self._logger.error(message)

    def __getattr__(self, name: str):
        return getattr(self._logger, name)


def _fail_first_calls(owner, attribute: str, monkeypatch) -> None:
    """``owner.attribute`` raises RuntimeError on its first FAILURES calls, then works."""
    original = getattr(owner, attribute)
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) <= FAILURES:
            raise RuntimeError(f"injected failure {len(calls)}")
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, attribute, flaky)


# place in the log and diagnostics -> (node parameters, what to break, extra input per round)
PLACES = {
    "camera image": ({}, ("intake", "serialized_camera"), None),
    "odometry": ({}, ("intake", "odometry"), None),
    "imu": ({"acceleration_source": "imu"}, ("intake", "imu"), "imu"),
    "command": ({}, ("intake", "command"), "command"),
    "route": ({"command_input": "route"}, ("intake", "route_message"), "route"),
    "flush timer": ({}, ("intake", "flush"), None),
    "diagnostics timer": ({}, ("intake", "command_state"), None),
    "inference worker": ({}, (node_module, "plan_messages"), None),
}


@pytest.mark.parametrize("place", list(PLACES))
def test_an_escaping_exception_is_logged_once_counted_and_the_node_goes_on(harness, monkeypatch, place):
    params, (owner, attribute), extra = PLACES[place]
    h = harness(
        expect_exceptions=True, camera_mode="stitched", camera_qos="reliable", diagnostics_period_s=0.1, **params
    )
    spy = LoggerSpy(h.node.get_logger())
    monkeypatch.setattr(h.node, "get_logger", lambda: spy)
    _fail_first_calls(h.node.intake if owner == "intake" else owner, attribute, monkeypatch)
    key = f"{place}: RuntimeError"
    deadline = time.monotonic() + 60
    while not (h.paths and h.node.stats.snapshot()["exceptions"].get(key, 0) >= FAILURES):
        assert time.monotonic() < deadline, f"no path after the failures: {h.node.stats.snapshot()}"
        stamp = h.now_ns()
        if extra == "imu":
            for dt in (-100, 20):
                h.send_imu(stamp + dt * MS, 0.5)
        elif extra == "command":
            h.send_command(1)
        elif extra == "route":
            h.send_route([(0.0, 0.0), (50.0, 0.0)])
        h.send_frame({"image": STITCHED}, stamp)
        time.sleep(0.3)
    assert h.node.stats.snapshot()["exceptions"] == {key: FAILURES}, "counted, and nothing else escaped"
    logged = [line for line in spy.errors if line.startswith("unexpected RuntimeError")]
    assert len(logged) == 1, f"logged once per (place, type): {spy.errors}"
    assert f"in {place} at " in logged[0] and "injected failure 1" in logged[0] and "\n" not in logged[0]

    def reported() -> bool:
        for array in h.diagnostics:
            processing = next(s for s in array.status if s.name.endswith(": processing"))
            values = {kv.key: kv.value for kv in processing.values}
            if values.get(f"exception {key}") == str(FAILURES):
                return processing.level == DiagnosticStatus.ERROR and "unexpected exception" in processing.message
        return False

    h.wait_for(reported, what="the exceptions reported as ERROR in /diagnostics")
