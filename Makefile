# seg_accel_ros: `make setup` (virtual environment), `make demo` (main job), `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup demo test lint bench colcon clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-ros.txt requirements-dev.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	@if $(PY) -c "import rclpy" 2>/dev/null; then echo "rclpy present"; \
	 else $(PY) -m pip install -q --disable-pip-version-check -r requirements-ros.txt; fi
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: setup
	$(PY) -m seg_accel_ros.tools.demo $(DEMO_ARGS)

test: setup
	$(PY) -m ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

bench: setup
	$(PY) -m seg_accel_ros.tools.bench --suite node --json out/bench_node.json

colcon: setup
	$(VENV)/bin/colcon build --base-paths . --build-base build --install-base install

clean:
	rm -rf build install log out .pytest_cache
