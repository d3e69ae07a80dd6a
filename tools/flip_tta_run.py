"""A finished training run, re-scored with flip test-time augmentation, as a new run folder.

    python tools/flip_tta_run.py runs/A-lite0-faces-128 runs/A-lite0-faces-128-tta

`facescan-train train --set tta=flip` wraps the best epoch's model after training (training never
sees the wrapper), so wrapping a finished run's model gives the same run without the hours of
training again: this loads RUN's model.keras, wraps it (trainer/archs.py with_tta), fits the
temperature and threshold again on the same validation split and writes val/test reports and
config.json (settings.tta = "flip") to OUT, ready for `facescan-train export`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from trainer import files, train  # noqa: E402
from trainer.archs import with_tta  # noqa: E402
from trainer.config import TrainConfig  # noqa: E402
from trainer.evaluate import load_run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    model, record = load_run(args.run)
    if record["settings"].get("tta"):
        sys.exit(f"{args.run} already has tta={record['settings']['tta']!r}")
    cfg = TrainConfig.from_dict({**record["settings"], "tta": "flip"})
    decoded, _, manifest = train.load_data(cfg)
    model = with_tta(model, "flip")
    args.out.mkdir(parents=True, exist_ok=True)
    files.atomic_write(args.out / "model.keras", lambda temp: model.save(temp))
    for name in ("splits.csv", "history.csv", "curves.png"):
        shutil.copy(args.run / name, args.out / name)
    calibration, _ = train.calibrate_and_report(model, decoded, cfg.spec(), manifest, args.out)
    record.update(
        settings=cfg.to_dict(),
        model=train.describe_model(cfg),
        calibration=calibration,
        derived_from=f"{args.run} (its model.keras, wrapped by tools/flip_tta_run.py)",
    )
    files.write_text(args.out / "config.json", json.dumps(record, indent=2))
    print(
        f"run written to {args.out} (temperature {calibration['temperature']:.3f}, "
        f"threshold {calibration['threshold']:.4f})"
    )


if __name__ == "__main__":
    main()
