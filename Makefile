# lead_ros: `make demo` runs the main job, `make test` the test suite. Both set up .venv first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The stamp is keyed by everything that decides what is installed, so setup is a no-op
# when nothing changed and reruns when a pin or the package metadata changes.
SETUP_HASH := $(shell cat requirements/*.txt setup.py setup.cfg package.xml | sha256sum | cut -c1-16)
STAMP := $(VENV)/.setup-$(SETUP_HASH)

# DDS safety for every rclpy process started from here: loopback-only discovery and
# transports, and a domain of this run's own.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export FASTDDS_DEFAULT_PROFILES_FILE := $(CURDIR)/config/fastdds_loopback.xml
export ROS_DOMAIN_ID ?= $(shell echo $$(( $$$$ % 90 + 10 )))
export PYTHONUNBUFFERED := 1

OUT ?= out
WEIGHTS ?=

.PHONY: setup test lint demo bench clean
.DEFAULT_GOAL := help

help:
	@echo "make demo   - run the LTFv6 planner end to end on the embedded sample (sets up .venv)"
	@echo "make test   - lint and run the test suite (sets up .venv)"
	@echo "make bench  - core latency/throughput benchmark on this machine"

setup: $(STAMP)

$(STAMP):
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -r requirements/dev.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.setup-*
	@touch $@

lint: setup
	$(BIN)/ruff check lead_ros test launch setup.py

test: lint
	$(BIN)/python -m pytest test

demo: setup
	$(BIN)/python -m lead_ros.demo --out $(OUT)/demo $(if $(WEIGHTS),--weights $(WEIGHTS))

bench: setup
	$(BIN)/lead-ros weights synth --out $(OUT)/synthetic_weights >/dev/null
	$(BIN)/lead-ros bench --weights $(OUT)/synthetic_weights --device auto

clean:
	rm -rf $(VENV) $(OUT) build install log *.egg-info
