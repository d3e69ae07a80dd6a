"""One onnxruntime session, its execution provider and its model metadata (rembg-style).

`ModelSession` is the only place that talks to onnxruntime: it loads the file, reads the facescan
metadata, picks the provider, and turns a batch of preprocessed crops into scores.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from scanner import shipped
from scanner.errors import FacescanError
from scanner.metadata import InvalidModelError, ModelInfo
from scanner.shipped import SHIPPED, default_model_path, resolve_model  # noqa: F401 (moved)
from scanner.threads import signals_to_main_thread

PROVIDERS = ("auto", "cpu", "cuda")
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


class ProviderError(FacescanError):
    """The asked-for execution provider cannot run here (never a silent fallback)."""


class ModelSession:
    """An ONNX model with its metadata, ready to score batches of preprocessed crops."""

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        provider: str = "auto",
        threads: int | None = None,
    ) -> None:
        self.path = resolve_model(model)
        if not self.path.is_file():
            in_package = self.path.parent == shipped.default_model_path().parent
            hint = " (this shipped model is not installed; pass --model)" if in_package else ""
            if str(model) == self.path.name and not self.path.suffix:  # a mistyped name?
                hint = f" (nor a shipped model: {', '.join(SHIPPED)})"
            raise InvalidModelError(f"model file not found: {self.path}{hint}")
        self._session = open_session(self.path, provider, threads)
        self.provider = self._session.get_providers()[0]
        props = self._session.get_modelmeta().custom_metadata_map
        self.info = ModelInfo.from_props(props)
        model_input = self._session.get_inputs()[0]
        self._input = model_input.name
        self._output = self._session.get_outputs()[0].name
        # A model exported with a fixed batch dimension is fed in slices of that size.
        fixed = model_input.shape[0] if model_input.shape else None
        self._fixed_batch = fixed if isinstance(fixed, int) and fixed > 0 else None

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Scores in 0..1 (probability of the positive label), one per row of `batch`."""
        step = self._fixed_batch or len(batch)
        parts = [self._run(batch[i : i + step], step) for i in range(0, len(batch), step)]
        out = np.concatenate(parts).astype(np.float64)
        if out.ndim == 2 and out.shape[1] == 2:  # two-class softmax/logits: keep the positive one
            out = out[:, 1]
        out = out.reshape(len(batch))
        if self.info.output == "logit":
            out = 1.0 / (1.0 + np.exp(-out))
        return out

    def _run(self, batch: np.ndarray, size: int) -> np.ndarray:
        short = size - len(batch)  # pad a short last slice for a fixed-batch model, then trim
        if short:
            batch = np.concatenate([batch, np.zeros((short, *batch.shape[1:]), batch.dtype)])
        out = self._session.run([self._output], {self._input: batch})[0]
        return np.asarray(out)[: size - short]


def open_session(path: Path, provider: str = "auto", threads: int | None = None) -> Any:
    """An onnxruntime session on `path` with facescan's options and provider policy (every model
    facescan runs, the classifier and the face detector, opens through here)."""
    import onnxruntime as ort  # deferred: `facescan --help` must not pay for it

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle intra-op threads sleep instead of spinning: the decode threads share these cores,
    # and a spinning thread takes their time. Forcing spinning on made the 2,000-file int8
    # scan 19 % slower on two cores (1.91 vs 1.61 s); onnxruntime 1.32's default measured
    # the same as off, but the versions this package allows are not all 1.32.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        with signals_to_main_thread():  # onnxruntime starts its thread pool here
            session = ort.InferenceSession(
                str(path), sess_options=options, providers=_providers(provider, ort)
            )
    except ProviderError:
        raise
    except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph/... types
        what = "not an ONNX model file" if "INVALID_PROTOBUF" in str(e) else "onnxruntime says"
        raise InvalidModelError(f"cannot load model {path}: {what}: {e}") from None
    if provider == "cuda" and session.get_providers()[0] != CUDA:
        # onnxruntime falls back to CPU when CUDA libraries fail to load; we refuse to.
        raise ProviderError("CUDA provider failed to initialise (see onnxruntime's log above)")
    return session


def first_provider(requested: str) -> str:
    """Where a session opened with `requested` would run, "cpu" or "cuda", known before it is
    opened (under "auto" a CUDA that fails to initialise still falls back to the CPU then)."""
    import onnxruntime as ort

    return "cuda" if _providers(requested, ort)[0] == CUDA else "cpu"


def _providers(requested: str, ort: Any) -> list[str]:
    if requested not in PROVIDERS:
        raise ProviderError(f"unknown provider {requested!r}; choose from {', '.join(PROVIDERS)}")
    available = ort.get_available_providers()
    if requested == "cpu":
        return [CPU]
    if requested == "cuda" and CUDA not in available:
        raise ProviderError(
            "CUDA provider requested but this onnxruntime has none "
            f"(available: {', '.join(available)}); install facescan[gpu] on a CUDA machine"
        )
    return [CUDA, CPU] if CUDA in available else [CPU]
