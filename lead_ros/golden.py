"""The LTFv6 reference (golden) data shipped as package data: synthetic-weight cases with
LEAD's outputs, intermediates and preprocessing references. ``lead-ros selftest`` and the
test suite read the same files, so an install is checked against exactly what CI checked.
See ``data/ltfv6_reference/PROVENANCE.md``."""

from __future__ import annotations

import json
from pathlib import Path

GOLDEN_DIR = Path(__file__).resolve().parent / "data" / "ltfv6_reference"
# (synthetic weights variant, cases file): the main NAVSIM cases and the two checkpoint variants.
PLANNING_CASE_SETS = (
    ("navsim", "cases.json"),
    ("token256", "variants/token256/cases.json"),
    ("mixed", "variants/mixed/cases.json"),
)


def load_cases(relative: str = "cases.json") -> list[dict]:
    """The cases of one cases file, each with ``image_path`` resolved."""
    path = GOLDEN_DIR / relative
    cases = json.loads(path.read_text())["cases"]
    for case in cases:
        case["image_path"] = (path.parent / case["image_file"]).resolve()
    return cases
