"""Importers on small datasets made here: parsing, drawing, splits, problems, resume."""

from __future__ import annotations

import argparse
import json
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from lane_seg.cli import import_ as import_cli
from lane_seg.data.dataset import encode_image, load_dataset, verify_dataset
from lane_seg.data.importers import Settings, open_frames, run_import
from lane_seg.data.importers import runner as runner_mod
from lane_seg.data.importers.common import (
    Crop,
    LabelError,
    assign_splits,
    draw_lanes,
    line_width_px,
    sample_id,
)
from lane_seg.data.importers.culane import parse_lines
from lane_seg.data.importers.tusimple import REF_LINE_WIDTH, REF_SIZE, lanes_from_mask, parse_line
from lane_seg.errors import LaneSegError

ROWS = list(range(160, 720, 10))


def cli(*argv: str) -> int:
    """`lane-seg import ...` through the command's own parser and run function."""
    parser = argparse.ArgumentParser()
    import_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["import", *argv])
    return args.func(args)


def frame_jpg(seed: int, w: int = 1280, h: int = 720) -> bytes:
    rng = np.random.default_rng(seed)
    return encode_image(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), ".jpg")


def tusimple_line(raw_file: str, xs0: float = 300.0, slope: float = -0.5) -> str:
    lanes = [[round(xs0 + slope * (y - 160)) if y >= 300 else -2 for y in ROWS]]
    lanes.append([round(900 - 0.3 * (y - 160)) for y in ROWS])
    return json.dumps({"lanes": lanes, "h_samples": ROWS, "raw_file": raw_file})


def make_tusimple(root: Path, clips: int = 4, frames: int = 3) -> list[str]:
    lines = []
    for c in range(clips):
        for f in range(frames):
            rel = f"clips/0313-1/{c}/{f + 1}.jpg"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(frame_jpg(c * 10 + f))
            lines.append(tusimple_line(rel))
    return lines


# --- parsing ---------------------------------------------------------------------------------


def test_tusimple_line_drops_minus_two_and_pairs_rows():
    raw, lanes = parse_line(json.loads(tusimple_line("clips/a/1.jpg")))
    assert raw == "clips/a/1.jpg"
    assert len(lanes) == 2
    assert lanes[0][0].tolist() == [230.0, 300.0]  # first labelled row is y=300
    assert len(lanes[1]) == len(ROWS)


@pytest.mark.parametrize(
    "obj, message",
    [
        ({"lanes": [], "h_samples": []}, "raw_file"),
        ({"lanes": [[1, 2]], "h_samples": [160], "raw_file": "a.jpg"}, "2 x values for 1"),
        ({"lanes": [["x"]], "h_samples": [160], "raw_file": "a.jpg"}, "not a number"),
        ({"lanes": [[1]], "h_samples": [float("nan")], "raw_file": "a.jpg"}, "finite"),
        ([1, 2], "json object"),
    ],
)
def test_tusimple_malformed_lines(obj, message):
    with pytest.raises(LabelError, match=message):
        parse_line(obj)


def test_culane_lines_parse_and_reject():
    lanes = parse_lines("1.5 590 10 580 \n\n20 590 30 580 40 570\n")
    assert [len(lane) for lane in lanes] == [2, 3]
    assert lanes[0][0].tolist() == [1.5, 590.0]
    with pytest.raises(LabelError, match="odd number"):
        parse_lines("1 2 3\n")
    with pytest.raises(LabelError, match="not a number"):
        parse_lines("1 2 x 4\n")


# --- drawing, geometry, splits ---------------------------------------------------------------


def test_lines_are_drawn_at_the_scaled_benchmark_width():
    assert line_width_px(REF_LINE_WIDTH, REF_SIZE, (1280, 720)) == pytest.approx(10)
    assert line_width_px(REF_LINE_WIDTH, REF_SIZE, (640, 360)) == pytest.approx(5)
    lane = np.array([[100.0, 100.0], [100.0, 600.0]])
    mask = draw_lanes(720, 1280, [lane], 10)
    run = np.count_nonzero(mask[350])
    assert 10 <= run <= 11  # a vertical line: its horizontal run is the width
    assert mask[350, 100] == 255 and mask[50, 100] == 0


