"""Bias audit: skin tone (ITA) on patches of known colour, Wilson intervals against published
values, the gap rule, prompt parsing, and `facescan-train audit` end to end on generated images."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import build_red_model
from PIL import Image

from scanner.preprocess import PreprocessSpec
from trainer import data
from trainer.annotated_groups import age_group, annotated_groups
from trainer.config import TrainerError
from trainer.fairness_stats import Rate, largest_gap, wilson
from trainer.prompt_groups import (
    pollinations_attributes,
    prompt_groups,
    read_sdfd_prompts,
    sdfd_prompt_attributes,
)
from trainer.skin_tone import NO_SKIN, central_box, ita_bin, skin_ita, srgb_to_lab

BACKGROUND = (40, 60, 200)  # blue: never skin, so only the face region can set the tone

# sRGB -> CIELAB (D65) of the primaries and white as published by Bruce Lindbloom's colour
# calculator (sRGB, reference white D65) and Wikipedia's "CIELAB color space" article.
PUBLISHED_LAB = [
    ((255, 0, 0), (53.2408, 80.0925, 67.2032)),
    ((0, 255, 0), (87.7347, -86.1827, 83.1793)),
    ((0, 0, 255), (32.2970, 79.1875, -107.8602)),
    ((255, 255, 255), (100.0, 0.0, 0.0)),
]
# Skin-like patches, one per ITA bin, with L* and b* computed independently by LittleCMS 2
# (Pillow 13 ImageCms, sRGB profile -> Lab profile with a 6500 K white, 8-bit Lab), and the bin
# their textbook ITA arctan((L* - 50) / b*) falls in, each at least 4 degrees from an edge.
SKIN_PATCHES = [
    ((232, 200, 180), 83.14, 14, "very light"),  # ITA 67.1
    ((210, 165, 140), 71.37, 20, "light"),  # 46.9
    ((200, 150, 120), 66.27, 24, "intermediate"),  # 34.1
    ((175, 125, 95), 56.86, 24, "tan"),  # 16.0
    ((150, 105, 75), 48.63, 24, "brown"),  # -3.3
    ((100, 68, 52), 32.16, 16, "dark"),  # -48.1
]


def face_on_background(colour: tuple[int, int, int], size: int = 60) -> np.ndarray:
    """A face-coloured square over the middle half of a blue image."""
    pixels = np.full((size, size, 3), BACKGROUND, np.uint8)
    pixels[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = colour
    return pixels


@pytest.mark.parametrize(("rgb", "lab"), PUBLISHED_LAB)
def test_srgb_to_lab_matches_published_values(rgb: tuple, lab: tuple) -> None:
    np.testing.assert_allclose(srgb_to_lab(np.array(rgb, np.uint8)), lab, atol=0.01)


@pytest.mark.parametrize(("rgb", "lightness", "b_star", "expected"), SKIN_PATCHES)
def test_ita_of_a_known_skin_colour_lands_in_its_bin(
    rgb: tuple, lightness: float, b_star: float, expected: str
) -> None:
    angle = skin_ita(face_on_background(rgb))
    assert angle is not None
    # 8-bit Lab rounds b* to a whole unit and LittleCMS converts through a D50 connection
    # space: up to 2 degrees of ITA at these b*, well inside the 4-degree margin to a bin edge.
    assert angle == pytest.approx(math.degrees(math.atan((lightness - 50) / b_star)), abs=2.0)
    assert ita_bin(angle) == expected


def test_bin_edges_belong_to_the_lower_bin_and_no_skin_is_its_own_group() -> None:
    assert [ita_bin(a) for a in (55.0, 55.01, 41.0, 10.0, -30.0, -30.01)] == [
        "light",
        "very light",
        "intermediate",
        "brown",
        "dark",
        "dark",
    ]
    assert ita_bin(None) == NO_SKIN


def test_non_skin_and_clipped_pixels_give_no_skin_tone() -> None:
    assert skin_ita(np.full((40, 40, 3), BACKGROUND, np.uint8)) is None
    assert skin_ita(np.full((40, 40, 3), (255, 230, 215), np.uint8)) is None  # red clipped
    assert skin_ita(np.full((40, 40, 3), (14, 9, 7), np.uint8)) is None  # black


def test_the_face_box_decides_where_skin_is_read() -> None:
    pixels = np.full((60, 60, 3), BACKGROUND, np.uint8)
    pixels[:20, :20] = (100, 68, 52)  # dark skin in the top-left corner only
    assert central_box(pixels) == (18, 18, 42, 42)
    assert skin_ita(pixels) is None  # the central crop sees only background
    angle = skin_ita(pixels, face_box=lambda p: (0, 0, 20, 20))
    assert ita_bin(angle) == "dark"
    assert skin_ita(pixels, face_box=lambda p: None) is None  # no face found


def test_wilson_matches_newcombes_published_intervals() -> None:
    # Newcombe (1998), Statistics in Medicine 17:857-872, Table I, method 3 (score interval).
    published = {
        (81, 263): (0.2553, 0.3662),
        (15, 148): (0.0624, 0.1605),
        (0, 20): (0.0, 0.1611),
        (1, 29): (0.0061, 0.1718),
    }
    for (k, n), interval in published.items():
        assert wilson(k, n) == pytest.approx(interval, abs=5e-5)
    # By hand, 5/10, z = 1.96: centre (0.5 + 0.19208) / 1.38416 = 0.5; half-width
    # 1.96 / 1.38416 * sqrt(0.025 + 0.009604) = 0.26340.
    assert wilson(5, 10) == pytest.approx((0.23660, 0.76340), abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)


def test_a_rates_complement_has_the_mirrored_interval() -> None:
    low, high = Rate(15, 148).interval
    assert Rate(15, 148).complement().interval == pytest.approx((1 - high, 1 - low))


def test_gap_rule_needs_the_ratio_and_intervals_apart() -> None:
    # 20/100 [13.3 %, 28.9 %] against 5/100 [2.2 %, 11.2 %]: 4x and apart.
    gap = largest_gap({"a": Rate(20, 100), "b": Rate(5, 100), "c": Rate(10, 100)})
    assert gap is not None
    assert (gap["worst"], gap["best"], gap["ratio"]) == ("a", "b", pytest.approx(4.0))
    assert not gap["intervals_overlap"] and gap["exceeds_rule"]
    # 3/20 against 1/20: 3x, but the intervals overlap, so it could be noise.
    gap = largest_gap({"a": Rate(3, 20), "b": Rate(1, 20)})
    assert gap is not None and gap["intervals_overlap"] and not gap["exceeds_rule"]
    # The best group has no errors: no ratio, and still a gap when the intervals are apart.
    gap = largest_gap({"a": Rate(30, 100), "b": Rate(0, 100)})
    assert gap is not None and gap["ratio"] is None and gap["exceeds_rule"]
    # Groups under the minimum size are not ranked.
    assert largest_gap({"a": Rate(9, 9), "b": Rate(0, 100)}, min_group=10) is None


def test_pollinations_names_with_cut_words() -> None:
    cut = "poll_109_20241130142028_A_close-up_shot_of_a_child_non-binary_per"
    assert pollinations_attributes(cut) == {"age": "child", "gender": "non-binary"}
    fragment = "poll_0_20241130135552_A_close-up_shot_of_a_middle-aged_genderquee"
    assert pollinations_attributes(fragment) == {"age": "middle-aged", "gender": "genderqueer"}
    too_short = "poll_9_20241130135552_A_close-up_shot_of_a_young_adult_fe"
    assert pollinations_attributes(too_short) == {"age": "young adult"}
    whole = "poll_5_20241130135552_A_close-up_shot_of_a_elderly_female_person_of_East_Asian_desc"
    assert pollinations_attributes(whole) == {
        "age": "elderly",
        "gender": "female",
        "ethnicity": "East Asian",
    }
    assert pollinations_attributes("poll_1_20241130135540_prompt") == {}
    assert pollinations_attributes("z140k_00123") is None


SDFD_ROWS = [
    ["anB-107,3", "Black, wearing cap, androgynous person, white hair, , brown eyes", "4.78", "3"],
    ["bgM-12,7", "Middle Eastern, gbaby girl, hair clips, having wrinkles,  Ultra HD", "4.78", "7"],
    ["woWS-60,5", "[White,  woman,  : Southeast Asian,  woman, ], wearing hat", "4.78", "5"],
    ["maE2-4,1", "East Asian, sman, black hair, beard, Canon Eos 5D", "4.77", "1"],
]


def write_sdfd_prompts(path: Path) -> Path:
    """A prompt list in gebaltso/SDFD's finalPrompts.csv format (no header, quoted ids)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, quoting=csv.QUOTE_ALL).writerows(SDFD_ROWS)
        f.write("\n")  # a trailing blank line is not a row
    return path


