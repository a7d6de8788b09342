"""Shared fixtures: golden reference data, synthetic checkpoints, planners, and the DDS
guard that refuses to start rclpy without loopback-only discovery."""

from __future__ import annotations

import fcntl
import gc
import os
import resource
import shutil
import signal
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from lead_ros.golden import GOLDEN_DIR as DATA  # noqa: F401 (re-exported for the tests)
from lead_ros.golden import load_cases  # noqa: F401
from lead_ros.ros.dds_segments import lock_file, participant_segments, remove_segments

REPO = Path(__file__).resolve().parent.parent
LOOPBACK_PROFILE_MARKERS = ("<useBuiltinTransports>false</useBuiltinTransports>", "127.0.0.1")
ROS_FIXTURES = {"ros_context", "harness"}


def dds_settings_problems() -> list[str]:
    """What is missing for DDS traffic to stay on loopback (empty when safe)."""
    problems = []
    if os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") != "LOCALHOST":
        problems.append("ROS_AUTOMATIC_DISCOVERY_RANGE must be LOCALHOST")
    profile = os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE", "")
    if not profile or not Path(profile).is_file():
        problems.append("FASTDDS_DEFAULT_PROFILES_FILE must name the loopback profile (config/fastdds_loopback.xml)")
    elif not all(m in Path(profile).read_text() for m in LOOPBACK_PROFILE_MARKERS):
        problems.append(f"FASTDDS_DEFAULT_PROFILES_FILE={profile} is not a loopback-only profile")
    if not os.environ.get("ROS_DOMAIN_ID", "").isdigit():
        problems.append("ROS_DOMAIN_ID must be set to this run's own domain")
    return problems


SEGMENT_SETTLE_S = 10.0  # younger files may belong to a participant still being created


# Where `make test-fast` keeps exported ONNX graphs between runs (the inner loop's warm cache).
KEPT_CACHE_ENV = "LEAD_ROS_TEST_CACHE"


def pytest_configure(config):
    """Exported ONNX graphs go to a cache of this run's own (shared with the processes the
    tests start), so every run exports from scratch and leaves nothing behind; with
    ``LEAD_ROS_TEST_CACHE`` set (``make test-fast``) they go there and are kept."""
    kept = os.environ.get(KEPT_CACHE_ENV)
    config.lead_ros_cache = kept or tempfile.mkdtemp(prefix="lead_ros_test_cache_")
    config.lead_ros_cache_kept = bool(kept)
    os.environ["LEAD_ROS_CACHE_DIR"] = config.lead_ros_cache
    config.lead_ros_started = time.time()


def pytest_unconfigure(config):
    if not getattr(config, "lead_ros_cache_kept", False):
        shutil.rmtree(getattr(config, "lead_ros_cache", ""), ignore_errors=True)
    remove_dead_participant_segments(getattr(config, "lead_ros_started", time.time()))


def _owner_alive(lock: Path) -> bool:
    descriptor = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)


def remove_dead_participant_segments(since: float, settle_s: float = SEGMENT_SETTLE_S) -> list[str]:
    """Remove the shared-memory segments (0.5-35 MB each, in RAM) that DDS participants
    created since ``since`` and left behind: processes the tests kill (a node process "killed
    by the OOM killer", a supervisor killed with its node process) close nothing, and
    ``lead_planner`` removes only the segments of a node process that it stops. A segment
    whose owner lives (its lock held) or that is younger than ``settle_s`` is kept; this is
    what ``fastdds shm clean`` does, limited to this run's segments. Returns the names
    removed."""
    removed = []
    settled = time.time() - settle_s
    for segment, lock in participant_segments():
        if not since <= lock.st_mtime <= settled:
            continue
        try:
            if not _owner_alive(lock_file(segment)):
                remove_segments([segment])
                removed.append(segment.name)
        except OSError:  # removed by its owner meanwhile, or another user's: not this run's to clean
            continue
    return removed


