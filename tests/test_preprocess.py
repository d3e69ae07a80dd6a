"""The one preprocessing path gives the same pixels as an independent reference."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
from conftest import noise_image
from images import jpeg_bytes, rotated_jpeg
from PIL import Image, ImageOps

from scanner.decode import decode
from scanner.preprocess import PreprocessSpec, crop_offsets, fit_geometry, normalize, preprocess


def reference_resize(data: bytes, n: int, resample: Image.Resampling) -> np.ndarray:
    """What the original notebook did, written out with Pillow and numpy only."""
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    return np.asarray(image.resize((n, n), resample), np.float32) / 255.0


@pytest.mark.parametrize(
    ("name", "resample"),
    [("bilinear", Image.Resampling.BILINEAR), ("lanczos", Image.Resampling.LANCZOS)],
)
def test_resize_matches_the_reference(name: str, resample: Image.Resampling) -> None:
    for data in (jpeg_bytes(noise_image(97), quality=90), rotated_jpeg()):
        spec = PreprocessSpec(input_size=32, resize_filter=name)
        ours = preprocess(decode(data).image, spec)
        assert ours.shape == (1, 32, 32, 3) and ours.dtype == np.float32
        np.testing.assert_allclose(ours[0], reference_resize(data, 32, resample), atol=1e-6)


def test_centre_crop_is_native_pixels() -> None:
    image = noise_image(50)
    crops = fit_geometry(image, PreprocessSpec(input_size=20, geometry="crop"))
    np.testing.assert_array_equal(crops[0], np.asarray(image)[15:35, 15:35])


def test_grid_crops_cover_corners_and_centre() -> None:
    image = noise_image(50)
    crops = fit_geometry(image, PreprocessSpec(input_size=20, geometry="crop", crop_grid=3))
    pixels = np.asarray(image)
    assert crops.shape == (9, 20, 20, 3)
    np.testing.assert_array_equal(crops[0], pixels[:20, :20])
    np.testing.assert_array_equal(crops[4], pixels[15:35, 15:35])
    np.testing.assert_array_equal(crops[8], pixels[30:, 30:])
    assert crop_offsets(50, 20, 3) == [0, 15, 30]


def test_small_images_are_padded_by_mirroring_or_upscaled() -> None:
    image = noise_image(10)
    pixels = np.asarray(image)
    padded = fit_geometry(image, PreprocessSpec(input_size=16, geometry="crop"))[0]
    np.testing.assert_array_equal(padded[3:13, 3:13], pixels)
    np.testing.assert_array_equal(padded[2, 3:13], pixels[0])  # mirrored, not zero
    up = PreprocessSpec(input_size=16, geometry="crop", small_image="upscale")
    expected = np.asarray(image.resize((16, 16), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(fit_geometry(image, up)[0], expected)


def test_normalize_value_range_mean_std_order_layout() -> None:
    crops = np.random.default_rng(0).integers(0, 256, (2, 4, 4, 3), dtype=np.uint8)
    spec = PreprocessSpec(
        input_size=4,
        value_range=(-1.0, 1.0),
        mean=(0.1, 0.2, 0.3),
        std=(0.5, 0.25, 2.0),
        channel_order="BGR",
        layout="NCHW",
    )
    x = crops.astype(np.float64) / 255.0 * 2.0 - 1.0
    x = (x - np.array([0.1, 0.2, 0.3])) / np.array([0.5, 0.25, 2.0])
    expected = x[..., ::-1].transpose(0, 3, 1, 2)
    np.testing.assert_allclose(normalize(crops, spec), expected, atol=1e-5)


def test_reducing_gap_box_reduces_by_whole_factors_then_resamples() -> None:
    image = noise_image(200)
    spec = PreprocessSpec(input_size=50, reducing_gap=1.0)
    # 200 -> 50 is a whole factor: a 4 x 4 box reduce and no resample after it.
    np.testing.assert_array_equal(fit_geometry(image, spec)[0], np.asarray(image.reduce(4)))
    # 200 -> 64 reduces by 3, then resamples the rest: on a smooth image, close to one
    # bilinear resample (on noise every filter differs).
    smooth = noise_image(20).resize((200, 200), Image.Resampling.BICUBIC)
    odd = replace(spec, input_size=64)
    gap = fit_geometry(smooth, odd)[0].astype(int)
    one = fit_geometry(smooth, replace(odd, reducing_gap=0.0))[0].astype(int)
    assert gap.shape == one.shape == (64, 64, 3) and np.abs(gap - one).mean() < 4
    # Off (the default), the same image goes through one bilinear resample: other pixels.
    one_resample = fit_geometry(image, replace(spec, reducing_gap=0.0))[0]
    assert not np.array_equal(one_resample, np.asarray(image.reduce(4)))
    with pytest.raises(ValueError, match="reducing_gap 0.5 must be 0"):
        PreprocessSpec(reducing_gap=0.5)


def test_reducing_gap_is_written_only_when_set_so_older_scanners_read_the_model() -> None:
    off, on = PreprocessSpec(input_size=64), PreprocessSpec(input_size=64, reducing_gap=2.0)
    assert "reducing_gap" not in off.to_dict() and on.to_dict()["reducing_gap"] == 2.0
    assert PreprocessSpec.from_dict(off.to_dict()) == off  # and metadata written before it
    assert PreprocessSpec.from_dict(on.to_dict()) == on
    with pytest.raises(ValueError, match="reducing_gap needs geometry resize"):
        PreprocessSpec(geometry="crop", reducing_gap=1.0)
    with pytest.raises(ValueError, match="other than nearest"):
        PreprocessSpec(resize_filter="nearest", reducing_gap=1.0)


def test_spec_round_trips_and_rejects_nonsense() -> None:
    spec = PreprocessSpec(input_size=64, geometry="crop", crop_grid=2, mean=(0.5, 0.5, 0.5))
    assert PreprocessSpec.from_dict(spec.to_dict()) == spec
    assert spec.crops_per_image == 4 and replace(spec, geometry="resize").crops_per_image == 1
    with pytest.raises(ValueError, match="geometry 'zoom'"):
        PreprocessSpec(geometry="zoom")
    with pytest.raises(ValueError, match="unknown preprocessing keys: colour"):
        PreprocessSpec.from_dict({"colour": "yes"})
