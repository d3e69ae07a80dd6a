"""The reviewed baseline: record findings, keep decisions, fail only on what is new."""

from __future__ import annotations

import datetime
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from commands import facescan, read_report, run_in_process
from conftest import save_image

from scanner.baseline import Baseline, BaselineError, Entry, Review, update
from scanner.command import save_baseline
from scanner.options import ScanOptions
from scanner.results import ScanResult
from scanner.settings import ScanSettings
from scanner.source import Source


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def pile(tmp_path: Path) -> Path:
    folder = tmp_path / "pile"
    for i in range(3):
        save_image(folder / f"red{i}.png", (255 - i, 0, 0))  # flagged, distinct bytes
    save_image(folder / "blue.png", (0, 0, 255))
    return folder


def decide(baseline: Path, image: Path, decision: str, reviewer: str = "ana") -> None:
    """What a moderator does: edit the entry of the file they looked at."""
    doc = json.loads(baseline.read_text())
    entry = doc["entries"][sha(image)]
    entry.update(decision=decision, reviewer=reviewer, note="looked at it", date="2024-05-01")
    baseline.write_text(json.dumps(doc, indent=2))


def test_create_records_every_flagged_file_as_pending_in_a_diffable_file(
    tmp_path: Path, pile: Path, red_model: Path
) -> None:
    baseline = tmp_path / "baseline.json"
    done = facescan("baseline", "create", baseline, pile, "--model", red_model)
    assert done.returncode == 0, done.stderr  # recording is not a gate: flagged files pass
    text = baseline.read_text(encoding="utf-8")
    doc = json.loads(text)
    assert text == json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    reds = sorted(pile.glob("red*.png"))
    assert set(doc["entries"]) == {sha(p) for p in reds}  # flagged only, keyed by content
    for path in reds:
        entry = doc["entries"][sha(path)]
        assert entry["decision"] == "pending" and entry["paths"] == [str(path)]
        assert entry["reviewer"] == entry["note"] == ""
        datetime.date.fromisoformat(entry["date"])
    assert "3 new findings recorded as pending" in done.stderr
    again = facescan("baseline", "create", baseline, pile, "--model", red_model)
    assert again.returncode == 2 and "exists: facescan baseline update" in again.stderr


def test_what_fails_with_a_baseline(tmp_path: Path, pile: Path, red_model: Path) -> None:
    baseline = tmp_path / "b.json"
    assert run_in_process(pile, model=red_model, baseline=baseline, update_baseline=True) == 1
    decide(baseline, pile / "red0.png", "approved")
    decide(baseline, pile / "red1.png", "confirmed-ai")
    scan = {"model": red_model, "baseline": baseline, "quiet": True}

    def statuses(*extra: object) -> dict[str, str]:
        out = tmp_path / "r.csv"
        run_in_process(pile, out=out, **scan)
        return {Path(r["path"]).name: r["baseline"] for r in read_report(out)}

    assert statuses() == {
        "blue.png": "",
        "red0.png": "approved",
        "red1.png": "confirmed-ai",
        "red2.png": "pending",
    }
    assert run_in_process(pile, **scan) == 1  # confirmed AI fails until the file is removed
    (pile / "red1.png").unlink()
    assert run_in_process(pile, **scan) == 0  # approved and pending files pass
    assert run_in_process(pile, **scan, fail_on="ai,pending") == 1  # unless pending must fail
    decide(baseline, pile / "red2.png", "approved")
    assert run_in_process(pile, **scan, fail_on="ai,pending") == 0
    save_image(pile / "new.png", (255, 0, 0), size=30)
    assert run_in_process(pile, **scan) == 1  # a new flagged file fails
    assert statuses()["new.png"] == "new"


def test_a_moved_file_keeps_its_decision_and_a_changed_one_does_not(
    tmp_path: Path, pile: Path, red_model: Path
) -> None:
    baseline = tmp_path / "b.json"
    run_in_process(pile, model=red_model, baseline=baseline, update_baseline=True, quiet=True)
    for name in ("red0.png", "red1.png", "red2.png"):
        decide(baseline, pile / name, "approved")
    (pile / "moved").mkdir()
    shutil.move(pile / "red0.png", pile / "moved" / "renamed.png")
    save_image(pile / "red1.png", (255, 0, 0), size=25)  # edited: other bytes
    out = tmp_path / "r.jsonl"
    code = run_in_process(pile, model=red_model, baseline=baseline, out=out, quiet=True)
    rows = {Path(r["path"]).name: r["baseline"] for r in read_report(out)}
    assert rows["renamed.png"] == "approved" and rows["red1.png"] == "new" and code == 1
    # An update refreshes where the approved file lives, and keeps the decision.
    facescan("baseline", "update", baseline, pile, "--model", red_model)
    entry = json.loads(baseline.read_text())["entries"][sha(pile / "moved" / "renamed.png")]
    assert entry["decision"] == "approved" and entry["reviewer"] == "ana"
    assert entry["paths"] == [str(pile / "moved" / "renamed.png")]


