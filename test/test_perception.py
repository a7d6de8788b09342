"""Perception (BEV semantics, CenterNet boxes) against LEAD's golden data, through the public
Planner API; the published grid's geometry; predict --perception."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
import torch

from conftest import read_rgb
from lead_ros.golden import GOLDEN_DIR
from lead_ros.observation import Observation
from lead_ros.perception.bev import CLASS_NAMES, cell_centre, lead_to_published
from lead_ros.perception.boxes import decode_boxes
from lead_ros.perception.outputs import perceive

AUX = GOLDEN_DIR / "aux"
AUX_CASES = json.loads((AUX / "aux_cases.json").read_text())["cases"]
BOX_KEYS = ("x", "y", "w", "h", "yaw", "velocity", "score")


def _files(case: dict) -> str:
    return case["aux_outputs_identical_to"] or case["id"]


def _golden(case: dict) -> tuple[dict, dict, dict]:
    name = _files(case)
    semantic = dict(np.load(AUX / f"{name}_bev_semantic.npz"))
    centernet = dict(np.load(AUX / f"{name}_centernet.npz"))
    boxes = json.loads((AUX / f"{name}_boxes.json").read_text())
    return semantic, centernet, boxes


def _fragile_cells(case: dict) -> set[tuple[int, int]]:
    source = next(c for c in AUX_CASES if c["id"] == _files(case))
    margins = source["centernet"]["decision_margins"]
    return {(r, c) for r, c, *_ in margins["fragile_cells_row_col_margin_islocalmax_abs_margin_lt_1e-5"]}


def _near_tie_pixels(case: dict) -> set[tuple[int, int]]:
    source = next(c for c in AUX_CASES if c["id"] == _files(case))
    return {tuple(p) for p in source["bev_semantic"]["argmax_near_tie_pixels_row_col_gap_lt_1e-4"]}


def _golden_boxes_by_cell(boxes: dict, system: str) -> dict[tuple[int, int], dict]:
    """Golden boxes of one system (vehicle_system, iso8855) keyed by their grid cell."""
    cells = {b["rank"]: (b["grid_row"], b["grid_col"]) for b in boxes["image_system_topk"]}
    return {cells[b["rank"]]: b for b in boxes[system]}


@pytest.fixture(scope="module")
def perceived(planner) -> dict[str, object]:
    """Every aux case through Planner.plan(..., perception=True)."""
    results = {}
    for case in AUX_CASES:
        image = read_rgb((AUX / case["image_file"]).resolve())
        observation = Observation(case["speed_mps"], case["acceleration_mps2"], case["command_index"], image=image)
        results[case["id"]] = planner.plan(observation, perception=True).perception
    return results


@pytest.mark.parametrize("case", AUX_CASES, ids=[c["id"] for c in AUX_CASES])
def test_bev_logits_and_argmax_match_lead(perceived, case):
    semantic, _, _ = _golden(case)
    perception = perceived[case["id"]]
    np.testing.assert_allclose(perception.bev_logits_pre_upsample_lead, semantic["logits_pre_upsample"][0], atol=1e-4)
    rows, cols = semantic["subgrid_rows"], semantic["subgrid_cols"]
    np.testing.assert_allclose(
        perception.bev_logits_lead[:, rows][:, :, cols], semantic["logits_subgrid"][0], atol=1e-4
    )
    lead_labels = perception.bev_labels[::-1, :]  # published rows reversed back to LEAD's
    differ = {tuple(p) for p in np.argwhere(lead_labels != semantic["argmax"]).tolist()}
    assert differ <= _near_tie_pixels(case), differ
    probabilities = perception.bev_probabilities
    assert probabilities.shape == (7, 256, 256) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=0), 1.0, atol=1e-5)
    expected = torch.softmax(torch.from_numpy(perception.bev_logits_lead), dim=0).numpy()[:, ::-1, :]
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)


@pytest.mark.parametrize("case", AUX_CASES, ids=[c["id"] for c in AUX_CASES])
def test_boxes_match_lead_by_grid_cell_in_both_frames(perceived, case):
    _, _, boxes = _golden(case)
    perception = perceived[case["id"]]
    fragile = _fragile_cells(case)
    ours = {
        (b.grid_row, b.grid_col): (row, b)
        for row, b in zip(perception.decoded.vehicle_system, perception.boxes, strict=True)
    }
    lead = _golden_boxes_by_cell(boxes, "vehicle_system")
    iso = _golden_boxes_by_cell(boxes, "iso8855")
    assert set(ours) ^ set(lead) <= fragile
    for cell in set(ours) & set(lead):
        row, box = ours[cell]
        np.testing.assert_allclose(row[[0, 1, 2, 3, 4, 5, 8]], [lead[cell][k] for k in BOX_KEYS], atol=1e-4)
        expected = iso[cell]
        np.testing.assert_allclose(
            [box.x, box.y, box.half_length, box.half_width, box.yaw, box.velocity, box.score],
            [expected[k] for k in BOX_KEYS],
            atol=1e-4,
        )
    ranks_above_06 = boxes["alt_threshold_vehicle_system_ranks"]
    expected_above = {0.3: set(lead), 0.6: {cell for cell, b in lead.items() if b["rank"] in ranks_above_06}}
    assert len(expected_above[0.6]) == len(ranks_above_06)
    for threshold, expected in expected_above.items():
        kept = {(b.grid_row, b.grid_col) for b in perception.boxes_above(threshold)}
        assert kept ^ expected <= fragile, threshold
    scores = [b.score for b in perception.boxes]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("case", AUX_CASES[:3], ids=[c["id"] for c in AUX_CASES[:3]])
def test_decoding_lead_heads_reproduces_lead_boxes(case):
    """The decoder alone, fed LEAD's own head outputs: image system to 4e-4 px, exact cells."""
    _, centernet, boxes = _golden(case)
    heads = {
        name: torch.from_numpy(centernet[key])
        for name, key in (
            ("heatmap", "heatmap_logits"),
            ("wh", "wh"),
            ("offset", "offset"),
            ("yaw_class", "yaw_class"),
            ("yaw_res", "yaw_res"),
            ("velocity", "velocity"),
        )
    }
    decoded = decode_boxes(heads)
    golden = boxes["image_system_topk"]
    assert [tuple(c) for c in decoded.cells.tolist()] == [(b["grid_row"], b["grid_col"]) for b in golden]
    np.testing.assert_allclose(
        decoded.image_system[:, :4], [[b[k] for k in ("x", "y", "w", "h")] for b in golden], atol=4e-4
    )
    np.testing.assert_allclose(decoded.image_system, centernet["boxes_image_system_topk"][0, : len(golden)], atol=4e-4)
    kept = decoded.vehicle_system[decoded.above(0.3)]
    np.testing.assert_allclose(kept, centernet["boxes_vehicle_system"][0], atol=1e-4)


