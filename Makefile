# Set-up and test targets. The pinned CPU build of torch is installed first so
# that installing the project does not pull a multi-gigabyte CUDA build.
# Override for another build, for example: make run TORCH_SPEC="torch==2.14.1"
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[examples,test]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/lrrt run configs/digits.yaml --force

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache
