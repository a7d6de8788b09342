"""A camera rig through the node and evaluate-bag: 4:3 cameras of their own calibration are
planned exactly as ``Planner.plan`` with the rig's reprojection plans them, a camera of the
wrong size is refused naming the rig, an unreadable rig fails configure in one line."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import yaml
from rig_factory import uniform_rig

from bag_factory import MS, START, BagSpec, odometry, raw_image
from lead_ros.bag.compare import read_paths
from lead_ros.bag.evaluate import OUTPUT_PATH_TOPIC, EvaluationOptions, evaluate_bag
from lead_ros.bag.reader import default_topics
from lead_ros.cameras.reprojection import Reprojection
from lead_ros.cameras.rig import load_rig
from lead_ros.node_config import NodeConfig
from lead_ros.observation import Command, Observation
from lead_ros.preprocessing import CAMERA_NAMES

WIDTH, HEIGHT = 640, 480


@pytest.fixture(scope="module")
def rig_file(tmp_path_factory):
    """Four 640x480 plumb_bob cameras looking about where nuPlan's do."""
    document = uniform_rig(k=[520.0, 0, 320, 0, 520.0, 240, 0, 0, 1], d=(-0.2, 0.05, 0.0005, -0.0003, 0.0),
                           size=(WIDTH, HEIGHT), rpy=(0.0, 2.0, 0.0))  # fmt: skip
    path = tmp_path_factory.mktemp("rig") / "rig.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture(scope="module")
def cameras():
    rng = np.random.default_rng(11)
    base = cv2.GaussianBlur(rng.integers(0, 256, (HEIGHT, WIDTH, 3), np.uint8), (9, 9), 3)
    return {name: np.roll(base, 40 * k, axis=1) for k, name in enumerate(CAMERA_NAMES)}


def _assert_plan(path, plan):
    got = np.array([[p.pose.position.x, p.pose.position.y] for p in path.poses])
    np.testing.assert_allclose(got, plan.waypoints, atol=1e-4)


def test_the_node_plans_rig_cameras_through_the_reprojection(harness, planner, rig_file, cameras):
    h = harness(camera_rig_file=str(rig_file), missing_camera_policy="fill_black")
    reprojection = Reprojection(load_rig(rig_file))
    assert h.node.intake.rig_sizes == dict.fromkeys(CAMERA_NAMES, (WIDTH, HEIGHT))
    stamp = h.now_ns()
    h.send_frame(cameras, stamp, speed=4.0)
    (path,) = h.wait_paths(1)
    expected = planner.plan(Observation(4.0, 0.0, Command.UNKNOWN, cameras=tuple(cameras.values())),
                            reprojection=reprojection)  # fmt: skip
    _assert_plan(path, expected)
    # A missing side camera under fill_black: black in the virtual image.
    stamp = h.now_ns()
    h.send_frame({n: img for n, img in cameras.items() if n != "r0"}, stamp, speed=4.0)
    paths = h.wait_paths(2, timeout=30)
    filled = tuple(None if n == "r0" else cameras[n] for n in CAMERA_NAMES)
    _assert_plan(paths[1], planner.plan(Observation(4.0, 0.0, Command.UNKNOWN, cameras=filled),
                                        reprojection=reprojection))  # fmt: skip
    # A camera of another size than the rig's is refused at intake, naming the rig.
    wrong = dict(cameras, f0=np.zeros((HEIGHT, WIDTH + 16, 3), np.uint8))
    h.send_frame(wrong, h.now_ns())
    h.wait_for(lambda: h.failures().get("bad_input", 0) >= 1, what="bad_input")
    assert "camera f0: 656x480 pixels; the camera rig says 640x480" in h.node.stats.snapshot()["last_error"]
    assert h.node.stats.snapshot()["inputs"]["f0"][1] == 1  # rejected count


def test_an_unreadable_rig_fails_configure_in_one_line(harness, tmp_path):
    h = harness(camera_rig_file=str(tmp_path / "missing.yaml"), bring_up=False)
    assert not h.node.bring_up()
    assert h.node.configure_error.startswith(f"camera rig {tmp_path / 'missing.yaml'}: cannot read it")
    assert "\n" not in h.node.configure_error


def test_evaluate_bag_uses_the_same_reprojection(tmp_path, planner, rig_file, cameras):
    bag = BagSpec()
    frames = [START + k * 100 * MS for k in range(2)]
    for j in range(-10, 15):
        ns = START + j * 20 * MS
        bag.add(ns, "odometry", "nav_msgs/msg/Odometry", odometry(ns, 3.0))
    for ns in frames:
        for name, image in cameras.items():
            bag.add(ns + 1, name, "sensor_msgs/msg/Image", raw_image(image, ns))
    out = tmp_path / "out"
    out.mkdir()
    options = EvaluationOptions(config=NodeConfig.from_values({"camera_rig_file": str(rig_file)}),
                                topics=default_topics(), progress=False)  # fmt: skip
    summary = evaluate_bag(bag.write(tmp_path / "bag"), out, planner, options)
    assert summary["planned"] == 2, summary
    expected = planner.plan(Observation(3.0, 0.0, Command.UNKNOWN, cameras=tuple(cameras.values())),
                            reprojection=Reprojection(load_rig(rig_file)))  # fmt: skip
    for waypoints in read_paths(out / "output_bag", OUTPUT_PATH_TOPIC).values():
        np.testing.assert_allclose(waypoints[:, :2], expected.waypoints, atol=1e-4)
