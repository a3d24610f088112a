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
    assert import_real("comma10k_sample", tmp_path, out, size) == len(frames)
    assert import_real("comma10k_sample", tmp_path, out, size) == 0  # resumes
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
