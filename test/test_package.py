"""Packaging: package.xml, a real colcon build, the launch file's arguments, lint config."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO

EXEC_DEPENDS = {
    "rclpy",
    "sensor_msgs",
    "nav_msgs",
    "geometry_msgs",
    "std_msgs",
    "diagnostic_msgs",
    "visualization_msgs",
    "python3-numpy",
    "python3-opencv",
    "python3-yaml",
}
LAUNCH_ARGUMENTS = {
    "params_file",
    "weights",
    "device",
    "precision",
    "runtime",
    "namespace",
    "node_name",
    "use_sim_time",
    "log_level",
    "autostart",
    "rviz",
}


def test_package_xml_is_valid_format_3_ament_python():
    from catkin_pkg.package import parse_package

    package = parse_package(str(REPO / "package.xml"))
    package.validate()
    assert package.package_format == 3 and package.name == "lead_ros"
    assert [lic for lic in package.licenses] == ["Apache-2.0"]
    assert package.get_build_type() == "ament_python"
    assert len(package.description.split()) > 20
    assert EXEC_DEPENDS <= {d.name for d in package.exec_depends}


def _copy_sources(target: Path) -> None:
    """The files a user's clone has (no virtualenv, no build outputs)."""
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for name in tracked.splitlines():
        if name.startswith("test/data/"):
            continue
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def test_colcon_build_installs_package(tmp_path):
    colcon = Path(sys.executable).with_name("colcon")
    assert colcon.exists(), "colcon-core is part of requirements/dev.txt"
    workspace = tmp_path / "ws"
    _copy_sources(workspace / "src" / "lead_ros")
    env = {**os.environ, "COLCON_HOME": str(tmp_path / "colcon_home"), "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [str(colcon), "build", "--event-handlers", "console_direct-", "--base-paths", "src"],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    share = workspace / "install" / "lead_ros" / "share" / "lead_ros"
    for relative in (
        "package.xml",
        "launch/lead_ros.launch.py",
        "config/lead_ros.yaml",
        "config/fastdds_loopback.xml",
        "config/lead_ros.rviz",
    ):
        assert (share / relative).is_file(), relative
    index = workspace / "install" / "lead_ros" / "share" / "ament_index" / "resource_index" / "packages" / "lead_ros"
    assert index.is_file()
    scripts = workspace / "install" / "lead_ros" / "lib" / "lead_ros"
    assert (scripts / "lead_planner").is_file() and (scripts / "lead-ros").is_file()
    manifests = list((workspace / "install" / "lead_ros").rglob("lead_ros/data/manifests/navsim.json"))
    assert manifests, "the state-dict manifest ships as package data"
    golden = manifests[0].parent.parent / "ltfv6_reference"
    shipped = (
        "cases.json",
        "images/case_05.png",
        "preprocessing/expected_q30.jpg",
        "variants/mixed/cases.json",
        "aux/aux_cases.json",
        "aux/case_07_centernet.npz",
    )
    for relative in shipped:
        assert (golden / relative).is_file(), f"golden data {relative} ships as package data"


def _launch_arguments() -> dict[str, str]:
    """Literal DeclareLaunchArgument names and descriptions in the launch file."""
    tree = ast.parse((REPO / "launch" / "lead_ros.launch.py").read_text())
    found = {}
    for node in ast.walk(tree):
        func = getattr(node, "func", None)
        if isinstance(node, ast.Call) and getattr(func, "id", None) == "DeclareLaunchArgument":
            if isinstance(node.args[0], ast.Constant):
                description = next(k.value for k in node.keywords if k.arg == "description")
                text = description.value if isinstance(description, ast.Constant) else ast.unparse(description)
                found[node.args[0].value] = text
    return found


def test_launch_file_declares_the_documented_arguments():
    arguments = _launch_arguments()
    assert set(arguments) >= LAUNCH_ARGUMENTS
    assert all(len(text) > 10 for text in arguments.values()), "every argument has a description"


def test_only_the_launch_file_imports_launch_modules():
    forbidden = ("launch", "launch_ros", "message_filters", "cv_bridge", "tf2_ros", "rosbag2_py")
    for path in list((REPO / "lead_ros").rglob("*.py")) + list((REPO / "test").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            bad = [n for n in names if n.split(".")[0] in forbidden]
            assert not bad, f"{path} imports {bad}"


def _make_dry_run(*arguments: str) -> subprocess.CompletedProcess:
    """``make -n``: what make would run, nothing run. ROS_DISTRO from the command line only."""
    env = {k: v for k, v in os.environ.items() if k not in ("ROS_DISTRO", "MAKEFLAGS", "MAKELEVEL")}
    return subprocess.run(
        ["make", "--no-print-directory", "-n", *arguments],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_each_ros_distribution_has_its_own_venv_and_pins():
    """Jazzy by default in .venv; Kilted in .venv-kilted; never one venv for both."""
    for arguments, venv, distro in (((), ".venv", "jazzy"), (("ROS_DISTRO=kilted",), ".venv-kilted", "kilted")):
        planned = _make_dry_run("setup", *arguments, "SETUP_HASH=dry-run")
        assert planned.returncode == 0, planned.stderr
        assert f"{venv}/bin/python -m pip install --quiet -r requirements/ros-{distro}.txt" in planned.stdout
        assert f"echo {distro} > {venv}/.ros-distro" in planned.stdout
    assert (REPO / "requirements" / "ros-jazzy.txt").read_text().count("==7.1.6") == 1  # rclpy 7.x: Jazzy


def test_an_unknown_ros_distribution_is_one_line():
    planned = _make_dry_run("test", "ROS_DISTRO=humble")
    assert planned.returncode == 2 and planned.stdout == ""
    (line,) = planned.stderr.strip().splitlines()
    assert line.startswith("Makefile:") and "*** ROS_DISTRO=humble is not supported: use one of jazzy kilted." in line