def test_perception_is_not_computed_unless_asked(planner):
    image = read_rgb((AUX / AUX_CASES[0]["image_file"]).resolve())
    plan = planner.plan(Observation(1.0, 0.0, 1, image=image))
    assert plan.perception is None


# --- geometry of the published layout ------------------------------------------------------------


def test_published_cells_are_lead_cells_with_rows_reversed():
    """SPEC_AUX 2.3: LEAD pixel (row r, col j) is centred at x = (j + 0.5) 0.25 - 32 and
    y_ISO = 32 - (r + 0.5) 0.25; the published cell (255 - r, j) must be that point."""
    for r, j in ((0, 0), (0, 255), (17, 200), (127, 128), (255, 3)):
        x_spec, y_iso_spec = (j + 0.5) * 0.25 - 32, 32 - (r + 0.5) * 0.25
        assert cell_centre(255 - r, j) == (pytest.approx(x_spec), pytest.approx(y_iso_spec))
    lead = np.arange(256 * 256).reshape(256, 256)
    published = lead_to_published(lead)
    assert published[255 - 17, 200] == lead[17, 200]


def _one_hot_corner_logits(class_index: int) -> torch.Tensor:
    """Logits favouring ``class_index`` in LEAD's front-left corner (small rows = left,
    large columns = forward), UNLABELED elsewhere."""
    logits = torch.zeros(1, 7, 256, 256)
    logits[0, 0] = 5.0
    logits[0, class_index, :32, 224:] = 10.0
    return logits


def _empty_heads() -> dict[str, torch.Tensor]:
    """Heads with no box: a heatmap whose float32 sigmoid is exactly 0 everywhere."""
    return {
        "heatmap": torch.full((1, 1, 64, 64), -200.0),
        "wh": torch.zeros(1, 2, 64, 64),
        "offset": torch.zeros(1, 2, 64, 64),
        "yaw_class": torch.zeros(1, 12, 64, 64),
        "yaw_res": torch.zeros(1, 1, 64, 64),
        "velocity": torch.zeros(1, 1, 64, 64),
    }


