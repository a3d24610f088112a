"""Real sources, their import for training, the tolerant F1 and the real-frame scoreboard."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from lane_seg.artifact import ModelInfo
from lane_seg.cli.main import main
from lane_seg.cli.readme import markers
from lane_seg.data import real_sources
from lane_seg.data.dataset import load_dataset
from lane_seg.data.importers.real import import_real, real_frames_of
from lane_seg.metrics import tolerant_counts, tolerant_counts_by_band
from lane_seg.models import build_model
from lane_seg.models.checkpoint import save_checkpoint
from lane_seg.preprocess import PreprocessConfig
from lane_seg.training.eval.scoreboard import run_scoreboard


def _line(shape, x, width=3):
    m = np.zeros(shape, bool)
    m[:, x - width // 2 : x + width // 2 + 1] = True
    return m


def test_tolerant_f1_forgives_offsets_within_the_tolerance_only():
    label = _line((100, 100), 50)
    assert tolerant_counts(_line((100, 100), 55), label, tol=8).scores()["tol_f1"] == 1.0
    off = tolerant_counts(_line((100, 100), 65), label, tol=8).scores()
    assert off["tol_f1"] == 0.0
    # Half the prediction is a false line far away: precision halves, recall stays.
    both = _line((100, 100), 50) | _line((100, 100), 90)
    s = tolerant_counts(both, label, tol=8).scores()
    assert s["tol_recall"] == 1.0 and s["tol_precision"] == pytest.approx(0.5)


def test_tolerant_counts_by_band_say_where_a_line_is_missed():
    label = _line((100, 100), 50)
    pred = label.copy()
    pred[60:] = False  # found down to row 60, missed below (a bonnet, say)
    bands = tolerant_counts_by_band(pred, label, 10, tol=8)
    recall = [b.scores()["tol_recall"] for b in bands]
    assert recall[:6] == [1.0] * 6 and recall[7:] == [0.0] * 3  # row 60's band: within 8 px
    assert sum(bands[1:], bands[0]) == tolerant_counts(pred, label, tol=8)


def test_condition_is_night_when_the_sky_is_dark():
    day = np.full((100, 200, 3), 150, np.uint8)
    night = day.copy()
    night[:40] = 10
    assert real_sources.condition(day) == "day" and real_sources.condition(night) == "night"


def test_culane_lines_drawn_at_the_benchmark_width(tmp_path):
    txt = tmp_path / "a.lines.txt"
    txt.write_text("800 580 820 400 840 300\n")
    mask = real_sources.culane_lines(txt, (590, 1640))
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 255}
    dt = cv2.distanceTransform(mask, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    assert 7.5 <= dt.max() <= 10  # 16 px lines, as CULane's own laneseg_label_w16


def fake_comma(root: Path, n: int = 6) -> Path:
    """A comma10k-like folder: frames and RGB class masks with the lane colour (255, 0, 0)."""
    src = root / "real_train" / "comma10k_sample"
    (src / "imgs").mkdir(parents=True)
    (src / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        name = f"{i:04d}_{i:016x}_2018-01-01--00-00-00_1_{i}.png"
        img = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
        mask = np.zeros((96, 128, 3), np.uint8)
        mask[:, 60:66] = (0, 0, 255)  # BGR on disk: red
        cv2.imwrite(str(src / "imgs" / name), img)
        cv2.imwrite(str(src / "masks" / name), mask)
    return src


def test_split_is_fixed_per_clip_and_import_records_the_real_keys(tmp_path):
    fake_comma(tmp_path)
    source = real_sources.SOURCES["comma10k_sample"]
    frames = source.frames(tmp_path / "")
    splits = {f.key: real_sources.split_of(f) for f in frames}
    assert set(splits.values()) <= {"train", "test"}
    assert splits == {f.key: real_sources.split_of(f) for f in source.frames(tmp_path)}
    out = tmp_path / "ds"
    size = PreprocessConfig(height=64, width=128)
    assert import_real("comma10k_sample", tmp_path, out, size).written == len(frames)
    again = import_real("comma10k_sample", tmp_path, out, size)  # resumes
    assert (again.written, again.skipped_existing) == (0, len(frames))
    ds = load_dataset(out)
    assert {s.meta["real_key"]: s.split for s in ds.samples} == splits
    mask = ds.samples[0].load()[1]
    assert mask.shape == (64, 128) and mask[:, 62].min() == 255 and mask[:, 10].max() == 0
    trained = real_frames_of(ds.split("train"))
    assert trained.get("comma10k_sample", []) == sorted(
        k for k, s in splits.items() if s == "train"
    )


def test_scoreboard_leaves_out_the_frames_a_model_trained_on(tmp_path):
    fake_comma(tmp_path)
    frames = real_sources.SOURCES["comma10k_sample"].frames(tmp_path)
    torch.manual_seed(0)
    model = build_model("unet", base=4, depth=2)
    trained = [frames[0].key, frames[1].key]
    info = ModelInfo(
        "unet",
        {"base": 4, "depth": 2},
        PreprocessConfig(height=64, width=128),
        real_frames={"comma10k_sample": trained},
    )
    ckpt = tmp_path / "m.pt"
    save_checkpoint(ckpt, model, info)
    out = tmp_path / "sb"
    result = run_scoreboard([ckpt], tmp_path, out)
    row = result["models"][str(ckpt)]["sources"][0]
    assert row["source"] == "comma10k_sample" and row["left_out_trained"] == 2
    assert row["all"]["frames"] == len(frames) - 2
    assert 0.0 <= row["all"]["tol_f1"] <= 1.0
    assert json.loads((out / "scoreboard.json").read_text()) == result
    assert "comma10k_sample (-2 trained on)" in (out / "scoreboard.md").read_text()
    bands = row["all"]["bands"]
    assert len(bands) == 10 and abs(sum(b["label_share"] for b in bands) - 1.0) < 1e-9
    assert "Where the lines are found" in (out / "scoreboard.md").read_text()
    assert (out / "m_comma10k_sample.png").is_file()


def test_eval_real_rewrites_the_readme_section_with_its_command(tmp_path):
    fake_comma(tmp_path)
    torch.manual_seed(0)
    ckpt = tmp_path / "m.pt"
    info = ModelInfo("unet", {"base": 4, "depth": 2}, PreprocessConfig(height=64, width=128))
    save_checkpoint(ckpt, build_model("unet", base=4, depth=2), info)
    start, end = markers("scoreboard")
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{start}\nold\n{end}\n")
    argv = ["eval", "--model", str(ckpt), "--real", str(tmp_path), "--out", str(tmp_path / "sb")]
    assert main([*argv, "--readme", str(readme), "--gallery", "0"]) == 0
    text = readme.read_text()
    assert "old" not in text and f"`lane-seg eval --model {ckpt} --real {tmp_path}" in text
    assert "| comma10k_sample | paint | MIT (comma10k) | all | 6 |" in text


MALFORMED = {  # CULane .lines.txt -> why it is refused
    "00002": ("nan 590 100 400 200 300", "'nan' is not a finite number"),
    "00003": ("1e12 590 100 400 200 300", "point (1e+12, 590) lies outside the 1640x590"),
    "00004": ("x 590 100 400", "'x' is not a number"),
    "00005": ("100 590 200", "odd number of values (3)"),
}


def fake_culane_night(root: Path) -> Path:
    """A culane_night-like folder: one good frame and one per malformed label."""
    src = root / "real" / "culane_night"
    src.mkdir(parents=True)
    frame = np.full((590, 1640, 3), 90, np.uint8)
    labels = {"00001": "800 580 820 400 840 300"} | {k: v[0] for k, v in MALFORMED.items()}
    for stem, text in labels.items():
        cv2.imwrite(str(src / f"{stem}.jpg"), frame)
        (src / f"{stem}.lines.txt").write_text(text + "\n")
    return src


def test_malformed_real_labels_are_skipped_and_reported_never_drawn(tmp_path, capfd):
    """NaN, 1e12, a word, an odd count in a .lines.txt, a label of another size than its
    image, and a missing label file: each frame is skipped and named, as the culane and masks
    importers do, never a crash and never a stray stroke; OpenCV prints nothing of its own."""
    fake_culane_night(tmp_path)
    comma = fake_comma(tmp_path, n=3)
    first = sorted((comma / "masks").iterdir())[0]
    cv2.imwrite(str(first), np.zeros((48, 64, 3), np.uint8))  # another size than its image
    sorted((comma / "masks").iterdir())[1].unlink()  # and a label that is not there
    out = tmp_path / "ds"
    args = ["import", "--format", "real", "--size", "128x64", str(tmp_path), "--out", str(out)]
    capfd.readouterr()
    assert main([*args, "--source", "culane_night"]) == 0
    err = capfd.readouterr().err.splitlines()
    assert len(err) == len(MALFORMED) and "WARN" not in "".join(err), err
    for line, (stem, (_, why)) in zip(err, sorted(MALFORMED.items()), strict=True):
        assert line.startswith(f"skipped {stem}.jpg: {stem}.lines.txt: ") and why in line
    mask = load_dataset(out).samples[0].load()[1]
    assert mask[:, :50].max() == 0  # the good frame's line only, no stroke to a far corner
    report = import_real("culane_night", tmp_path, out, PreprocessConfig(64, 128))
    assert (report.written, report.skipped_existing, len(report.problems)) == (0, 1, 4)
    assert main([*args, "--source", "comma10k_sample", "--out", str(tmp_path / "c")]) == 0
    err = capfd.readouterr().err
    assert "its label is 64x48, its image 128x96" in err and "cannot read label" in err
    assert "WARN" not in err and len(load_dataset(tmp_path / "c").samples) == 1

    ckpt = tmp_path / "m.pt"
    info = ModelInfo("unet", {"base": 4, "depth": 2}, PreprocessConfig(height=64, width=128))
    save_checkpoint(ckpt, build_model("unet", base=4, depth=2), info)
    sb = ["eval", "--model", str(ckpt), "--real", str(tmp_path), "--out", str(tmp_path / "sb")]
    assert main(sb) == 0
    err = capfd.readouterr().err.splitlines()
    assert len(err) == 2 and "Traceback" not in "".join(err), err  # one line per source
    assert "on culane_night: skipped 4 frame(s) with a malformed label (00002.jpg:" in err[0]
    assert "on comma10k_sample: skipped 2 frame(s) with a malformed label" in err[1]
    result = json.loads((tmp_path / "sb" / "scoreboard.json").read_text())
    rows = {r["source"]: r for r in result["models"][str(ckpt)]["sources"]}
    assert rows["culane_night"]["all"]["frames"] == 1
    assert len(rows["culane_night"]["skipped_malformed"]) == 4
    assert rows["comma10k_sample"]["all"]["frames"] == 1
    assert "culane_night (-4 malformed labels)" in (tmp_path / "sb" / "scoreboard.md").read_text()


def test_eval_skips_a_mask_of_another_size_and_still_draws_its_gallery(tmp_path, capfd):
    for folder in ("image", "gt_binary_image"):
        (tmp_path / "d" / folder).mkdir(parents=True)
    for i, mask_size in enumerate([(96, 128), (96, 128), (48, 64)]):
        cv2.imwrite(str(tmp_path / "d" / "image" / f"{i}.png"), np.full((96, 128, 3), 80, np.uint8))
        cv2.imwrite(str(tmp_path / "d" / "gt_binary_image" / f"{i}.png"), np.zeros(mask_size))
    ckpt = tmp_path / "m.pt"
    info = ModelInfo("unet", {"base": 4, "depth": 2}, PreprocessConfig(height=64, width=128))
    save_checkpoint(ckpt, build_model("unet", base=4, depth=2), info)
    out = tmp_path / "ev"
    capfd.readouterr()
    args = ["eval", "--model", str(ckpt), "--data", str(tmp_path / "d"), "--out", str(out)]
    assert main([*args, "--no-progress"]) == 0
    err = capfd.readouterr().err.splitlines()
    assert err == [
        f"skipped 1 frame(s) with a malformed label (2: its mask is 64x48, its image 128x96; "
        f"all in {out / 'summary.json'})"
    ]
    assert json.loads((out / "summary.json").read_text())["images"] == 2
    assert (out / "gallery.png").is_file()
