"""Skin tone of a face image as the Individual Typology Angle (ITA): a proxy for a bias audit.

ITA = arctan((L* - 50) / b*) in degrees (Chardon et al. 1991), from the median CIELAB L* and b*
(sRGB, D65 white) of the skin pixels in the face region, binned as Del Bino & Bernerd (2013) do:
very light > 55 >= light > 41 >= intermediate > 28 >= tan > 10 >= brown > -30 >= dark.

ITA measures the colour of pixels, not people: lighting, white balance, exposure and make-up move
it by tens of degrees, and it says nothing about anyone's ethnicity or identity. It is used here
only because the real photos carry no demographic labels.

Skin pixels: the rule of Chai & Ngan (1999) on JPEG's full-range BT.601 YCbCr (77 <= Cb <= 127,
133 <= Cr <= 173), minus clipped pixels (a channel >= 250 lost its hue to over-exposure, a
brightest channel < 20 is shadow and sensor noise), inside the face box.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Box = tuple[int, int, int, int]  # left, top, right, bottom in pixels (right, bottom exclusive)
# Where the face is: the face detector's box when there is one, a central crop otherwise. None
# means no face was found (the image then has no skin tone).
FaceBox = Callable[[np.ndarray], Box | None]

# (name, lower edge): a bin holds angles above its lower edge up to the previous bin's edge.
ITA_BINS = (
    ("very light", 55.0),
    ("light", 41.0),
    ("intermediate", 28.0),
    ("tan", 10.0),
    ("brown", -30.0),
    ("dark", -np.inf),
)
NO_SKIN = "no skin found"
CENTRAL_SHARE = 0.4  # central_box's first docstring line says this share: keep them in step
MIN_SKIN_SHARE = 0.1  # fewer skin pixels than this share of the box: hair, cloth or background

# sRGB (IEC 61966-2-1) linear RGB -> XYZ, and the D65 reference white (Y = 1).
SRGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
D65_WHITE = np.array([0.95047, 1.0, 1.08883])


def central_box(pixels: np.ndarray) -> Box:
    """Central crop, the middle 40 % x 40 % of the image (no face detector).

    Eyes to upper lip on an aligned face crop (FFHQ, StyleGAN, CIPLAB); on loosely framed photos
    (LFW) it may hold background, which the skin mask then drops."""
    h, w = pixels.shape[:2]
    margin_x, margin_y = round(w * (1 - CENTRAL_SHARE) / 2), round(h * (1 - CENTRAL_SHARE) / 2)
    return margin_x, margin_y, max(margin_x + 1, w - margin_x), max(margin_y + 1, h - margin_y)


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of uint8 sRGB values, shape (..., 3) -> (..., 3) float64 L*, a*, b*."""
    c = np.asarray(rgb, np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    t = linear @ SRGB_TO_XYZ.T / D65_WHITE
    delta = 6 / 29
    f = np.where(t > delta**3, np.cbrt(t), t / (3 * delta**2) + 4 / 29)
    lightness = 116 * f[..., 1] - 16
    return np.stack(
        [lightness, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1
    )


def skin_mask(rgb: np.ndarray) -> np.ndarray:
    """Boolean mask of the skin-coloured, unclipped pixels of uint8 RGB (..., 3)."""
    c = np.asarray(rgb, np.float64)
    r, g, b = c[..., 0], c[..., 1], c[..., 2]
    cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
    unclipped = (c.max(axis=-1) < 250) & (c.max(axis=-1) >= 20)
    return unclipped & (cb >= 77) & (cb <= 127) & (cr >= 133) & (cr <= 173)


def ita(lightness: float, b_star: float) -> float:
    """ITA in degrees. atan2 equals the textbook arctan((L* - 50) / b*) for b* > 0 (all skin)
    and stays defined at b* = 0."""
    return float(np.degrees(np.arctan2(lightness - 50.0, b_star)))


def ita_bin(angle: float | None) -> str:
    if angle is None:
        return NO_SKIN
    return next(name for name, lower in ITA_BINS if angle > lower)


def skin_ita(pixels: np.ndarray, face_box: FaceBox = central_box) -> float | None:
    """ITA of the median L* and b* of the skin pixels in the face box of uint8 RGB (h, w, 3),
    or None when no face or too little skin is found."""
    box = face_box(pixels)
    if box is None:
        return None
    left, top, right, bottom = box
    region = pixels[top:bottom, left:right].reshape(-1, 3)
    skin = region[skin_mask(region)]
    if len(skin) == 0 or len(skin) < MIN_SKIN_SHARE * len(region):
        return None
    lab = srgb_to_lab(skin)
    return ita(float(np.median(lab[:, 0])), float(np.median(lab[:, 2])))
