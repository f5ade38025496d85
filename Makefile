# nucseg developer entry points. Every target installs what it needs into
# .venv/ first (tools/misc/setup_env.sh; the first run builds mmcv's ops,
# 14-26 min on 2 cores, later runs reuse the cached wheel).
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: env env-tests test demo lint clean

env:
	bash tools/misc/setup_env.sh

env-tests:
	bash tools/misc/setup_env.sh --tests

test: env-tests
	$(PY) -m pytest tests -q -ra --durations=15 $(PYTEST_ARGS)

demo: env
	$(PY) tools/misc/run_demo.py --work-dir work_dirs/demo

lint: env-tests
	$(PY) -m flake8 nucseg tools tests projects

clean:
	rm -rf work_dirs build dist *.egg-info