def test_lanes_from_mask_inverts_drawing():
    lanes = [
        np.array([[300.0, 300.0], [200.0, 700.0]]),
        np.array([[700.0, 260.0], [1000.0, 700.0]]),
    ]
    mask = draw_lanes(720, 1280, lanes, 5)
    back = lanes_from_mask(mask, ROWS)
    assert len(back) == 2
    y = ROWS.index(500)
    assert abs(back[0][y] - 250) <= 1 and abs(back[1][y] - (700 + 300 * 240 / 440)) <= 1
    assert back[0][ROWS.index(200)] == -2  # above the lane's first point


def test_splits_keep_clips_whole_and_follow_fractions():
    sizes = {f"clip{i}": 20 for i in range(50)}
    splits = assign_splits(sizes, (0.8, 0.1, 0.1), seed=0)
    assert set(splits) == set(sizes)
    frames = {s: sum(sizes[c] for c in sizes if splits[c] == s) for s in ("train", "val", "test")}
    assert frames == {"train": 800, "val": 100, "test": 100}
    assert splits == assign_splits(dict(reversed(list(sizes.items()))), (0.8, 0.1, 0.1), seed=0)
    assert assign_splits({"only": 7}, (0.8, 0.1, 0.1)) == {"only": "train"}
    assert set(assign_splits(sizes, (0, 0, 1)).values()) == {"test"}


def test_crop_parse_and_box():
    assert Crop.parse("0,160,0,0").box(1280, 720) == (0, 160, 1280, 560)
    assert Crop.parse("10,20,100,-20").box(1280, 720) == (10, 20, 100, 680)
    with pytest.raises(ValueError):
        Crop.parse("1,2,3")
    with pytest.raises(LabelError):
        Crop.parse("0,0,2000,10").box(1280, 720)


def test_sample_ids_are_safe_file_names():
    assert sample_id("ts-", "clips/0313-1/60/20.jpg") == "ts-clips-0313-1-60-20"
    assert "/" not in sample_id("", "/a b/c:d.png")


# --- the import run --------------------------------------------------------------------------


def test_tusimple_import_reports_bad_labels_and_keeps_the_rest(tmp_path):
    src = tmp_path / "ts"
    lines = make_tusimple(src)
    lines.insert(2, "{not json")
    lines.append(tusimple_line("clips/missing/1.jpg"))
    lines.append(tusimple_line("../../etc/passwd"))
    lines.append(tusimple_line("clips/0313-1/0/1.jpg", xs0=-900))  # far left of the image
    (src / "label_data_0313.json").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    frames, images, _ = open_frames("tusimple", src)
    settings = Settings("tusimple", REF_SIZE, REF_LINE_WIDTH)
    report = run_import(frames, images, out, settings)
    reasons = " | ".join(str(p) for p in report.problems)
    assert report.written == 12, reasons
    assert "not valid json" in reasons and "clips/missing/1.jpg is missing" in reasons
    assert "etc/passwd is missing" in reasons  # never read outside the dataset
    assert "same sample id" in reasons  # the duplicate raw_file line
    assert verify_dataset(out).ok
    ds = load_dataset(out)
    assert len(ds) == 12
    by_clip: dict[str, set[str]] = {}
    for s in ds:
        by_clip.setdefault(s.meta["clip"], set()).add(s.split)
    assert all(len(v) == 1 for v in by_clip.values())  # no clip straddles two splits
    image, mask = ds.samples[0].load()
    assert image.shape == (720, 1280, 3) and mask.shape == (720, 1280)
    assert mask[400, round(300 - 0.5 * 240)] == 255  # on the first lane at y=400
    assert (src / "clips/0313-1/0/1.jpg").read_bytes() == ds.samples[0].image_path.read_bytes()
    saved = json.loads((out / "import_report.json").read_text())
    assert saved["written"] == 12 and len(saved["problems"]) == len(report.problems)


