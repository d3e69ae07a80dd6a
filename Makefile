# facescan: `make install` then `make test`. PYTHON is the interpreter whose environment gets
# facescan (an activated venv's python3 by default).
PYTHON ?= python3
DATA ?= ../shared/datasets/faces
RUN ?= runs/latest
OUT ?= models/facescan-default.onnx
TRAIN_ARGS ?=

.PHONY: install test lint typecheck pytest train export-onnx bench

install:  ## dev install: scanner, trainer ([train]), test tools ([dev]), HEIC ([heic]), Ray ([ray])
	$(PYTHON) -m pip install --upgrade pip
	$(PYTHON) -m pip install -e ".[train,dev,heic,ray]"

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

typecheck:
	$(PYTHON) -m mypy

# pytest exits 5 when it collects nothing: say so instead of failing obscurely.
pytest:
	$(PYTHON) -m pytest -ra; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest: no tests were collected"; exit 0; fi; exit $$rc

test: lint typecheck pytest

train:
	@echo "make train: not yet (the trainer issue fills this in)"; exit 1

export-onnx:
	@echo "make export-onnx: not yet (the trainer issue fills this in)"; exit 1

bench:
	@echo "make bench: not yet (the performance issue fills this in)"; exit 1
