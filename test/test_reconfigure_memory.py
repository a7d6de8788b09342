"""Configure/cleanup cycles of the node, and planners created and closed, give their memory
back: ``benchmarks/reconfigure_memory.py`` with 5 cycles in a process of its own (the
benchmark runs 20; docs/benchmarks.md)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import REPO, dds_settings_problems


def test_five_configure_cleanup_cycles_and_five_planners_keep_their_memory_bounded(navsim_weights):
    assert not dds_settings_problems()
    script = REPO / "benchmarks" / "reconfigure_memory.py"
    done = subprocess.run(
        [sys.executable, str(script), "--weights", str(navsim_weights), "--cycles", "5"],
        capture_output=True,
        text=True,
        timeout=900,
        env=dict(os.environ),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for what in ("node", "planner"):
        growth = re.search(rf"^{what}: growth from cycle 1 to 5: ([+-][\d.]+) MB \(limit 50\): OK$", done.stdout, re.M)
        assert growth, done.stdout
        assert float(growth.group(1)) <= 50.0
