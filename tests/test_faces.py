"""The face detector (CenterFace) and the face crop: decoding math, crop geometry, draft decodes,
and, with the shared dataset, faces found alone and in group photos."""

from __future__ import annotations

import fnmatch
import io
import math
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import tomllib
from conftest import REPO, noise_image
from images import jpeg_bytes, png_bytes
from PIL import Image

from scanner.faces import (
    CLOSE_UP_FRAME,
    FRAME_GREY,
    MODEL_NAME,
    STRIDE,
    Face,
    FaceCropSpec,
    FaceDetector,
    FacePhoto,
    box_iou,
    crop_square,
    decode_outputs,
    default_detector_path,
    face_crop,
    nms,
)
from scanner.metadata import InvalidModelError
from scanner.testing.group_photos import group_photo


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    # this tree's file (an editable install elsewhere may map scanner.models to another tree)
    return FaceDetector(REPO / "models" / MODEL_NAME, provider="cpu", threads=1)


def face_at(box: tuple[float, float, float, float], eyes=None) -> Face:
    """A face with the given box; eyes default to level, a third of the way down the box."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    left, right = eyes or ((x0 + 0.3 * w, y0 + 0.35 * h), (x0 + 0.7 * w, y0 + 0.35 * h))
    rest = (
        (x0 + w / 2, y0 + h / 2),
        (x0 + 0.35 * w, y0 + 0.75 * h),
        (x0 + 0.65 * w, y0 + 0.75 * h),
    )
    return Face(box, 0.9, (left, right, *rest))


# --- the shipped model -------------------------------------------------------------------------


def test_the_detector_loads_from_the_package() -> None:
    detector = FaceDetector(provider="cpu")
    assert detector.path == default_detector_path()
    assert detector.path.parent == Path(str(resources.files("scanner.models")))
    assert detector.provider == "CPUExecutionProvider"


def test_the_wheel_ships_the_model_with_its_licence_and_origin() -> None:
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["scanner.models"]
    for name in ("centerface.onnx", "CENTERFACE_LICENSE", "README-centerface.md"):
        assert (REPO / "models" / name).is_file(), name
        assert any(fnmatch.fnmatch(name, p) for p in patterns), f"{name} not in package-data"


def test_a_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidModelError, match="face detector model not found"):
        FaceDetector(tmp_path / "nope.onnx")


@pytest.mark.parametrize(
    "image",
    [noise_image(256, seed=1), Image.new("RGB", (100, 60), (128, 128, 128)), noise_image(1)],
    ids=["noise", "flat", "one-pixel"],
)
def test_no_face_in_noise_or_flat_images(detector: FaceDetector, image: Image.Image) -> None:
    assert detector.detect(image) == []


def test_detect_needs_rgb(detector: FaceDetector) -> None:
    with pytest.raises(ValueError, match="RGB image, got mode L"):
        detector.detect(Image.new("L", (64, 64)))


def test_a_large_image_is_shrunk_to_detect_size_and_a_small_one_only_padded(
    detector: FaceDetector,
) -> None:
    assert detector.detect_size == 960
    tensor, scale, pad = detector._input_tensor(Image.new("RGB", (1920, 1050), (9, 9, 9)), 960)
    assert tensor.shape == (1, 3, 544, 960) and scale == (2.0, 1050 / 525) and pad == 0
    tensor, scale, pad = detector._input_tensor(Image.new("RGB", (100, 70), (9, 9, 9)), 960)
    assert tensor.shape == (1, 3, 96, 128) and scale == (1.0, 1.0) and pad == 0
    assert tensor[0, :, :70, :100].min() == 9 and tensor[0, :, 70:, :].max() == 0  # black pad


def test_the_close_up_retry_frames_the_image_in_grey_at_the_same_scale(
    detector: FaceDetector,
) -> None:
    image = Image.new("RGB", (100, 70), (9, 9, 9))
    tensor, scale, pad = detector._input_tensor(image, 960, CLOSE_UP_FRAME)
    assert pad == 50 and scale == (1.0, 1.0)  # half the longer side, on each side
    assert tensor.shape == (1, 3, 192, 224)  # 170 x 200, then black to multiples of 32
    image_part = tensor[0, :, 50:120, 50:150]
    assert image_part.min() == image_part.max() == 9
    assert tensor[0, :, :50, :200].min() == tensor[0, :, :170, 150:200].max() == FRAME_GREY
    assert tensor[0, :, 170:, :].max() == 0 and tensor[0, :, :, 200:].max() == 0


def test_the_framed_copy_finds_a_face_where_the_image_shows_it(
    shared_data: Path, detector: FaceDetector
) -> None:
    """Boxes found in the framed copy come back to the image's own pixels."""
    compared = 0
    for path in sorted(shared_data.glob("test/*/*.jpg"))[::40]:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
        direct = detector.detect(rgb, 256, close_ups=False)
        framed = detector._detect(rgb, 256, CLOSE_UP_FRAME)
        if direct and framed:
            compared += 1
            assert float(box_iou(direct[0].box, np.asarray([framed[0].box]))[0]) >= 0.7, path
    assert compared >= 3


