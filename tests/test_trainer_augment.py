"""Augmentation: seeded (same seed, same pixels), and built on the scanner's preprocessing."""

from __future__ import annotations

import numpy as np
from PIL import Image

from scanner.preprocess import PreprocessSpec, ensure_min_size, normalize, preprocess
from trainer.augment import augment, training_input
from trainer.config import Augment

ALWAYS = Augment(
    p_flip=1, p_brightness=1, p_contrast=1, p_rescale=1, p_jpeg=1, p_blur=1
)  # every augmentation fires
PIXELS = np.random.default_rng(0).integers(0, 256, (40, 52, 3), dtype=np.uint8)


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_same_seed_same_pixels_other_seed_other_pixels() -> None:
    spec = PreprocessSpec(input_size=32)
    a = training_input(PIXELS, spec, ALWAYS, rng(7))
    b = training_input(PIXELS, spec, ALWAYS, rng(7))
    c = training_input(PIXELS, spec, ALWAYS, rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (32, 32, 3) and a.dtype == np.float32


def test_no_augmentation_is_exactly_the_scanners_preprocessing() -> None:
    spec = PreprocessSpec(input_size=32, resize_filter="bicubic")
    none = Augment(enabled=())
    x = training_input(PIXELS, spec, none, rng(0))
    np.testing.assert_array_equal(x, preprocess(Image.fromarray(PIXELS), spec)[0])


def test_crop_geometry_takes_a_native_crop_of_the_scanners_padded_image() -> None:
    spec = PreprocessSpec(input_size=32, geometry="crop")
    full = normalize(ensure_min_size(Image.fromarray(PIXELS), spec)[None], spec)[0]
    x = training_input(PIXELS, spec, Augment(enabled=()), rng(1))
    windows = [
        full[y : y + 32, x0 : x0 + 32] for y in range(full.shape[0] - 31) for x0 in range(21)
    ]
    assert any(np.array_equal(x, w) for w in windows)


def test_a_single_augmentation_does_exactly_its_job() -> None:
    only_flip = Augment(enabled=("flip",), p_flip=1)
    flipped = np.asarray(augment(PIXELS, only_flip, rng(3)))
    np.testing.assert_array_equal(flipped, PIXELS[:, ::-1])
    rescaled = augment(PIXELS, Augment(enabled=("rescale",), p_rescale=1, rescale=(2, 2)), rng(3))
    assert rescaled.size == (104, 80)


def test_every_augmentation_runs_and_keeps_an_rgb_image() -> None:
    for seed in range(5):
        image = augment(PIXELS, ALWAYS, rng(seed))
        assert image.mode == "RGB" and min(image.size) >= 8
