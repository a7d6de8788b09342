"""The package layout is the architecture: imports point down only.

Layers, top to bottom: ``tools`` (the command line) -> ``bag`` (bag tools) -> ``ros`` (the
node and message conversion) -> the pure core. A module may import its own layer and any layer
below it, never one above. The core never imports rclpy or a ROS message package, so the
planner runs where ROS is not installed (the GPU machine, a notebook, a Ray worker).

``LAYERS`` is the one table: a new top-level module or package of ``lead_ros`` must be entered
here (the test fails until it is), which is where its place in the architecture is decided.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO

CORE, ROS, BAG, TOOLS = 0, 1, 2, 3
LAYER_NAMES = {CORE: "core", ROS: "ros", BAG: "bag", TOOLS: "tools"}

# Top-level entries of lead_ros (module or package) -> layer.
LAYERS = {
    "tools": TOOLS,
    "bag": BAG,
    "ros": ROS,
    "planner": CORE,
    "inputs": CORE,
    "preprocessing": CORE,
    "node_config": CORE,
    "weights": CORE,
    "perception": CORE,
    "observation": CORE,
    "frames": CORE,
    "model": CORE,
    "visualization": CORE,
    "golden": CORE,
    "cameras": CORE,
}
MAX_TOP_LEVEL_MODULES = 9
# Third-party top-level packages that only the ROS layer and above may import.
ROS_ONLY = {"rclpy", "rosidl_runtime_py", "rpyutils"}
ROS_ONLY_SUFFIXES = ("_msgs", "_interfaces")


@dataclass(frozen=True)
class Violation:
    module: str
    line: int
    imported: str
    why: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.imported}: {self.why}"


def module_name(package_root: Path, path: Path) -> str:
    """``lead_ros/ros/node.py`` -> ``lead_ros.ros.node``; ``__init__.py`` names its package."""
    parts = list(path.relative_to(package_root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    """Every absolute module name the tree imports (function-local and TYPE_CHECKING imports
    included), with relative imports resolved against ``module`` and ``from pkg import x``
    resolved to ``pkg.x`` (x may be a submodule; for a plain name the extra part is harmless:
    the layer is decided by the first component below ``lead_ros``)."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found += [(node.lineno, f"{base}.{alias.name}" if base else alias.name) for alias in node.names]
    return found


def layer_of(name: str) -> int | None:
    """The layer of a ``lead_ros`` module name (None: not in lead_ros or the package root)."""
    parts = name.split(".")
    if parts[0] != "lead_ros" or len(parts) < 2:
        return None
    return LAYERS.get(parts[1], -1)


def is_ros_only(name: str) -> bool:
    top = name.split(".")[0]
    return top in ROS_ONLY or top.endswith(ROS_ONLY_SUFFIXES)


def check_layering(package_root: Path) -> list[Violation]:
    """All upward imports, unplaced modules and ROS imports from the core under ``package_root``."""
    violations = []
    for path in sorted(package_root.rglob("*.py")):
        module = module_name(package_root, path)
        own = layer_of(module)
        if own is None:  # lead_ros/__init__.py: the version string only
            continue
        if own == -1:
            violations.append(Violation(module, 0, "-", "not placed in a layer: add it to LAYERS"))
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, name in imported_names(tree, module, path.name == "__init__.py"):
            target = layer_of(name)
            if target is not None and target > own:
                why = f"{LAYER_NAMES[own]} may not import the higher layer {LAYER_NAMES[target]}"
                violations.append(Violation(module, line, name, why))
            elif target is None and own == CORE and is_ros_only(name):
                violations.append(Violation(module, line, name, "the core never imports ROS"))
    return violations


def test_every_import_points_down():
    violations = check_layering(REPO / "lead_ros")
    assert not violations, "\n".join(map(str, violations))


def test_every_top_level_entry_has_a_layer_and_few_modules_stay_at_the_top():
    root = REPO / "lead_ros"
    entries = {p.stem for p in root.glob("*.py") if p.name != "__init__.py"}
    entries |= {p.name for p in root.iterdir() if (p / "__init__.py").is_file()}
    assert entries == set(LAYERS), f"unplaced: {entries - set(LAYERS)}, stale: {set(LAYERS) - entries}"
    modules = [p.name for p in root.glob("*.py") if p.name != "__init__.py"]
    assert len(modules) <= MAX_TOP_LEVEL_MODULES, modules


def _plant(tmp_path: Path, files: dict[str, str]) -> Path:
    """A copy of lead_ros with ``files`` (relative path -> source) written over it."""
    root = tmp_path / "lead_ros"
    for path in (REPO / "lead_ros").rglob("*.py"):
        target = root / path.relative_to(REPO / "lead_ros")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    for relative, source in files.items():
        (root / relative).write_text(source)
    return root


@pytest.mark.parametrize(
    ("relative", "source", "expected"),
    [
        ("frames.py", "from lead_ros.ros.conversions import stamp_to_ns\n", "lead_ros.ros.conversions.stamp_to_ns"),
        ("inputs/route.py", "from ..bag import reader\n", "lead_ros.bag.reader"),
        ("inputs/__init__.py", "from .. import tools\n", "lead_ros.tools"),
        ("ros/node.py", "def later():\n    import lead_ros.tools.cli\n", "lead_ros.tools.cli"),
        ("bag/reader.py", "from lead_ros import tools\n", "lead_ros.tools"),
        ("planner.py", "import typing\nif typing.TYPE_CHECKING:\n    from rclpy.node import Node\n", "rclpy.node.Node"),
        ("model/ltfv6.py", "from sensor_msgs.msg import Image\n", "sensor_msgs.msg.Image"),
    ],
)
def test_a_planted_upward_import_is_caught(tmp_path, relative, source, expected):
    violations = check_layering(_plant(tmp_path, {relative: source}))
    assert [v.imported for v in violations] == [expected]


def test_an_unplaced_module_is_caught(tmp_path):
    violations = check_layering(_plant(tmp_path, {"camera_rig.py": "import numpy\n"}))
    assert [(v.module, v.why) for v in violations] == [
        ("lead_ros.camera_rig", "not placed in a layer: add it to LAYERS")
    ]


def test_importing_the_whole_core_loads_no_rclpy():
    """The static check above sees lead_ros' own imports; this one also sees a third-party
    package that would pull rclpy in."""
    root = REPO / "lead_ros"
    core = sorted(
        module_name(root, p) for p in root.rglob("*.py") if layer_of(module_name(root, p)) == CORE
    )  # fmt: skip
    code = f"import importlib, sys\nfor m in {core!r}: importlib.import_module(m)\nassert 'rclpy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)
    assert "lead_ros.planner" in core and "lead_ros.inputs.sync" in core
