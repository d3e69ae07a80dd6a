"""The command-line options that more than one command takes (`facescan` scan, `facescan serve`):
declared once, as annotated types, so their names, help and checks never drift apart. Light: no
heavy imports, `--help` loads this module."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Model = Annotated[
    Path | None,
    typer.Option(
        metavar="NAME|FILE",
        help="A shipped model by name: accurate (the default) | fast (~5x faster, weaker; "
        "models/README.md); or an ONNX file exported by facescan-train.",
    ),
]
Precision = Annotated[
    str, typer.Option(help="Of a shipped model: auto (int8 when shipped, else fp32) | fp32 | int8.")
]
Threshold = Annotated[
    float | None, typer.Option(help="Flag when score >= this [default: the model's].")
]
Provider = Annotated[str, typer.Option(help="auto | cpu | cuda (cuda never falls back).")]
Workers = Annotated[int | None, typer.Option(help="Decode threads [default: cores].")]
Threads = Annotated[
    int | None,
    typer.Option(
        help="onnxruntime intra-op threads [default: 1 where the decode workers also score "
        "(a scan on the CPU), else onnxruntime's own]."
    ),
]
MaxPixels = Annotated[
    int, typer.Option(help="Refuse images with more pixels (decompression bombs).")
]
MaxBytes = Annotated[int, typer.Option(help="Refuse files larger than this.")]
IgnoreMetadata = Annotated[
    bool,
    typer.Option(
        help="Label by score alone, even when metadata or a C2PA credential says AI-generated "
        "(both are still reported)."
    ),
]
C2paTrust = Annotated[
    list[Path] | None,
    typer.Option(
        metavar="FILE",
        help="PEM certificates a C2PA signer must chain to for its credential to be valid "
        "(repeatable; needs facescan[provenance]). Nothing is fetched.",
    ),
]
Faces = Annotated[
    str,
    typer.Option(
        help="auto: score each face the detector finds, when the model was trained on face "
        "crops (its metadata says so); off: score whole images."
    ),
]
MinFace = Annotated[
    int | None,
    typer.Option(
        help="Faces smaller than this many pixels (the box's longer side) are listed, not "
        "scored: too few pixels to judge. It also sets the resolution detection runs at (such "
        "a face is about 32 px there): a face far smaller may not be found at all, and a "
        "scored face's box, so its score, can move a little with it "
        "[default: the model's; the shipped one's is 64]."
    ),
]
Debug = Annotated[bool, typer.Option(help="Show tracebacks of internal errors.")]