def test_sdfd_prompts_give_age_gender_and_ethnicity(tmp_path: Path) -> None:
    prompts = read_sdfd_prompts(write_sdfd_prompts(tmp_path / "finalPrompts.csv"))
    assert prompt_groups("sdfd_anB-107_3", prompts) == (
        "sdfd",
        {"gender": "androgynous", "ethnicity": "Black"},
    )  # "white hair" is a colour, not an ethnicity
    assert prompt_groups("sdfd_bgM-12_7", prompts) == (
        "sdfd",
        {"age": "baby", "gender": "female", "ethnicity": "Middle Eastern"},
    )  # a stray letter glued to "baby girl"
    assert prompt_groups("sdfd_woWS-60_5", prompts) == (
        "sdfd",
        {"age": "adult", "gender": "female", "ethnicity": "mixed"},
    )
    assert prompt_groups("sdfd_maE2-4_1", prompts) == (
        "sdfd",
        {"age": "adult", "gender": "male", "ethnicity": "East Asian"},
    )
    assert prompt_groups("sdfd_anB-999_1", prompts) == ("sdfd", {})  # not in the list
    assert prompt_groups("sdfd_anB-107_3", None) == ("sdfd", {})  # no list given
    assert sdfd_prompt_attributes("Southeast Asian, boy") == {
        "age": "child",
        "gender": "male",
        "ethnicity": "Southeast Asian",
    }


