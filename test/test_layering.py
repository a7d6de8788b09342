"""The package layout is the architecture: imports point down only, and never in a circle.

Layers, top to bottom: ``tools`` (the command line) -> ``bag`` (bag tools) -> ``ros`` (the
node and message conversion) -> the pure core. The core never imports rclpy or a ROS message
package, so the planner runs where ROS is not installed (the GPU machine, a notebook, a Ray
worker). Inside the core each entry has a rank of its own: a module may import its own entry
and entries of a lower rank, never a higher one. And no module imports, however indirectly,
one that imports it (function-local and TYPE_CHECKING imports count: a cycle hidden in a
function is still a cycle of concepts).

``RANKS`` is the one table: a new top-level module or package of ``lead_ros`` must be entered
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

# Top-level entries of lead_ros (module or package) -> rank, low to high. Ranks up to CORE_TOP
# are the pure core; then the ROS layer, the bag tools, the command line.
RANKS = {
    "frames": 0,  # CARLA <-> ISO 8855, quaternions
    "camera_layout": 0,  # camera names, anchor, stitch order, image errors
    "perception": 0,  # what the model perceived
    "golden": 0,  # golden cases shipped with the package
    "observation": 1,  # planner input and output types
    "model": 2,  # LTFv6, its runtimes and their registry
    "weights": 3,  # checkpoints: sources, manifests, synthetic recipe
    "node_config": 4,  # the node's parameters
    "cameras": 5,  # camera rigs, calibration, reprojection
    "preprocessing": 6,  # images -> model input
    "inputs": 6,  # synchronization, command, route
    "visualization": 6,  # pictures of plans
    "planner": 7,  # the Planner
    "ros": 8,
    "bag": 9,
    "tools": 10,
}
CORE_TOP = 7
LAYER_NAMES = {8: "ros", 9: "bag", 10: "tools"}
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
    """The rank of a ``lead_ros`` module name (None: not in lead_ros or the package root)."""
    parts = name.split(".")
    if parts[0] != "lead_ros" or len(parts) < 2:
        return None
    return RANKS.get(parts[1], -1)


def describe(name: str) -> str:
    """A module's place, for messages: its layer, or its core entry and rank."""
    rank = layer_of(name)
    return LAYER_NAMES.get(rank) or f"core entry {name.split('.')[1]} (rank {rank})"


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
            violations.append(Violation(module, 0, "-", "not placed in a layer: add it to RANKS"))
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, name in imported_names(tree, module, path.name == "__init__.py"):
            target = layer_of(name)
            if target is not None and target > own:
                why = f"{describe(module)} may not import the higher {describe(name)}"
                violations.append(Violation(module, line, name, why))
            elif target is None and own <= CORE_TOP and is_ros_only(name):
                violations.append(Violation(module, line, name, "the core never imports ROS"))
    return violations