def test_faces_that_fill_the_frame_are_found(shared_data: Path, detector: FaceDetector) -> None:
    """UTKFace's tight crops (faces3), cut to their central half: the face fills the picture.
    Without the grey frame 6 of these 20 had a face (tools/measure_faces.py found)."""
    faces3 = shared_data.parent / "faces3"
    if not faces3.is_dir():
        pytest.skip(f"faces3 (UTKFace close-ups) not found beside {shared_data}")
    found = {True: 0, False: 0}
    for path in sorted(faces3.glob("test/real/utk_*.jpg"))[::10]:
        with Image.open(path) as image:
            w, h = image.size
            half = image.convert("RGB").crop((w // 4, h // 4, w // 4 + w // 2, h // 4 + h // 2))
        photo = FacePhoto(png_bytes(half))
        for close_ups in (False, True):
            faces = [f for f in photo.detect(detector, 64, close_ups) if f.size >= 64]
            found[close_ups] += bool(faces)
            for face in faces:  # the face, in the image, filling most of it
                x0, y0, x1, y1 = face.box
                assert 0 <= x0 < x1 <= w // 2 and 0 <= y0 < y1 <= h // 2
                assert face.size >= 0.8 * w // 2
    assert found[False] <= 10 and found[True] >= 17, found


# --- decoding and NMS on hand-built maps -------------------------------------------------------


def maps(h: int = 16, w: int = 16) -> tuple[np.ndarray, ...]:
    return (np.zeros((1, h, w)), np.zeros((2, h, w)), np.zeros((2, h, w)), np.zeros((10, h, w)))


def put_face(arrays, row, col, score, height, width, offset=(0.0, 0.0), marks=None) -> None:
    heatmap, scale, offset_map, landmarks = arrays
    heatmap[0, row, col] = score
    scale[:, row, col] = np.log(height / STRIDE), np.log(width / STRIDE)
    offset_map[:, row, col] = offset
    if marks is not None:  # (x, y) fractions of the box; the map stores (y, x)
        landmarks[:, row, col] = [v for x, y in marks for v in (y, x)]


def test_a_peak_becomes_its_box_and_landmarks() -> None:
    arrays = maps()
    marks = [(0.3, 0.4), (0.7, 0.4), (0.5, 0.6), (0.35, 0.8), (0.65, 0.8)]
    put_face(arrays, row=5, col=7, score=0.9, height=40, width=24, offset=(0.25, -0.5), marks=marks)
    [face] = decode_outputs(*arrays, threshold=0.5)
    # centre y = (5 + 0.25 + 0.5) * 4 = 23, centre x = (7 - 0.5 + 0.5) * 4 = 28
    np.testing.assert_allclose(face.box, (16, 3, 40, 43), atol=1e-5)
    assert face.score == pytest.approx(0.9)
    expected = [(16 + fx * 24, 3 + fy * 40) for fx, fy in marks]
    np.testing.assert_allclose(face.landmarks, expected, atol=1e-5)


def test_weak_peaks_are_ignored_and_overlapping_ones_merged() -> None:
    arrays = maps()
    put_face(arrays, 4, 4, 0.8, 20, 20)
    put_face(arrays, 4, 5, 0.95, 20, 20)  # the same face one cell over: one box survives
    put_face(arrays, 12, 12, 0.6, 16, 16)  # another face, far away
    put_face(arrays, 12, 2, 0.4, 16, 16)  # below the threshold
    faces = decode_outputs(*arrays, threshold=0.5)
    assert [round(f.score, 2) for f in faces] == [0.95, 0.6]
    np.testing.assert_allclose(faces[0].box, (12, 8, 32, 28))


def test_no_peak_no_face() -> None:
    assert decode_outputs(*maps(), threshold=0.5) == []


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [0, 5, 10, 15], [0, 8, 10, 18], [20, 20, 30, 30]], float)
    scores = np.array([0.9, 0.95, 0.5, 0.7])
    # 1 (best) overlaps 0 by IoU 1/3 and 2 by 7/13: both go; 3 stands alone
    assert nms(boxes, scores, max_iou=0.3) == [1, 3]
    assert nms(boxes, scores, max_iou=0.5) == [1, 0, 3]  # 0 (IoU 1/3) stays, 2 (0.54) goes
    np.testing.assert_allclose(box_iou(boxes[1], boxes[[0, 2]]), [1 / 3, 7 / 13])


# --- crop geometry -----------------------------------------------------------------------------