def test_points_outside_the_image_are_a_problem(tmp_path):
    src = tmp_path / "ts"
    make_tusimple(src, clips=1, frames=2)
    bad = json.loads(tusimple_line("clips/0313-1/0/2.jpg"))
    bad["lanes"][1][-1] = 5000
    good = tusimple_line("clips/0313-1/0/1.jpg")
    (src / "labels.json").write_text(good + "\n" + json.dumps(bad) + "\n")
    frames, images, _ = open_frames("tusimple", src / "labels.json")
    report = run_import(frames, images, tmp_path / "out", Settings("tusimple", REF_SIZE, 10.0))
    assert report.written == 1
    assert "outside the 1280x720 image" in report.problems[0].reason


def test_interrupted_import_leaves_a_valid_dataset_and_resumes(tmp_path, monkeypatch):
    src = tmp_path / "ts"
    (src / "label_data.json").parent.mkdir(parents=True, exist_ok=True)
    lines = make_tusimple(src, clips=3, frames=3)
    (src / "label_data.json").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    real_build = runner_mod.build_sample
    calls = {"n": 0}

    def dies_after_four(*args, **kw):
        calls["n"] += 1
        if calls["n"] > 4:
            raise KeyboardInterrupt
        return real_build(*args, **kw)

    monkeypatch.setattr(runner_mod, "build_sample", dies_after_four)
    frames, images, _ = open_frames("tusimple", src)
    with pytest.raises(KeyboardInterrupt):
        run_import(frames, images, out, Settings("tusimple", REF_SIZE, 10.0), workers=1)
    partial = load_dataset(out)
    assert 1 <= len(partial) <= 4 and verify_dataset(out).ok
    monkeypatch.setattr(runner_mod, "build_sample", real_build)
    frames, images, _ = open_frames("tusimple", src)
    report = run_import(frames, images, out, Settings("tusimple", REF_SIZE, 10.0))
    assert report.skipped_existing == len(partial)
    assert len(load_dataset(out)) == 9 and verify_dataset(out).ok
    # Other settings into the same folder are refused rather than mixed in.
    frames, images, _ = open_frames("tusimple", src)
    with pytest.raises(LaneSegError, match="different settings"):
        run_import(frames, images, out, Settings("tusimple", REF_SIZE, 16.0))


def test_tusimple_zip_read_in_place_and_resized(tmp_path):
    src = tmp_path / "ts"
    lines = make_tusimple(src, clips=2, frames=2)
    archive = tmp_path / "ts.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in sorted(src.rglob("*.jpg")):
            z.write(p, f"pack/{p.relative_to(src)}")
        z.writestr("pack/train_gt.json", "\n".join(lines) + "\n")
    assert cli("--format", "tusimple", str(archive), "--out", str(tmp_path / "o"),
               "--size", "512x256", "--crop", "0,160,0,0") == 0  # fmt: skip
    ds = load_dataset(tmp_path / "o")
    assert len(ds) == 4
    image, mask = ds.samples[0].load()
    assert image.shape == (256, 512, 3) and mask.shape == (256, 512)
    assert set(np.unique(mask)) == {0, 255}
    assert ds.samples[0].meta["source_size"] == [1280, 720]


def test_culane_list_file_and_missing_labels(tmp_path):
    root = tmp_path / "culane"
    clip = root / "driver_23_30frame" / "05151649_0422.MP4"
    clip.mkdir(parents=True)
    for i in range(3):
        (clip / f"{i:05d}.jpg").write_bytes(frame_jpg(i, 1640, 590))
        if i != 1:
            (clip / f"{i:05d}.lines.txt").write_text("100 590 500 300 \n1500 590 1000 300 \n")
    (root / "list").mkdir()
    rel = "driver_23_30frame/05151649_0422.MP4"
    (root / "list" / "train.txt").write_text(
        "".join(f"/{rel}/{i:05d}.jpg\n" for i in range(3)) + "/nowhere/1.jpg\n"
    )
    out = tmp_path / "out"
    assert cli("--format", "culane", str(root), "--list", "list/train.txt", "--out", str(out)) == 0
    ds = load_dataset(out)
    assert len(ds) == 2 and {s.split for s in ds} == {"train"}  # one clip: one split
    report = json.loads((out / "import_report.json").read_text())
    reasons = " ".join(p["reason"] for p in report["problems"])
    assert "00001.lines.txt is missing" in reasons and "nowhere/1.jpg is missing" in reasons
    _, mask = ds.samples[0].load()
    row = mask[445]  # halfway down the first lane: x = 300 there
    # A 16 px wide line at angle a to the rows crosses a row over 16 / sin(a) pixels.
    run = 16 / np.sin(np.arctan2(290, 400))
    assert row[300] == 255 and abs(np.count_nonzero(row[:800]) - run) <= 2.5


