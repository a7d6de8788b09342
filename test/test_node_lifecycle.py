"""lead_planner's lifecycle, driven from a separate client through ~/change_state and
~/get_state while inputs keep arriving: what is (not) published in each state, configure
failure and retry, shutdown from every state."""

from __future__ import annotations

import shutil
import threading
import time

import pytest
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState

from conftest import DATA, read_rgb
from ros_harness import Harness

STITCHED = read_rgb(DATA / "images" / "case_01.png")  # 256 x 1920
QUIET_S = 1.5  # long enough for several frames to have been planned, were the node planning


class LifecycleClient:
    """What a lifecycle manager does: ChangeState / GetState service calls."""

    def __init__(self, harness: Harness) -> None:
        base = f"{harness.namespace}/lead_planner"
        self._change = harness.driver.create_client(ChangeState, f"{base}/change_state")
        self._get = harness.driver.create_client(GetState, f"{base}/get_state")
        assert self._change.wait_for_service(20) and self._get.wait_for_service(20)

    @staticmethod
    def _call(client, request, timeout: float = 120.0):
        future = client.call_async(request)
        deadline = time.monotonic() + timeout
        while not future.done():
            assert time.monotonic() < deadline, "lifecycle service did not answer"
            time.sleep(0.01)
        return future.result()

    def change(self, transition: int) -> bool:
        return self._call(self._change, ChangeState.Request(transition=Transition(id=transition))).success

    def state(self) -> str:
        return self._call(self._get, GetState.Request()).current_state.label


class Stream:
    """Frames with odometry every 0.3 s from the harness' driver, until closed."""

    def __init__(self, harness: Harness) -> None:
        self._harness, self._stop = harness, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._harness.send_frame({"image": STITCHED}, self._harness.now_ns())
            self._stop.wait(0.3)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture
def make_harness(ros_context):
    made = []

    def make(planner, **params):
        made.append(
            Harness(
                ros_context,
                planner,
                bring_up=False,
                camera_mode="stitched",
                camera_qos="reliable",
                diagnostics_period_s=0.1,
                **params,
            )
        )
        return made[-1]

    yield make
    for harness in made:
        harness.close()


def _processing_message(harness: Harness) -> str:
    count = len(harness.diagnostics)
    harness.wait_for(lambda: len(harness.diagnostics) > count, what="a fresh diagnostics message")
    processing = next(s for s in harness.diagnostics[-1].status if s.name.endswith(": processing"))
    return processing.message


def _stamp_ns(path) -> int:
    return path.header.stamp.sec * 10**9 + path.header.stamp.nanosec


def test_every_transition_while_inputs_keep_arriving(make_harness, planner):
    h = make_harness(planner)
    client = LifecycleClient(h)
    stream = Stream(h)
    try:
        assert client.state() == "unconfigured"
        assert h.node.planner is None and not h.node.get_subscriptions_info_by_topic(
            f"{h.namespace}/lead_planner/input/image"
        )
        time.sleep(QUIET_S)
        assert not h.paths and _processing_message(h) == "unconfigured: not planning"

        assert client.change(Transition.TRANSITION_CONFIGURE) and client.state() == "inactive"
        assert h.node.planner is planner
        h.wait_for_subscribers()
        time.sleep(QUIET_S)  # inputs arrive, nothing is planned or published
        assert not h.paths and _processing_message(h) == "inactive: not planning"

        activated_ns = h.now_ns()
        assert client.change(Transition.TRANSITION_ACTIVATE) and client.state() == "active"
        h.wait_paths(2)
        # Nothing received while inactive is planned later.
        assert all(_stamp_ns(p) >= activated_ns for p in h.paths)

        assert client.change(Transition.TRANSITION_DEACTIVATE) and client.state() == "inactive"
        published = len(h.paths)
        time.sleep(QUIET_S)
        assert len(h.paths) == published and _processing_message(h) == "inactive: not planning"

        reactivated_ns = h.now_ns()
        assert client.change(Transition.TRANSITION_ACTIVATE) and client.state() == "active"
        h.wait_paths(published + 1)
        assert all(_stamp_ns(p) >= reactivated_ns for p in h.paths[published:])

        assert client.change(Transition.TRANSITION_DEACTIVATE)
        assert client.change(Transition.TRANSITION_CLEANUP) and client.state() == "unconfigured"
        assert h.node.planner is None
        h.wait_for(lambda: h.cameras["image"].get_subscription_count() == 0, what="subscriptions removed")
        published = len(h.paths)
        time.sleep(QUIET_S)
        assert len(h.paths) == published

        assert client.change(Transition.TRANSITION_CONFIGURE) and client.state() == "inactive"
        assert client.change(Transition.TRANSITION_ACTIVATE)
        h.wait_paths(published + 1)
        assert client.change(Transition.TRANSITION_ACTIVE_SHUTDOWN) and client.state() == "finalized"
        assert h.node.planner is None
        published = len(h.paths)
        time.sleep(QUIET_S)
        assert len(h.paths) == published
    finally:
        stream.close()


def test_configure_failure_leaves_the_node_unconfigured_and_can_be_retried(make_harness, navsim_weights, tmp_path):
    later = tmp_path / "arrives_later"
    h = make_harness(None, weights=str(later), device="cpu")
    client = LifecycleClient(h)
    assert not client.change(Transition.TRANSITION_CONFIGURE)
    assert client.state() == "unconfigured"
    assert "is neither an existing path" in h.node.configure_error
    model = lambda: next(s for s in h.diagnostics[-1].status if s.name.endswith(": model"))  # noqa: E731
    h.wait_for(lambda: h.diagnostics and model().message.startswith("configure failed"), what="model diagnostics")
    assert model().level == model().ERROR

    shutil.copytree(navsim_weights, later)
    assert client.change(Transition.TRANSITION_CONFIGURE) and client.state() == "inactive"
    assert h.node.planner is not None and h.node.configure_error == ""
    assert client.change(Transition.TRANSITION_INACTIVE_SHUTDOWN) and client.state() == "finalized"
    assert h.node.planner is None


def test_shutdown_from_unconfigured(make_harness, planner):
    h = make_harness(planner)
    client = LifecycleClient(h)
    assert client.change(Transition.TRANSITION_UNCONFIGURED_SHUTDOWN) and client.state() == "finalized"
    assert not client.change(Transition.TRANSITION_CONFIGURE)  # finalized is final