def test_update_keeps_decisions_adds_new_ones_and_reports_unseen_entries(
    tmp_path: Path, pile: Path, red_model: Path
) -> None:
    baseline = tmp_path / "b.json"
    facescan("baseline", "create", baseline, pile, "--model", red_model)
    decide(baseline, pile / "red0.png", "approved")
    gone = sha(pile / "red2.png")
    (pile / "red2.png").unlink()
    save_image(pile / "fresh.png", (250, 0, 0), size=26)
    done = facescan("baseline", "update", baseline, pile, "--model", red_model)
    assert done.returncode == 0, done.stderr
    doc = json.loads(baseline.read_text())["entries"]
    assert doc[sha(pile / "red0.png")]["decision"] == "approved"
    assert doc[sha(pile / "fresh.png")]["decision"] == "pending"
    assert gone in doc  # kept: a scan of the changed files alone sees few of the entries
    assert "1 new findings recorded as pending, 2 entries seen again" in done.stderr
    assert "1 entries not seen in this scan, kept" in done.stderr and "red2.png" in done.stderr
    before = baseline.read_text()
    facescan("baseline", "update", baseline, pile, "--model", red_model)
    assert baseline.read_text() == before  # stable: nothing changed, nothing in the diff
    pruned = facescan("baseline", "update", baseline, pile, "--model", red_model, "--prune")
    assert "dropped (--prune-baseline)" in pruned.stderr
    assert gone not in json.loads(baseline.read_text())["entries"]


def test_update_baseline_on_a_scan_gates_on_the_old_baseline_and_records(
    tmp_path: Path, pile: Path, red_model: Path
) -> None:
    baseline = tmp_path / "b.json"
    done = facescan(pile, "--model", red_model, "--baseline", baseline, "--update-baseline")
    assert done.returncode == 1  # the nightly job still fails on what it found new tonight
    assert len(json.loads(baseline.read_text())["entries"]) == 3  # and records it for review
    again = facescan(pile, "--model", red_model, "--baseline", baseline, "--update-baseline")
    assert again.returncode == 0  # pending now, until a reviewer decides


def test_an_incomplete_scan_does_not_write_the_baseline(tmp_path: Path) -> None:
    baseline = tmp_path / "b.json"
    review = Review(Baseline(), "ai", record=True)
    review(ScanResult("a.png", "ok", "ai", 0.9, sha256="a" * 64))
    settings = ScanSettings.of()
    options = ScanOptions(settings, Source(("x",)), baseline=baseline, update_baseline=True)
    assert save_baseline(options, review, "interrupted") is None
    assert not baseline.exists()
    assert save_baseline(options, review, "complete") is not None
    assert "a" * 64 in Baseline.load(baseline).entries


def test_update_is_bounded_by_findings() -> None:
    known = Entry("approved", "ana", "fine", "2024-05-01", ("old.png",))
    review = Review(Baseline({"b" * 64: known}), "ai", record=True)
    for i in range(1000):  # unflagged, unknown files leave no trace
        review(ScanResult(f"{i}.png", "ok", "real", 0.1, sha256=f"{i:064x}"))
    review(ScanResult("moved.png", "ok", "real", 0.1, sha256="b" * 64))
    review(ScanResult("bad.png", "error", error="truncated"))
    assert review.seen == {"b" * 64: {"moved.png"}}
    updated = update(review, prune=False, today="2024-06-01")
    moved = Entry("approved", "ana", "fine", "2024-05-01", ("moved.png",))
    assert updated.baseline.entries == {"b" * 64: moved}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON (line 1, column 2"),
        ('{"entries": {}}', 'is not a facescan baseline (no "facescan_baseline" key)'),
        ('{"facescan_baseline": 2}', "is a version 2 baseline; this facescan reads 1"),
        (
            '{"facescan_baseline": 1, "entries": {"' + "c" * 64 + '": {"decision": "aproved"}}}',
            "decision 'aproved' is not one of pending, approved, confirmed-ai",
        ),
        (
            '{"facescan_baseline": 1, "entries": {"abc": {"decision": "approved"}}}',
            "entry 'abc': the key must be the file's sha256",
        ),
        (
            '{"facescan_baseline": 1, "entries": {"' + "d" * 64 + '": {"decision": "approved",'
            ' "note": 3, "paths": "x.png"}}}',
            "note, paths (a list of strings) must be text",
        ),
    ],
)
def test_a_bad_baseline_is_refused_saying_what_is_wrong(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "b.json"
    path.write_text(content)
    with pytest.raises(BaselineError) as refused:
        Baseline.load(path)
    assert message in str(refused.value) and str(path) in str(refused.value)


def test_cli_errors_name_the_baseline(tmp_path: Path, pile: Path, red_model: Path) -> None:
    missing = facescan(pile, "--model", red_model, "--baseline", tmp_path / "none.json")
    assert missing.returncode == 2
    assert "make one with facescan baseline create" in missing.stderr
    (tmp_path / "bad.json").write_text("[]")
    bad = facescan(pile, "--model", red_model, "--baseline", tmp_path / "bad.json")
    assert bad.returncode == 2 and "is not a facescan baseline" in bad.stderr
    assert "Traceback" not in bad.stderr
    update_missing = facescan("baseline", "update", tmp_path / "none.json", pile)
    assert update_missing.returncode == 2
    assert "facescan baseline create makes one" in update_missing.stderr
    prune_alone = facescan(pile, "--baseline", tmp_path / "bad.json", "--prune-baseline")
    assert prune_alone.returncode == 2 and "--prune-baseline needs --update-baseline" in (
        prune_alone.stderr
    )
    (tmp_path / "list").write_text("pile/red0.png\n")
    partial = facescan("baseline", "update", tmp_path / "bad.json", "--files-from", "list",
                       "--prune", cwd=tmp_path)  # fmt: skip
    assert partial.returncode == 2 and "drops what the scan did not see" in partial.stderr