_PEAK_RSS_AFTER: dict[str, float] = {}  # test id -> the process's peak RSS (GB) once it had run


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """After a test's fixtures are gone, collect its reference cycles and hand the heap pages
    they freed back to the OS (as ``Planner.close`` does), so one test's garbage does not
    raise the next one's peak. (``pytest.raises`` inside a helper is such a cycle: the
    traceback holds the helper's frame, whose local holds the traceback; with it every
    tensor the failed call had loaded, 0.2-0.4 GB per weights test, until Python's
    collector happens to run.)

    A full collection walks every object (torch, rclpy, Ray: 190 ms here, minutes over the
    suite), so what survives a test is frozen and the next collection walks only what the
    next test made; at the end of a module, whose fixtures are gone then, everything is
    unfrozen and collected once."""
    yield
    from lead_ros.model.heap import return_free_heap

    if nextitem is None or nextitem.module is not item.module:
        gc.unfreeze()
    gc.collect()
    gc.freeze()
    return_free_heap()
    _PEAK_RSS_AFTER[item.nodeid] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def pytest_terminal_summary(terminalreporter):
    """The memory the suite needed: peak RSS of the pytest process, and the tests during which
    it rose most. (Not the children's ``ru_maxrss``: Linux counts into a child's peak the RSS
    of the process it was forked from, so a ``true`` started by a 2 GB process reports 2 GB.)"""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    terminalreporter.write_line(f"peak RSS of the pytest process: {own:.2f} GB")
    previous, rises = 0.0, []
    for test, peak in _PEAK_RSS_AFTER.items():
        rises.append((peak - previous, peak, test))
        previous = peak
    for rise, peak, test in sorted(rises, reverse=True)[:5]:
        terminalreporter.write_line(f"  peak rose {rise:+.2f} GB to {peak:.2f} GB during {test}")


# Tiers (setup.cfg's markers; docs/development.md): `make test-fast` runs the tests with none of
# ros, process and slow; CI runs the distro tests on the second ROS distribution too.
PROCESS_MODULES = {
    "test_node_process",
    "test_exit_codes",
    "test_package",
    "test_reconfigure_memory",
    "test_shared_memory_cleanup",
    "test_fleet",
    "test_bag_outputs",
}
PROCESS_FIXTURES = {"ray_local"}
# What differs between ROS distributions: rclpy, lifecycle, bag metadata, DDS, signals.
DISTRO_MODULES = {
    "test_distro",
    "test_node_lifecycle",
    "test_node_process",
    "test_shared_memory_cleanup",
    "test_ros_roundtrip",
    "test_background_spin",
    "test_node_clock",
    "test_serialized_camera",
    "test_on_demand",
}
DISTRO_FIXTURES = {"bag_version"}
DISTRO_TESTS = {"test/test_bags.py::test_metadata_that_disagrees_with_storage_is_reported"}
# Tests of the pure tier that took over 2 s here with a warm graph cache (a session fixture's
# set-up counted: pytest --durations=0 -m "not ros and not process"), golden cases aside.
SLOW_TESTS = {
    "test/test_bags.py::test_camera_settings_follow_the_bag_unless_stated",
    "test/test_bags.py::test_sample_evaluation_outputs",
    "test/test_bags.py::test_stitched_raw_bag_with_imu_command_changes_and_an_odometry_gap",
    "test/test_cameras.py::test_model_views_are_the_bytes_of_a_full_remap_and_todays_resize",
    "test/test_cli.py::test_bench_prints_figures",
    "test/test_cli.py::test_predict_from_cameras",
    "test/test_export.py::test_a_graph_that_disagrees_with_its_model_fails_the_parity_check",
    "test/test_export.py::test_export_writes_a_graph_and_a_manifest_that_describes_it",
    "test/test_metrics.py::test_an_evaluation_compared_with_itself_has_no_difference",
    "test/test_metrics.py::test_logged_future_equals_the_analytic_trajectory",
    "test/test_panorama.py::test_coverage_follows_the_geometry_for_a_lens_wider_than_180_degrees_and_a_camera_facing_away",
    "test/test_panorama.py::test_reprojected_user_cameras_match_the_direct_nuplan_render_within_the_bound",
    "test/test_planner.py::test_bf16_on_cpu_runs_close_to_fp32",
    "test/test_planner.py::test_input_buffers_are_kept_for_a_bounded_number_of_heights",
    "test/test_rig_pipeline.py::test_evaluate_bag_reads_camera_info_from_the_bag",
    "test/test_rig_pipeline.py::test_evaluate_bag_uses_the_same_reprojection",
    "test/test_rig_pipeline.py::test_predict_and_evaluate_bag_take_the_rig_from_the_command_line",
    "test/test_rig_pipeline.py::test_rig_calibrations_wait_for_camera_info_and_rebuild_one_table_once",
    "test/test_rig_pipeline.py::test_rig_check_draws_each_camera_and_reports_against_nuplan",
    "test/test_rig_pipeline.py::test_the_sample_drive_seen_by_the_example_rig_gives_the_same_model_input",
    "test/test_runtime.py::test_sessions_beyond_the_bound_are_dropped_and_reloaded_from_the_graph_cache",
    "test/test_runtime.py::test_the_planner_keeps_no_pytorch_trunk_and_builds_it_again_only_to_export_a_height",
    "test/test_runtime_registry.py::test_a_registered_runtime_is_a_parameter_choice_and_runs_a_planner",
    "test/test_selftest.py::test_broken_frame_convention_fails",
    "test/test_selftest.py::test_cpu_bf16_passes_within_its_measured_tolerance",
    "test/test_selftest.py::test_cpu_fp32_passes_with_a_fixed_json_contract",
    "test/test_selftest.py::test_perturbed_weights_fail_and_name_every_case",
    "test/test_weights.py::test_ensemble_directory_averages_members",
}  # fmt: skip