def white_box_image(box=(50, 60, 110, 120), size=(200, 200)) -> Image.Image:
    pixels = np.zeros((size[1], size[0], 3), np.uint8)
    x0, y0, x1, y1 = box
    pixels[y0:y1, x0:x1] = 255
    return Image.fromarray(pixels)


@pytest.mark.parametrize("size", [32, 120, 301])
def test_the_crop_is_an_n_by_n_rgb_image(size: int) -> None:
    crop = face_crop(noise_image(200), face_at((50, 60, 110, 120)), size, margin=0.2)
    assert crop.size == (size, size) and crop.mode == "RGB"


def test_the_margin_adds_that_fraction_of_the_box_on_each_side() -> None:
    face = face_at((50, 60, 110, 120))  # 60 px box; margin 0.5: a 120 px square
    crop = np.asarray(face_crop(white_box_image(), face, 120, margin=0.5, align=False))
    assert crop[30:90, 30:90].min() == 255  # the box, at scale 1, in the middle
    assert crop[:, :30].max() == 0 and crop[:, 90:].max() == 0
    assert crop[:30].max() == 0 and crop[90:].max() == 0


def test_a_tall_box_gets_a_square_on_its_longer_side() -> None:
    _, _, side, _ = crop_square(face_at((0, 0, 40, 100)), margin=0.1, align=False)
    assert side == pytest.approx(120)


def test_outside_the_photo_the_crop_is_mirrored() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (100, 100, 3), dtype=np.uint8)
    face = face_at((0, 10, 40, 50))  # at the left edge; margin 0.5: x -20..60, y -10..70
    crop = np.asarray(face_crop(Image.fromarray(pixels), face, 80, margin=0.5, align=False))

    def mirror(start: int, stop: int) -> list[int]:  # -1 -> 0, -2 -> 1, ...
        return [-i - 1 if i < 0 else i for i in range(start, stop)]

    np.testing.assert_array_equal(crop, pixels[np.ix_(mirror(-10, 70), mirror(-20, 60))])


def test_alignment_levels_the_eyes() -> None:
    angle = math.radians(25)
    centre, half = np.array([100.0, 100.0]), 20.0
    left = centre - half * np.array([math.cos(angle), math.sin(angle)])
    right = centre + half * np.array([math.cos(angle), math.sin(angle)])
    pixels = np.zeros((200, 200, 3), np.uint8)
    for (x, y), colour in ((left, (255, 0, 0)), (right, (0, 0, 255))):
        pixels[round(y) - 3 : round(y) + 4, round(x) - 3 : round(x) + 4] = colour
    face = face_at((60, 60, 140, 140), eyes=((left[0], left[1]), (right[0], right[1])))
    assert crop_square(face, 0.0, align=True)[3] == pytest.approx(angle)
    crop = np.asarray(face_crop(Image.fromarray(pixels), face, 80, margin=0.0, align=True))
    red = np.argwhere((crop[..., 0] > 128) & (crop[..., 2] < 64)).mean(axis=0)
    blue = np.argwhere((crop[..., 2] > 128) & (crop[..., 0] < 64)).mean(axis=0)
    assert abs(red[0] - blue[0]) < 1.0  # same row: level
    assert blue[1] - red[1] == pytest.approx(40, abs=1.5)  # left eye left, distance kept
    assert (red + blue) / 2 == pytest.approx([40, 40], abs=1.0)  # centred as the box was


def test_crop_spec_round_trips_and_names_bad_values() -> None:
    spec = FaceCropSpec(margin=0.4, align=False, output_size=128, min_face=32)
    assert FaceCropSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="unknown face crop keys: colour"):
        FaceCropSpec.from_dict({**spec.to_dict(), "colour": 1})
    with pytest.raises(
        ValueError, match="detect_size 100 is not a multiple.*margin -1 is not in 0..2"
    ):
        FaceCropSpec(margin=-1, detect_size=100)


# --- camera photos -----------------------------------------------------------------------------


def smooth_photo(width: int, height: int) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width]
    pattern = 128 + 100 * np.sin(x / 37.0) * np.cos(y / 23.0)
    return Image.fromarray(np.repeat(pattern[..., None], 3, axis=2).astype(np.uint8))


def test_a_jpeg_is_drafted_for_detection_and_decoded_finer_only_when_a_face_needs_it() -> None:
    photo = FacePhoto(jpeg_bytes(smooth_photo(2000, 1500), quality=90), detect_size=640)
    assert (photo.width, photo.height) == (2000, 1500)
    assert photo.detection_image.size == (1000, 750)  # 1/2: 1/4 would be under 640 px
    spec = FaceCropSpec(output_size=128, margin=0.25)
    big = photo.crop(face_at((100, 100, 900, 900)), spec)  # square 1200 px: 1/2 is plenty
    assert big.size == (128, 128) and photo._decodes == [photo.detection_image]
    photo.crop(face_at((1000, 1000, 1300, 1300)), spec)  # square 450 px: needs the full decode
    assert [image.width for image in photo._decodes] == [1000, 2000]
    assert photo.image_at(0.6) is photo._decodes[1]  # kept and reused