def test_a_file_that_is_not_an_sdfd_prompt_list_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "prompts.csv"
    bad.write_text("id,prompt\n1,a face\n")
    with pytest.raises(TrainerError, match=r"prompts.csv:1 is not an SDFD prompt row"):
        read_sdfd_prompts(bad)


# The end-to-end set. The red model scores the mean red of the image (0..1), flagged at >= 0.8:
# of these uniform colours only very light skin (red 232) is flagged.
VERY_LIGHT, BROWN, DARK = SKIN_PATCHES[0][0], SKIN_PATCHES[4][0], SKIN_PATCHES[5][0]
REAL = [("a", VERY_LIGHT, 32), ("b", VERY_LIGHT, 32), ("c", VERY_LIGHT, 24)]
REAL += [("d", BROWN, 24), ("e", BROWN, 24), ("f", DARK, 24), ("g", DARK, 24)]
FAKE = [
    ("poll_3_20241130135552_A_close-up_shot_of_a_child_male_person_of", VERY_LIGHT),
    ("poll_4_20241130135552_A_close-up_shot_of_a_child_female_perso", DARK),
    ("poll_6_20241130135552_A_close-up_shot_of_a_elderly_female_p", DARK),
    ("sdfd_anB-107_3", VERY_LIGHT),
    ("sdfd_bgM-12_7", BROWN),
    ("sdfd_woWS-60_5", VERY_LIGHT),
    ("z140k_seed0001", DARK),
]