def _tiers(item) -> set[str]:
    module = item.module.__name__ if item.module else ""
    fixtures = set(getattr(item, "fixturenames", ()))
    tiers = set()
    if ROS_FIXTURES & fixtures:
        tiers.add("ros")
    if module in PROCESS_MODULES or PROCESS_FIXTURES & fixtures:
        tiers.add("process")
    if module in DISTRO_MODULES or DISTRO_FIXTURES & fixtures or item.nodeid.split("[")[0] in DISTRO_TESTS:
        tiers.add("distro")
    if item.nodeid.split("[")[0] in SLOW_TESTS:
        tiers.add("slow")
    return tiers


def pytest_collection_modifyitems(session, config, items):
    """Mark each test with its tiers; refuse the whole run, loudly, before any test starts
    rclpy with unsafe DDS settings."""
    for item in items:
        for tier in sorted(_tiers(item)):
            item.add_marker(tier)
    uses_ros = [item.nodeid for item in items if ROS_FIXTURES & set(getattr(item, "fixturenames", ()))]
    problems = dds_settings_problems()
    if uses_ros and problems:
        pytest.exit(
            "refusing to start rclpy: DDS discovery could leave this machine ("
            + "; ".join(problems)
            + "). Run the suite through `make test`, which sets them.",
            returncode=4,
        )


@pytest.fixture(scope="session")
def ros_context():
    """An rclpy context, started only under the loopback DDS settings."""
    problems = dds_settings_problems()
    if problems:
        pytest.fail("refusing to start rclpy: " + "; ".join(problems))
    import rclpy

    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    context.try_shutdown()


@pytest.fixture
def harness(ros_context, planner):
    """Makes in-process lead_planner harnesses (``ros_harness.Harness``) and closes them;
    ``stand_in``: a planner in place of the session's."""
    from ros_harness import Harness

    made = []

    def make(stand_in=None, **params):
        made.append(Harness(ros_context, stand_in or planner, **params))
        return made[-1]

    yield make
    for h in made:
        h.close()


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray instance for the session, as our machines require: bound to 127.0.0.1, no
    dashboard, no usage statistics (``RAY_USAGE_STATS_ENABLED=0``), shut down at the end.
    While it runs, any other ``ray.init`` in this process fails the test that calls it."""
    from lead_ros.bag.fleet import start_local_ray

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray = start_local_ray(num_cpus=2)
    original = ray.init

    def refuse(*args, **kwargs):
        raise AssertionError("a second ray.init in the tests: use the ray_local fixture's instance")

    ray.init = refuse
    try:
        yield ray
    finally:
        ray.init = original
        ray.shutdown()


def default_signal_disposition() -> None:
    """``preexec_fn`` for the child processes a test signals: SIGINT and SIGTERM at their
    defaults, whatever this process inherited (``make test &`` runs with SIGINT ignored, which
    children would inherit)."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="session")
def synthetic_checkpoints(tmp_path_factory):
    """Synthetic checkpoint directories by variant, written once per session on demand."""
    from lead_ros.weights.synthetic import write_synthetic_checkpoint

    root = tmp_path_factory.mktemp("weights")
    made: dict[str, Path] = {}

    def get(variant: str = "navsim") -> Path:
        if variant not in made:
            write_synthetic_checkpoint(root / variant, variant)
            made[variant] = root / variant
        return made[variant]

    return get


@pytest.fixture(scope="session")
def navsim_weights(synthetic_checkpoints) -> Path:
    return synthetic_checkpoints("navsim")


@pytest.fixture(scope="session")
def planner(navsim_weights):
    """The default planner (fp32, CPU: ONNX Runtime), shared by the tests that only read it."""
    from lead_ros.planner import Planner

    with Planner(str(navsim_weights), "cpu", "fp32") as shared:
        yield shared


@pytest.fixture(scope="session")
def exported_navsim_weights(navsim_weights, planner) -> Path:
    """``navsim_weights`` with its 270-row ONNX graph in this run's cache (the session planner
    exported it): processes started by a test then load the graph in about a second, as every
    start after the first one does, instead of exporting it for half a minute."""
    return navsim_weights


@pytest.fixture(scope="module")
def eager_planner(navsim_weights):
    """The same weights in eager PyTorch (the bf16/fp16 and CUDA runtime), fp32; one per test
    module, so that it does not hold its half gigabyte through the rest of the suite."""
    from lead_ros.planner import Planner

    with Planner(str(navsim_weights), "cpu", "fp32", runtime="eager") as shared:
        yield shared