def test_front_left_stays_front_left_in_the_published_grid():
    perception = perceive(torch.zeros(1, 7, 64, 64), _one_hot_corner_logits(5), _empty_heads())
    vehicles = perception.bev_probabilities[CLASS_NAMES.index("vehicles")]
    hot = np.argwhere(vehicles > 0.9)
    assert len(hot) == 32 * 32
    x, y = cell_centre(hot[:, 0], hot[:, 1])
    assert (x > 24).all() and (y > 24).all()  # forward and to the left, in ISO 8855
    assert perception.class_pixel_counts()["vehicles"] == 32 * 32
    assert perception.boxes == ()  # every score is exactly 0: no box, and no exception (LEAD raises)


def _message_position(grid, index: int) -> tuple[float, float]:
    """World (x, y) of data[index] as a ROS consumer reads an OccupancyGrid: row-major cells of
    ``resolution`` from ``origin`` (identity orientation), the cell centre."""
    row, col = divmod(index, grid.info.width)
    origin, resolution = grid.info.origin.position, grid.info.resolution
    assert grid.info.origin.orientation.w == 1.0
    return origin.x + (col + 0.5) * resolution, origin.y + (row + 0.5) * resolution


def test_occupancy_grid_cells_sit_where_lead_says(planner):
    """For chosen LEAD pixels (row r, column j): the message cell holding that pixel's value
    lies at SPEC_AUX's centre x = (j + 0.5) 0.25 - 32, y_ISO = 32 - (r + 0.5) 0.25."""
    from lead_ros.ros.encoding import bev_class_grid

    image = read_rgb((AUX / AUX_CASES[4]["image_file"]).resolve())
    perception = planner.plan(Observation(1.0, 0.0, 1, image=image), perception=True).perception
    lead_probabilities = torch.softmax(torch.from_numpy(perception.bev_logits_lead), dim=0).numpy()
    grid = bev_class_grid(perception.bev_probabilities, "centerline", 1, "base_link")
    data = np.array(grid.data, dtype=np.int8)
    for r, j in ((0, 0), (3, 250), (100, 40), (127, 128), (200, 17), (255, 255)):
        index = (255 - r) * 256 + j  # where the published layout puts LEAD's pixel
        assert _message_position(grid, index) == (
            pytest.approx((j + 0.5) * 0.25 - 32),
            pytest.approx(32 - (r + 0.5) * 0.25),
        )
        assert data[index] == round(100 * float(lead_probabilities[CLASS_NAMES.index("centerline"), r, j]))


def test_a_front_left_class_is_front_left_in_the_message():
    from lead_ros.ros.encoding import bev_class_grid

    perception = perceive(torch.zeros(1, 7, 64, 64), _one_hot_corner_logits(6), _empty_heads())
    grid = bev_class_grid(perception.bev_probabilities, "pedestrians", 1, "base_link")
    hot = np.flatnonzero(np.array(grid.data, dtype=np.int8) >= 90)
    assert len(hot) == 32 * 32
    positions = np.array([_message_position(grid, k) for k in hot])
    assert (positions[:, 0] > 24).all() and (positions[:, 1] > 24).all()  # forward, left


def test_a_box_right_of_the_vehicle_has_negative_iso_y():
    heads = _empty_heads()
    heads["heatmap"][0, 0, 40, 45] = 5.0  # LEAD row 40 -> y_LEAD = 8.x (right), column 45 -> x = 13.x
    heads["offset"][0, :, 40, 45] = torch.tensor([0.25, 0.5])
    heads["wh"][0, :, 40, 45] = torch.tensor([2.0, 0.9])
    heads["yaw_class"][0, 1, 40, 45] = 3.0  # bin 1: +30 degrees in LEAD (towards the right)
    perception = perceive(torch.zeros(1, 7, 64, 64), torch.zeros(1, 7, 256, 256), heads)
    (box,) = perception.boxes_above(0.3)
    assert (box.x, box.y) == (pytest.approx(13.25), pytest.approx(-8.5))
    assert box.yaw == pytest.approx(-math.radians(30), abs=1e-6)
    assert (box.half_length, box.half_width, box.grid_row, box.grid_col) == (2.0, pytest.approx(0.9), 40, 45)


# --- predict --perception, evaluate-bag --perception ---------------------------------------------