def test_masks_format_pairs_by_stem_and_rejects_size_mismatch(tmp_path):
    images, masks = tmp_path / "image", tmp_path / "gt"
    images.mkdir()
    masks.mkdir()
    for i in range(3):
        (images / f"{i:04d}.png").write_bytes(encode_image(np.full((72, 128, 3), i, np.uint8)))
        m = np.zeros((72, 128) if i != 2 else (70, 128), np.uint8)
        m[:, 60:64] = 255
        cv2.imwrite(str(masks / f"{i:04d}.png"), m)
    (images / "0009.png").write_bytes(encode_image(np.zeros((72, 128, 3), np.uint8)))
    frames, src, msrc = open_frames("masks", images, masks)
    report = run_import(frames, src, tmp_path / "o", Settings("masks"), masks=msrc)
    assert report.written == 2
    reasons = sorted(p.reason for p in report.problems)
    assert any("no mask" in r for r in reasons) and any("mask is 128x70" in r for r in reasons)
    _, mask = load_dataset(tmp_path / "o").samples[0].load()
    assert np.count_nonzero(mask) == 72 * 4


def test_class_masks_take_the_lane_colour_only(tmp_path):
    images, masks = tmp_path / "imgs", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    (images / "a.png").write_bytes(encode_image(np.zeros((40, 64, 3), np.uint8)))
    classes = np.zeros((40, 64, 3), np.uint8)
    classes[:, :] = (32, 32, 64)  # road (BGR of comma10k's (64, 32, 32))
    classes[:, 10:14] = (0, 0, 255)  # lane markings (255, 0, 0)
    classes[:, 40:44] = (255, 0, 204)  # own car (204, 0, 255), also red-heavy
    cv2.imwrite(str(masks / "a.png"), classes)
    frames, src, msrc = open_frames("masks", images, masks)
    settings = Settings("masks", mask_color=(255, 0, 0))
    assert run_import(frames, src, tmp_path / "o", settings, masks=msrc).written == 1
    _, mask = load_dataset(tmp_path / "o").samples[0].load()
    assert np.array_equal(np.flatnonzero(mask.any(axis=0)), np.arange(10, 14))
    with pytest.raises(LaneSegError, match="--mask-color"):
        cli(
            "--format",
            "culane",
            str(tmp_path),
            "--out",
            str(tmp_path / "p"),
            "--mask-color",
            "1,2,3",
        )


def test_cli_errors_are_clear(tmp_path):
    with pytest.raises(LaneSegError, match="--masks"):
        cli("--format", "masks", str(tmp_path), "--out", str(tmp_path / "o"))
    with pytest.raises(LaneSegError, match="--size"):
        cli("--format", "culane", str(tmp_path), "--out", str(tmp_path / "o"), "--size", "big")
    with pytest.raises(LaneSegError, match="no .json label files"):
        cli("--format", "tusimple", str(tmp_path), "--out", str(tmp_path / "o"))
    with pytest.raises(LaneSegError, match="does not exist"):
        cli("--format", "culane", str(tmp_path / "nope"), "--out", str(tmp_path / "o"))
    with pytest.raises(LaneSegError, match="--clip-pattern"):
        cli("--format", "masks", str(tmp_path), "--masks", str(tmp_path), "--out",
            str(tmp_path / "o"), "--clip-pattern", "(")  # fmt: skip
    with pytest.raises(LaneSegError, match="no usable culane frames"):
        cli("--format", "culane", str(tmp_path), "--out", str(tmp_path / "o"))