def import_graph(package_root: Path) -> dict[str, set[str]]:
    """Module -> the lead_ros modules it imports (``from pkg import x`` counts as pkg.x when x
    is a module, else as pkg)."""
    sources = {module_name(package_root, p): p for p in sorted(package_root.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for module, path in sources.items():
        targets = set()
        for _, name in imported_names(ast.parse(path.read_text()), module, path.name == "__init__.py"):
            while name and name not in sources:
                name = name.rpartition(".")[0]
            if name and name not in (module, "lead_ros"):
                targets.add(name)
        graph[module] = targets
    return graph


def import_cycles(package_root: Path) -> list[list[str]]:
    """Each set of modules that import each other in a circle: the strongly connected
    components of more than one module (Tarjan's algorithm), sorted."""
    graph = import_graph(package_root)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(cycles)


def test_every_import_points_down():
    violations = check_layering(REPO / "lead_ros")
    assert not violations, "\n".join(map(str, violations))


def test_no_module_imports_itself_through_others():
    cycles = import_cycles(REPO / "lead_ros")
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


PLANTED_CYCLES = {
    "direct": {"frames.py": "import lead_ros.camera_layout\n", "camera_layout.py": "from lead_ros import frames\n"},
    "type-checking-and-function-local": {
        "camera_layout.py": "import typing\nif typing.TYPE_CHECKING:\n    from lead_ros.frames import ISO\n",
        "frames.py": "def later():\n    from lead_ros.camera_layout import CAMERA_NAMES\n",
    },
    "three-modules": {
        "inputs/sync.py": "from lead_ros.inputs.route import RouteTracker\n",
        "inputs/route.py": "from lead_ros.inputs.command import CommandTracker\n",
        "inputs/command.py": "from lead_ros.inputs import sync\n",
    },
}


@pytest.mark.parametrize("case", sorted(PLANTED_CYCLES))
def test_a_planted_import_cycle_is_caught(tmp_path, case):
    """Cycles inside one rank or one package, which the ranks cannot see."""
    files = PLANTED_CYCLES[case]
    root = _plant(tmp_path, {})
    for relative, source in files.items():
        (root / relative).write_text((root / relative).read_text() + source)
    expected = sorted(f"lead_ros.{r.removesuffix('.py').replace('/', '.')}" for r in files)
    assert import_cycles(root) == [expected]
    assert check_layering(root) == []


def test_every_top_level_entry_has_a_layer_and_few_modules_stay_at_the_top():
    root = REPO / "lead_ros"
    entries = {p.stem for p in root.glob("*.py") if p.name != "__init__.py"}
    entries |= {p.name for p in root.iterdir() if (p / "__init__.py").is_file()}
    assert entries == set(RANKS), f"unplaced: {entries - set(RANKS)}, stale: {set(RANKS) - entries}"
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
        ("frames.py", "from lead_ros.ros.decoding import stamp_to_ns\n", "lead_ros.ros.decoding.stamp_to_ns"),
        ("inputs/route.py", "from ..bag import reader\n", "lead_ros.bag.reader"),
        ("inputs/__init__.py", "from .. import tools\n", "lead_ros.tools"),
        ("ros/node.py", "def later():\n    import lead_ros.tools.cli\n", "lead_ros.tools.cli"),
        ("bag/reader.py", "from lead_ros import tools\n", "lead_ros.tools"),
        ("planner.py", "import typing\nif typing.TYPE_CHECKING:\n    from rclpy.node import Node\n", "rclpy.node.Node"),
        ("model/ltfv6.py", "from sensor_msgs.msg import Image\n", "sensor_msgs.msg.Image"),
        ("model/ltfv6.py", "def later():\n    from lead_ros.planner import Planner\n", "lead_ros.planner.Planner"),
        ("camera_layout.py", "from lead_ros.preprocessing import stitch\n", "lead_ros.preprocessing.stitch"),
    ],
)
def test_a_planted_upward_import_is_caught(tmp_path, relative, source, expected):
    violations = check_layering(_plant(tmp_path, {relative: source}))
    assert [v.imported for v in violations] == [expected]


def test_an_unplaced_module_is_caught(tmp_path):
    violations = check_layering(_plant(tmp_path, {"camera_rig.py": "import numpy\n"}))
    assert [(v.module, v.why) for v in violations] == [
        ("lead_ros.camera_rig", "not placed in a layer: add it to RANKS")
    ]


def test_importing_the_whole_core_loads_no_rclpy():
    """The static check above sees lead_ros' own imports; this one also sees a third-party
    package that would pull rclpy in."""
    root = REPO / "lead_ros"
    core = sorted(module_name(root, p) for p in root.rglob("*.py") if (layer_of(module_name(root, p)) or 0) <= CORE_TOP)
    code = f"import importlib, sys\nfor m in {core!r}: importlib.import_module(m)\nassert 'rclpy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)
    assert "lead_ros.planner" in core and "lead_ros.inputs.sync" in core


def camera_name_literals(package_root: Path) -> list[str]:
    """String constants naming a camera of the layout, outside ``camera_layout.py`` (docstrings
    are expression statements and are not counted)."""
    from lead_ros.camera_layout import CAMERA_NAMES, STITCHED_IMAGE

    names = {*CAMERA_NAMES, STITCHED_IMAGE}
    found = []
    for path in sorted(package_root.rglob("*.py")):
        if path.name == "camera_layout.py":
            continue
        tree = ast.parse(path.read_text())
        docstrings = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in names and id(node) not in docstrings:
                found.append(f"{path.relative_to(package_root.parent)}:{node.lineno} {node.value!r}")
    return found


def test_only_the_camera_layout_names_cameras():
    assert camera_name_literals(REPO / "lead_ros") == []


def test_a_planted_camera_name_is_caught(tmp_path):
    root = _plant(tmp_path, {"frames.py": '"""About f0."""\nFRONT = "f0"\n'})
    assert camera_name_literals(root) == ["lead_ros/frames.py:2 'f0'"]