def make_audit_set(root: Path) -> Path:
    """test/ holds the images above (JPEG q95, one PNG) and a MANIFEST.csv naming where the real
    ones came from (a-c "ffhq", d-g "lfw"); train/ and val/ one image per class."""
    for split in ("train", "val"):
        for label in ("real", "fake"):
            (root / split / label).mkdir(parents=True)
            Image.new("RGB", (24, 24), VERY_LIGHT).save(root / split / label / "x.jpg")
    for folder, images in (("real", REAL), ("fake", [(n, c, 24) for n, c in FAKE])):
        (root / "test" / folder).mkdir(parents=True)
        for name, colour, size in images:
            image = Image.new("RGB", (size, size), colour)
            if name == "g":
                image.save(root / "test" / folder / f"{name}.png")
            else:
                image.save(root / "test" / folder / f"{name}.jpg", quality=95)
    rows = [f"test/real/{n}.jpg,{'ffhq' if n < 'd' else 'lfw'}" for n, _, _ in REAL[:-1]]
    (root / "MANIFEST.csv").write_text("\n".join(["path,generator", *rows, "test/real/g.png,lfw"]))
    return root


def test_audit_end_to_end_writes_its_table_json_and_plots(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="plots need matplotlib: pip install facescan[train]")
    pytest.importorskip("onnx", reason="the tiny test model needs onnx: pip install facescan[dev]")
    from typer.testing import CliRunner

    from trainer.cli import app

    model = build_red_model(tmp_path / "red.onnx", PreprocessSpec(input_size=16), threshold=0.8)
    data = make_audit_set(tmp_path / "data")
    prompts = write_sdfd_prompts(tmp_path / "finalPrompts.csv")
    out = tmp_path / "audit"
    args = ["audit", str(model), str(data), "--prompts", str(prompts), "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output

    report = json.loads((out / "audit.json").read_text())
    assert report["overall"]["false_positive_rate"]["n"] == 7
    assert report["overall"]["false_positive_rate"]["flagged"] == 3
    real = report["real"]["groups"]
    assert {g: (e["n"], e["flagged"]) for g, e in real["skin tone (ITA)"].items()} == {
        "very light": (3, 3),
        "brown": (2, 0),
        "dark": (2, 0),
    }
    assert real["skin tone (ITA)"]["very light"]["ci95"] == pytest.approx([0.4385, 1.0], abs=1e-4)
    assert {g: e["n"] for g, e in real["image size"].items()} == {"24x24": 5, "32x32": 2}
    assert {g: e["n"] for g, e in real["JPEG quality"].items()} == {"q95": 6, "PNG (not JPEG)": 1}
    # Within each source: ffhq holds only the flagged very light faces, lfw the others.
    within = {g: (e["n"], e["flagged"]) for g, e in real["skin tone (ITA), source lfw"].items()}
    assert within == {"brown": (2, 0), "dark": (2, 0)}
    assert set(real["skin tone (ITA), source ffhq"]) == {"very light"}
    assert report["largest_gaps"]["fpr_between_skin_tones_within_a_source"] is None  # n < 10

    ai = report["ai"]["groups"]
    assert {g: (e["n"], e["flagged"]) for g, e in ai["pollinations age"].items()} == {
        "child": (2, 1),
        "elderly": (1, 0),
    }
    assert {g: e["n"] for g, e in ai["pollinations gender"].items()} == {"male": 1, "female": 2}
    assert {g: (e["n"], e["flagged"]) for g, e in ai["sdfd ethnicity"].items()} == {
        "Black": (1, 1),
        "Middle Eastern": (1, 0),
        "mixed": (1, 1),
    }
    assert "pollinations ethnicity" not in ai  # no name states one
    assert report["prompt_coverage"]["sdfd"] == {"images": 3, "age": 2, "gender": 3, "ethnicity": 3}

    check = report["ita_by_prompt_ethnicity"]
    assert set(check) == {"sdfd Black", "sdfd Middle Eastern", "sdfd mixed"}
    assert check["sdfd Middle Eastern"]["bins"] == {"brown": 1}
    assert check["sdfd Black"]["median_ita"] == pytest.approx(67.1, abs=2.0)  # the very light patch

    markdown = (out / "audit.md").read_text()
    assert "lighting-sensitive proxy" in markdown and "not a person's ethnicity" in markdown
    assert "| very light | 3 | 3 | 100.0 % [43.9 %, 100.0 %] |" in markdown
    for name in ("fpr_by_group.png", "recall_by_group.png"):
        with Image.open(out / name) as image:
            assert image.format == "PNG" and image.width > 300
    rows = list(csv.DictReader((out / "audit_images.csv").read_text().splitlines()))
    assert len(rows) == 14 and {r["label"] for r in rows} == {"real", "ai"}
    # No manifest column annotates these images: the audit is the one it always was.
    assert "annotated" not in json.dumps(report) and "UTKFace" not in markdown
    assert "age (years)" not in rows[0] and not any("annotated" in key for key in rows[0])


def test_ages_group_at_the_issues_edges_and_unannotated_data_has_no_groups() -> None:
    ages = ["0", "14", "15", "60", "61", "110", " ", "7.0"]
    assert [age_group(a) for a in ages] == [
        "under 15",
        "under 15",
        "15-60",
        "15-60",
        "over 60",
        "over 60",
        None,
        "under 15",
    ]
    sample = data.Sample("x/test/real/a.jpg", "test/real/a.jpg", 0, "test")
    faces2_row = {"test/real/a.jpg": {"path": "test/real/a.jpg", "generator": "ffhq"}}
    faces3_row = {"test/real/a.jpg": {"age": "", "gender": "", "race": ""}}
    assert annotated_groups([sample], faces2_row) == {} == annotated_groups([sample], faces3_row)
    utk = {"test/real/a.jpg": {"age": "64", "gender": "female", "race": "indian"}}
    assert annotated_groups([sample], utk) == {
        "age": ["over 60"],
        "gender": ["female"],
        "race": ["indian"],
    }


# The annotated set: reals carrying faces3's UTKFace columns (name, colour, age, gender, race).
# The red model flags only the very light patches, so every under-15 (very light) is flagged and
# nobody else annotated is; two unannotated very light FFHQ reals are flagged but in no group.
ANNOTATED = [
    (f"u{i}", VERY_LIGHT, str(1 + i), "female", "asian" if i < 5 else "black") for i in range(10)
]
ANNOTATED += [
    (f"m{i}", BROWN, str(15 + 5 * i), "male", "asian" if i < 5 else "black") for i in range(10)
]  # ages 15..60: the 15-60 group's both edges
ANNOTATED += [("o0", DARK, "61", "female", "white"), ("o1", DARK, "80", "male", "white")]
ANNOTATED += [("o2", DARK, "110", "female", "white")]


def make_annotated_set(root: Path) -> Path:
    """make_audit_set's layout with 23 annotated reals, two unannotated reals and two AI faces
    in test/, and a MANIFEST.csv with faces3's age, gender and race columns (blank but for utk)."""
    for split in ("train", "val"):
        for label in ("real", "fake"):
            (root / split / label).mkdir(parents=True)
            Image.new("RGB", (24, 24), VERY_LIGHT).save(root / split / label / "x.jpg")
    rows = ["path,generator,age,gender,race"]
    images = [(f"real/{n}", c, f"utk,{a},{g},{r}") for n, c, a, g, r in ANNOTATED]
    images += [("real/f0", VERY_LIGHT, "ffhq,,,"), ("real/f1", VERY_LIGHT, "ffhq,,,")]
    images += [("fake/z0", DARK, "stylegan,,,"), ("fake/z1", VERY_LIGHT, "stylegan,,,")]
    for name, colour, columns in images:
        (root / "test" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (24, 24), colour).save(root / "test" / f"{name}.jpg", quality=95)
        rows.append(f"test/{name}.jpg,{columns}")
    (root / "MANIFEST.csv").write_text("\n".join(rows) + "\n")
    return root


def test_audit_reports_false_positives_per_annotated_age_gender_and_race(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="plots need matplotlib: pip install facescan[train]")
    pytest.importorskip("onnx", reason="the tiny test model needs onnx: pip install facescan[dev]")
    from typer.testing import CliRunner

    from trainer.cli import app

    model = build_red_model(tmp_path / "red.onnx", PreprocessSpec(input_size=16), threshold=0.8)
    out = tmp_path / "audit"
    args = ["audit", str(model), str(make_annotated_set(tmp_path / "data")), "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output

    report = json.loads((out / "audit.json").read_text())
    overall = report["overall"]["false_positive_rate"]
    assert (overall["n"], overall["flagged"]) == (25, 12)
    assert overall["rate"] == pytest.approx(0.48)
    assert overall["ci95"] == pytest.approx(list(wilson(12, 25)))
    real = report["real"]["groups"]
    counts = {
        name: {g: (e["n"], e["flagged"]) for g, e in real[f"annotated {name}"].items()}
        for name in ("age", "gender", "race")
    }
    assert counts == {
        "age": {"under 15": (10, 10), "15-60": (10, 0), "over 60": (3, 0)},
        "gender": {"female": (12, 10), "male": (11, 0)},
        "race": {"asian": (10, 5), "black": (10, 5), "white": (3, 0)},
    }
    assert real["annotated age"]["under 15"]["ci95"] == pytest.approx([0.7225, 1.0], abs=1e-4)
    assert real["annotated gender"]["female"]["rate"] == pytest.approx(10 / 12)
    assert not any(name.startswith("annotated") for name in report["ai"]["groups"])

    gaps = report["largest_gaps"]["fpr_between_annotated_groups"]
    assert (gaps["age"]["worst"], gaps["age"]["best"]) == ("under 15", "15-60")
    assert gaps["age"]["exceeds_rule"] and gaps["age"]["groups_ranked"] == 2  # over 60: n < 10
    assert gaps["gender"]["exceeds_rule"]
    assert gaps["race"]["ratio"] == 1.0 and not gaps["race"]["exceeds_rule"]
    assert "real: annotated age" in report["largest_gaps"]["exceeding_rule"]
    assert "real: annotated race" not in report["largest_gaps"]["exceeding_rule"]
    check = report["ita_by_annotated_race"]
    assert check["asian"]["bins"] == {"very light": 5, "brown": 5}
    assert check["white"]["bins"] == {"dark": 3}

    markdown = (out / "audit.md").read_text()
    assert "UTKFace dataset's own labels" in markdown
    assert "### annotated age" in markdown
    assert "| under 15 | 10 | 10 | 100.0 % [72.2 %, 100.0 %] |" in markdown
    assert "| over 60 | 3 | 0 | 0.0 % [0.0 %, 56.1 %] |" in markdown
    ages_table = markdown[markdown.index("### annotated age") :]
    assert ages_table.index("under 15") < ages_table.index("15-60") < ages_table.index("over 60")
    assert "FPR between annotated age groups: worst 'under 15' 100.0 %" in markdown
    assert "## Skin-tone proxy against the annotated race (real photos)" in markdown
    assert "| white | 3 | -50.9 | 0 | 0 | 0 | 0 | 0 | 3 | 0 |" in markdown

    lines = (out / "audit_images.csv").read_text().splitlines()
    rows = {r["path"]: r for r in csv.DictReader(lines)}
    assert {k: rows["test/real/o1.jpg"][k] for k in ("age (years)", "annotated age")} == {
        "age (years)": "80",
        "annotated age": "over 60",
    }
    assert (
        rows["test/real/o1.jpg"]["annotated gender"],
        rows["test/real/o1.jpg"]["annotated race"],
    ) == ("male", "white")
    assert (
        rows["test/real/f0.jpg"]["annotated age"] == rows["test/real/f0.jpg"]["age (years)"] == ""
    )
    with Image.open(out / "fpr_by_group.png") as image:
        assert image.format == "PNG"