def test_the_finest_decode_the_faces_need_is_made_once_and_serves_them_all() -> None:
    data = jpeg_bytes(smooth_photo(4000, 3000), quality=90)
    spec = FaceCropSpec(output_size=128, margin=0.25)
    # squares of 2,400, 900 and 360 px: alone they need 1/8, 1/2 and the full decode
    faces = [
        face_at(box) for box in ((0, 0, 1600, 1600), (2000, 0, 2600, 600), (0, 2000, 240, 2240))
    ]
    photo = FacePhoto(data, detect_size=960)
    crops = photo.crops(faces, spec)
    assert [image.width for image in photo._decodes] == [1000, 4000]  # no 1/2 decode between
    one_by_one = FacePhoto(data, detect_size=960)
    full = one_by_one.image_at(1.0)
    for face, crop in zip(faces[1:], crops[1:], strict=True):  # both cut from the full decode
        alone = face_crop(full, face, 128, spec.margin, spec.align)
        assert np.array_equal(np.asarray(crop), np.asarray(alone))
    assert np.array_equal(np.asarray(crops[0]), np.asarray(one_by_one.crop(faces[0], spec)))
    assert photo.crops([], spec) == [] and len(photo._decodes) == 2


def test_a_crop_from_a_draft_matches_one_from_the_full_decode() -> None:
    data = jpeg_bytes(smooth_photo(2000, 1500), quality=90)
    face, spec = face_at((400, 300, 1200, 1100)), FaceCropSpec(output_size=128)
    photo = FacePhoto(data)
    drafted = np.asarray(photo.crop(face, spec), np.float32)
    assert [image.width for image in photo._decodes] == [1000]  # cut from the 1/2 decode
    full = Image.open(io.BytesIO(data)).convert("RGB")
    reference = np.asarray(face_crop(full, face, 128, spec.margin, spec.align), np.float32)
    assert np.abs(drafted - reference).mean() < 1.0


def test_exif_rotation_and_other_formats() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # the viewer turns it a quarter: 400 x 300 stored, 300 x 400 shown
    rotated = FacePhoto(jpeg_bytes(smooth_photo(400, 300), exif=exif.tobytes()), detect_size=128)
    assert (rotated.width, rotated.height) == (300, 400)
    assert rotated.detection_image.size == (150, 200)
    png = FacePhoto(png_bytes(smooth_photo(400, 300)), detect_size=128)
    assert png.detection_image.size == (400, 300)  # no draft for PNG: one full decode


# --- with the shared dataset -------------------------------------------------------------------


def test_faces_are_found_in_test_images(shared_data: Path, detector: FaceDetector) -> None:
    sample = sorted(shared_data.glob("test/*/*.jpg"))[::12]
    found = 0
    for path in sample:
        with Image.open(path) as image:
            faces = detector.detect(image.convert("RGB"))
        if faces:
            found += 1
            x0, y0, x1, y1 = faces[0].box
            assert all(x0 <= x <= x1 and y0 <= y <= y1 for x, y in faces[0].landmarks[:3])
    # 99.7 % of the 777 faces2 test images measured (tools/measure_faces.py recall)
    assert found / len(sample) >= 0.95, f"{found} of {len(sample)}"


def test_every_face_of_a_group_photo_is_found(shared_data: Path, detector: FaceDetector) -> None:
    paths = sorted(shared_data.glob("test/*/*.jpg"))[5::37][:6]
    alone = {}
    for path in paths:
        with Image.open(path) as image:
            faces = detector.detect(image.convert("RGB"))
        if faces:  # an extreme close-up can miss alone; the test is about the group
            alone[path] = (faces[0].box, image.size)
    assert len(alone) >= 4
    sources = list(alone)
    sizes = [110, 150, 200, 260, 340, 420][: len(sources)]
    photo, pasted = group_photo(sources, sizes, canvas=(1280, 960), seed=0)
    found = [f.box for f in detector.detect(photo)]  # seen at 640 x 480: faces ~40-160 px
    assert {p.label for p in pasted} <= {"real", "fake"}
    for face in pasted:
        truth = face.to_canvas(*alone[face.path])
        best = float(box_iou(truth, np.asarray(found)).max()) if found else 0.0
        assert best >= 0.5, f"{face.path.name} at {face.square}: best IoU {best:.2f}"
    for x0, y0, x1, y1 in found:  # nothing on the background (a news photo may hold two faces)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        assert any(a <= cx <= c and b <= cy <= d for a, b, c, d in (p.square for p in pasted))
