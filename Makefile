# `make demo` and `make test` set everything up on a fresh machine: they create
# .venv when it is missing and install the project once (again only when
# pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install lock clean-venv

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first and pinned: the CPU build; any other version pulls CUDA packages.
	$(PY) -m pip install -q torch==2.13.0
	# Everything else at the exact versions CI tests (ranges in pyproject.toml).
	$(PY) -m pip install -q -c requirements.lock -e '.[test,app]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/amodal demo --out demo_output

test: $(STAMP)
	$(PY) -m pytest -q

# Rewrite requirements.lock from the environment after a change to pyproject.toml.
lock: $(STAMP)
	(echo '# Exact versions that CI tests: make installs with -c requirements.lock.'; \
	 echo '# Regenerate after changing pyproject.toml: make lock'; \
	 $(PY) -m pip list --format=freeze | grep -v -i -E '^(amodal|pip|setuptools|wheel)=' | sed 's/+cpu$$//') > requirements.lock

clean-venv:
	rm -rf $(VENV)
