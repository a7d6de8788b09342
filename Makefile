# lead_ros: `make demo` runs the main job, `make test` the test suite. Both set up the venv first.
SHELL := /bin/bash
PYTHON ?= python3
# The ROS 2 distribution (a sourced ROS installation exports the same variable): jazzy, the
# LTS most robots run, is the default; kilted is the other one tested. Each has its own venv,
# never mixed: .venv for the default, .venv-<distro> for the other.
ROS_DISTRO ?= jazzy
DEFAULT_DISTRO := jazzy
DISTROS := jazzy kilted
ifeq ($(filter $(ROS_DISTRO),$(DISTROS)),)
$(error ROS_DISTRO=$(ROS_DISTRO) is not supported: use one of $(DISTROS))
endif
export ROS_DISTRO
VENV := $(if $(filter $(DEFAULT_DISTRO),$(ROS_DISTRO)),.venv,.venv-$(ROS_DISTRO))
BIN := $(VENV)/bin
# The stamp is keyed by everything that decides what is installed, so setup is a no-op
# when nothing changed and reruns when a pin or the package metadata changes.
SETUP_HASH := $(shell cat requirements/*.txt setup.py setup.cfg package.xml | sha256sum | cut -c1-16)
STAMP := $(VENV)/.setup-$(ROS_DISTRO)-$(SETUP_HASH)

# DDS safety for every rclpy process started from here: loopback-only discovery and
# transports, and a domain of this run's own.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export FASTDDS_DEFAULT_PROFILES_FILE := $(CURDIR)/config/fastdds_loopback.xml
export ROS_DOMAIN_ID ?= $(shell echo $$(( $$$$ % 90 + 10 )))
export PYTHONUNBUFFERED := 1
# Ray safety: no usage statistics leave this machine (tests also bind Ray to 127.0.0.1).
export RAY_USAGE_STATS_ENABLED := 0

OUT ?= out
WEIGHTS ?=

.PHONY: setup test test-fast test-distro lint docs demo bench bench-runtimes bench-memory bench-fleet clean
.DEFAULT_GOAL := help

help:
	@echo "make demo   - run the LTFv6 planner end to end on the embedded sample (sets up the venv)"
	@echo "make test   - lint and run the test suite (sets up the venv)"
	@echo "make test-fast - the pure tests only (no rclpy, no processes), the inner loop"
	@echo "make test-distro - the tests of what differs between ROS distributions"
	@echo "make lint   - ruff check, ruff format --check, mypy on the core"
	@echo "make docs   - write docs/parameters.md and docs/topics.md from the code"
	@echo "             ROS_DISTRO=jazzy (default, .venv) or kilted (.venv-kilted) picks the ROS 2 distribution"
	@echo "make bench  - core latency/throughput benchmark on this machine"
	@echo "make bench-runtimes - inference runtimes side by side (docs/benchmarks.md)"
	@echo "make bench-memory - RSS over 20 configure/cleanup cycles of the node and 20 planners"
	@echo "make bench-fleet - Ray vs local engine on four copies of the sample drive"

setup: $(STAMP)

$(STAMP):
	@if [ -d $(VENV) ] && [ "$$(cat $(VENV)/.ros-distro 2>/dev/null)" != "$(ROS_DISTRO)" ]; then \
		echo "$(VENV) was not made for ROS $(ROS_DISTRO): recreating it"; rm -rf $(VENV); fi
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo $(ROS_DISTRO) > $(VENV)/.ros-distro
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -r requirements/ros-$(ROS_DISTRO).txt -r requirements/dev.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.setup-*
	@touch $@

lint: setup
	$(BIN)/ruff check lead_ros test launch benchmarks setup.py
	$(BIN)/ruff format --check lead_ros test launch benchmarks setup.py
	$(BIN)/mypy

# The reference tables of docs/ (parameters, topics), written from the code; a test checks them.
docs: setup
	$(BIN)/python -m lead_ros.tools.reference_docs docs

test: lint
	$(BIN)/python -m pytest test --durations=15

# The inner loop: the pure tests (no rclpy, no processes, none over 10 s), with exported
# graphs kept between runs in .cache/test-graphs. `make test` runs everything.
test-fast: setup
	LEAD_ROS_TEST_CACHE=$(CURDIR)/.cache/test-graphs $(BIN)/python -m pytest test -m "not ros and not process and not slow" --durations=5

# What differs between ROS distributions (CI runs it on the second one).
test-distro: setup
	$(BIN)/python -m pytest test -m distro --durations=5

demo: setup
	$(BIN)/python -m lead_ros.tools.demo --out $(OUT)/demo $(if $(WEIGHTS),--weights $(WEIGHTS))

bench: setup
	$(BIN)/lead-ros weights synth --out $(OUT)/synthetic_weights >/dev/null
	$(BIN)/lead-ros bench --weights $(OUT)/synthetic_weights --device auto

# Inference runtimes side by side (docs/benchmarks.md; several minutes: two compilers).
bench-runtimes: setup
	$(BIN)/lead-ros weights synth --out $(OUT)/synthetic_weights >/dev/null
	$(BIN)/python benchmarks/runtimes.py --weights $(OUT)/synthetic_weights

# RSS over 20 node configure/cleanup cycles and 20 planners made and closed.
bench-memory: setup
	$(BIN)/lead-ros weights synth --out $(OUT)/synthetic_weights >/dev/null
	$(BIN)/python benchmarks/reconfigure_memory.py --weights $(OUT)/synthetic_weights --cycles 20

# Fleet engines on this machine: four copies of the sample drive, Ray (2 workers, 1 CPU each)
# vs the local engine (--jobs 2); prints both frame rates, their ratio and Ray's start-up.
bench-fleet: setup
	rm -rf $(OUT)/bench_fleet && mkdir -p $(OUT)/bench_fleet/bags
	for i in 1 2 3 4; do cp -r data/sample_bag $(OUT)/bench_fleet/bags/sample_$$i; done
	$(BIN)/lead-ros weights synth --out $(OUT)/bench_fleet/weights >/dev/null
	$(BIN)/lead-ros evaluate-bag $(OUT)/bench_fleet/bags --weights $(OUT)/bench_fleet/weights --device cpu \
		--no-pictures --out $(OUT)/bench_fleet/local --engine local --jobs 2 >/dev/null
	$(BIN)/lead-ros evaluate-bag $(OUT)/bench_fleet/bags --weights $(OUT)/bench_fleet/weights --device cpu \
		--no-pictures --out $(OUT)/bench_fleet/ray --engine ray --workers 2 --cpus-per-worker 1 >/dev/null
	$(BIN)/python -c "import json; l, r = (json.load(open('$(OUT)/bench_fleet/' + e + '/fleet_summary.json')) \
		for e in ('local', 'ray')); f = lambda s: s['frames_per_second']['overall']; \
		print(f\"local --jobs 2: {f(l):.2f} frames/s ({l['wall_time_s']:.1f} s)\"); \
		print(f\"ray 2 workers: {f(r):.2f} frames/s ({r['wall_time_s']:.1f} s, Ray start-up {r['ray_startup_s']:.1f} s)\"); \
		print(f\"ratio ray/local: {f(r) / f(l):.2f}\")"

clean:
	rm -rf .venv $(foreach d,$(DISTROS),.venv-$(d)) $(OUT) build install log *.egg-info
