"""Training-time augmentation on the upright RGB image, before the scanner's preprocessing.

Every random draw comes from the `rng` passed in, so one seed gives the same pixels every time.
Augmentations work on the image as the scanner would receive it (flip, light, resampling, JPEG,
blur); the result then goes through `scanner.preprocess`, the one preprocessing path.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from scanner.decode import decode
from scanner.preprocess import PreprocessSpec, ensure_min_size, fit_geometry, normalize
from trainer.config import Augment

# "box" is Pillow's area-averaging filter (what "area" resizing does elsewhere).
RESCALE_FILTERS = (
    Image.Resampling.BILINEAR,
    Image.Resampling.BICUBIC,
    Image.Resampling.LANCZOS,
    Image.Resampling.BOX,
)


def augment(pixels: np.ndarray, cfg: Augment, rng: np.random.Generator) -> Image.Image:
    """A randomly altered copy of one uint8 HWC image. Order follows a photo's life: edits
    (flip, light), then resizing, softening and finally JPEG compression."""
    image = Image.fromarray(pixels)
    on = set(cfg.enabled)
    # Every number is drawn whether or not its augmentation fires: switching one off leaves the
    # others' draws, and so their pixels, unchanged.
    fire = rng.random(6)
    light = rng.uniform(-1, 1, 2)
    factor, blur = rng.uniform(*cfg.rescale), rng.uniform(0.1, max(0.1, cfg.blur_radius))
    resample = RESCALE_FILTERS[int(rng.integers(len(RESCALE_FILTERS)))]
    quality = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
    if "flip" in on and fire[0] < cfg.p_flip:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if "brightness" in on and fire[1] < cfg.p_brightness:
        image = ImageEnhance.Brightness(image).enhance(1 + light[0] * cfg.brightness)
    if "contrast" in on and fire[2] < cfg.p_contrast:
        image = ImageEnhance.Contrast(image).enhance(1 + light[1] * cfg.contrast)
    if "rescale" in on and fire[3] < cfg.p_rescale:
        image = rescale(image, factor, resample)
    if "blur" in on and fire[4] < cfg.p_blur:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    if "jpeg" in on and fire[5] < cfg.p_jpeg:
        image = recompress(image, quality)
    return image


def rescale(image: Image.Image, factor: float, resample: Image.Resampling) -> Image.Image:
    w, h = image.size
    size = (max(8, round(w * factor)), max(8, round(h * factor)))
    return image.resize(size, resample)


def recompress(image: Image.Image, quality: int) -> Image.Image:
    """JPEG-encode in memory and decode back with the scanner's decoder."""
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return decode(buf.getvalue()).image


def training_input(
    pixels: np.ndarray, spec: PreprocessSpec, cfg: Augment, rng: np.random.Generator
) -> np.ndarray:
    """One float32 (N, N, 3) training example: augmented, then the scanner's geometry (resize)
    or a random N x N crop of the scanner's padded/upscaled image (crop), then normalised."""
    image = augment(pixels, cfg, rng)
    if spec.geometry == "resize":
        crop = fit_geometry(image, spec)
    else:
        full = ensure_min_size(image, spec)
        n = spec.input_size
        y = int(rng.integers(full.shape[0] - n + 1))
        x = int(rng.integers(full.shape[1] - n + 1))
        crop = full[None, y : y + n, x : x + n]
    return normalize(crop, spec)[0]