def test_predict_perception_json_contract_and_bev_out(tmp_path, capsys, navsim_weights):
    from lead_ros.tools.cli import main

    case = AUX_CASES[2]
    semantic, _, boxes = _golden(case)
    bev_out = tmp_path / "bev.npy"
    argv = [
        "predict",
        "--weights",
        str(navsim_weights),
        "--device",
        "cpu",
        "--image",
        str((AUX / case["image_file"]).resolve()),
        "--speed",
        "1",
        "--accel",
        "0",
        "--command",
        "left",
    ]
    assert main([*argv, "--perception", "--bev-out", str(bev_out), "--detection-score-threshold", "0.6"]) == 0
    perception = json.loads(capsys.readouterr().out)["perception"]
    listed = perception["boxes_iso8855"]
    assert all(b["score"] > 0.6 for b in listed)
    assert abs(len(listed) - len(boxes["alt_threshold_vehicle_system_ranks"])) <= len(_fragile_cells(case))
    keys = {"x", "y", "yaw", "half_length", "half_width", "score", "velocity", "grid_row", "grid_col"}
    assert listed and all(set(box) == keys for box in listed)
    assert [b["score"] for b in listed] == sorted((b["score"] for b in listed), reverse=True)
    iso = _golden_boxes_by_cell(boxes, "iso8855")
    above_06 = {cell for cell, b in iso.items() if b["rank"] in boxes["alt_threshold_vehicle_system_ranks"]}
    assert {(b["grid_row"], b["grid_col"]) for b in listed} ^ above_06 <= _fragile_cells(case)
    for box in listed:
        expected = iso.get((box["grid_row"], box["grid_col"]))
        if expected is not None:
            assert (box["x"], box["y"], box["yaw"]) == (
                pytest.approx(expected["x"], abs=1e-4),
                pytest.approx(expected["y"], abs=1e-4),
                pytest.approx(expected["yaw"], abs=1e-4),
            )
    golden_counts = next(c for c in AUX_CASES if c["id"] == _files(case))["bev_semantic"]
    counts = perception["bev_class_pixels"]
    assert list(counts) == list(CLASS_NAMES) and sum(counts.values()) == 256 * 256
    ties = len(_near_tie_pixels(case))
    for name, count in counts.items():
        assert abs(count - golden_counts["argmax_pixel_counts_by_class"][name.upper()]) <= ties
    # --bev-out: softmax of LEAD's logits (upsampled from the golden pre-upsample ones, which
    # reproduces LEAD bit for bit) with the rows reversed.
    probabilities = np.load(bev_out)
    assert probabilities.shape == (7, 256, 256) and probabilities.dtype == np.float32
    logits = torch.nn.functional.interpolate(
        torch.from_numpy(semantic["logits_pre_upsample"]), size=(256, 256), mode="bilinear", align_corners=False
    )
    expected = torch.softmax(logits, dim=1)[0].numpy()[:, ::-1, :]
    np.testing.assert_allclose(probabilities, expected, atol=1e-4)


def test_evaluate_bag_perception_writes_the_node_topics(tmp_path, planner):
    import yaml

    from bag_factory import MS, START, BagSpec, odometry, raw_image
    from lead_ros.bag.evaluate import OUTPUT_OBJECTS_TOPIC, EvaluationOptions, evaluate_bag
    from lead_ros.bag.reader import default_topics
    from lead_ros.node_config import NodeConfig

    image = read_rgb((AUX / AUX_CASES[0]["image_file"]).resolve())
    bag = BagSpec()
    for j in range(-5, 10):
        bag.add(START + j * 20 * MS, "odometry", "nav_msgs/msg/Odometry", odometry(START + j * 20 * MS, 2.0))
    bag.add(START + 1, "image", "sensor_msgs/msg/Image", raw_image(image, START))
    out = tmp_path / "out"
    out.mkdir()
    config = NodeConfig.from_values({"camera_mode": "stitched", "perception_classes": ["vehicles", "road"]})
    options = EvaluationOptions(config=config, topics=default_topics(), progress=False, perception=True)
    assert evaluate_bag(bag.write(tmp_path / "bag"), out, planner, options)["planned"] == 1
    metadata = yaml.safe_load((out / "output_bag" / "metadata.yaml").read_text())
    counts = {
        t["topic_metadata"]["name"]: t["message_count"]
        for t in metadata["rosbag2_bagfile_information"]["topics_with_message_count"]
    }
    assert counts[OUTPUT_OBJECTS_TOPIC] == 1
    assert counts["/lead_planner/output/bev/vehicles"] == counts["/lead_planner/output/bev/road"] == 1
    (record,) = [json.loads(line) for line in (out / "frames.jsonl").read_text().splitlines()]
    expected = planner.plan(Observation(2.0, 0.0, 3, image=image), perception=True).perception
    assert record["perception"]["boxes_iso8855"] == [b.as_dict() for b in expected.boxes_above(0.3)]
    assert record["perception"]["bev_class_pixels"] == expected.class_pixel_counts()
    picture = cv2.imread(str(out / "contact_sheet.png"))
    assert picture.shape[0] >= 240  # the 0.4-scaled 640-pixel bird's-eye panel: readable, not a strip
