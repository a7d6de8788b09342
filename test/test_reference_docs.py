"""The reference tables in docs/ are the code's: ``make docs`` writes them, and a committed
page that differs from what the code gives fails here, naming the page."""

from __future__ import annotations

import shutil

from conftest import REPO
from lead_ros.tools.reference_docs import PAGES, main, stale_pages


def test_committed_pages_equal_what_the_code_gives():
    stale = stale_pages(REPO / "docs")
    assert not stale, f"stale: {', '.join(f'docs/{name}' for name in stale)}; run make docs and commit them"


def test_a_planted_stale_row_is_named(tmp_path, capsys):
    for name in PAGES:
        shutil.copy(REPO / "docs" / name, tmp_path / name)
    page = tmp_path / "parameters.md"
    page.write_text(
        page.read_text().replace("| `sync_tolerance_ms` | double | `50.0`", "| `sync_tolerance_ms` | double | `40.0`")
    )
    assert stale_pages(tmp_path) == ["parameters.md"]
    assert main(["--check", str(tmp_path)]) == 1
    assert capsys.readouterr().err == f"{page} is stale: run make docs\n"
    assert main([str(tmp_path)]) == 0 and stale_pages(tmp_path) == []


def test_every_parameter_and_topic_has_its_row():
    from lead_ros.node_config import PARAMETERS
    from lead_ros.ros.topics import TOPICS

    parameters, topics = (REPO / "docs" / "parameters.md").read_text(), (REPO / "docs" / "topics.md").read_text()
    assert all(f"| `{spec.name}` |" in parameters for spec in PARAMETERS)
    assert all(f"| `{topic.name}` |" in topics for topic in TOPICS)
