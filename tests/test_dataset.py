import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from lane_seg.data.dataset import DatasetWriter, encode_image, encode_mask, load_dataset
from lane_seg.errors import LaneSegError

SHIPPED = Path(__file__).resolve().parents[1] / "models" / "lane_unet_int8.onnx"


def _sample():
    img = np.random.default_rng(0).integers(0, 255, (8, 16, 3), dtype=np.uint8)
    mask = np.zeros((8, 16), np.uint8)
    mask[:, 4] = 200
    return encode_image(img), encode_mask(mask), img


def test_round_trip_and_binary_mask(tmp_path):
    img_b, mask_b, img = _sample()
    with DatasetWriter(tmp_path, "test") as w:
        w.add("a", "train", "unit", img_b, mask_b, camera={"fx": 1.0})
    (s,) = load_dataset(tmp_path).samples
    image, mask = s.load()
    assert np.array_equal(image, img)  # PNG is lossless and RGB order is kept
    assert set(np.unique(mask)) == {0, 255}
    assert json.loads((tmp_path / "dataset.json").read_text())["counts"]["train"] == 1


def test_rejects_bad_split_and_path_like_ids(tmp_path):
    img_b, mask_b, _ = _sample()
    with DatasetWriter(tmp_path, "test") as w:
        with pytest.raises(ValueError):
            w.add("a", "holdout", "unit", img_b, mask_b)
        with pytest.raises(ValueError):
            w.add("../evil", "train", "unit", img_b, mask_b)


def test_not_a_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(LaneSegError, match="not a lane_seg dataset"):
        load_dataset(tmp_path)


def _three_rows(root):
    img_b, mask_b, _ = _sample()
    with DatasetWriter(root, "test") as w:
        for i, split in enumerate(("train", "train", "val")):
            w.add(f"s{i}", split, "unit", img_b, mask_b)
    return root / "meta.jsonl"


def test_a_bad_meta_line_is_named_and_hides_nothing(tmp_path, capsys):
    from lane_seg.cli.main import main

    meta = _three_rows(tmp_path)
    lines = meta.read_bytes().splitlines(keepends=True)
    lines[1] = b'{"id": "x", garbage\n'
    meta.write_bytes(b"".join(lines))
    damaged = meta.read_bytes()
    with pytest.raises(LaneSegError, match=r"meta.jsonl line 2 is not valid JSON"):
        load_dataset(tmp_path)
    ds = load_dataset(tmp_path, strict=False)
    assert [s.id for s in ds] == ["s0", "s2"] and len(ds.bad_lines) == 1
    assert main(["verify", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert "line 2 is not valid JSON" in err and "2 samples checked" in out
    assert "lag" not in err  # the counts differ because of the bad line, not a killed run
    for argv in (
        ["eval", "--model", str(SHIPPED), "--data", str(tmp_path), "--out", str(tmp_path / "e")],
        ["collect", "--out", str(tmp_path), "--frames", "5", "--workers", "1"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "line 2 is not valid JSON" in err, argv
    assert meta.read_bytes() == damaged  # collect kept every row, the bad one too


def test_a_row_without_its_keys_is_a_bad_line(tmp_path):
    meta = _three_rows(tmp_path)
    with open(meta, "ab") as f:
        f.write(b'{"id": "s9", "split": "train"}\n[1, 2]\n')
    ds = load_dataset(tmp_path, strict=False)
    assert [line.split("meta.jsonl ")[1] for line in ds.bad_lines] == [
        "line 4 lacks image, mask (a row holds id, split, image, mask as text)",
        "line 5 is not a JSON object",
    ]
    with pytest.raises(LaneSegError, match=r"line 4 lacks image, mask .* \(and 1 more\); fix"):
        DatasetWriter(tmp_path, "test")


def test_only_a_torn_last_line_is_cut_and_a_whole_one_is_kept(tmp_path):
    img_b, mask_b, _ = _sample()
    meta = _three_rows(tmp_path)
    whole = meta.read_bytes()
    meta.write_bytes(whole + b'{"id": "s3", "split": "tr')  # killed while appending
    assert len(load_dataset(tmp_path)) == 3 and load_dataset(tmp_path).torn_tail
    with DatasetWriter(tmp_path, "test") as w:
        assert meta.read_bytes() == whole
        w.add("s3", "train", "unit", img_b, mask_b)
    meta.write_bytes(meta.read_bytes().rstrip(b"\n"))  # an editor dropped the last newline
    with DatasetWriter(tmp_path, "test") as w:
        w.add("s4", "train", "unit", img_b, mask_b)
    assert [s.id for s in load_dataset(tmp_path)] == ["s0", "s1", "s2", "s3", "s4"]


def test_reopening_removes_files_a_killed_run_left_half_written(tmp_path):
    import subprocess
    import sys

    _three_rows(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = [tmp_path / "images" / f".s3.png.tmp{dead.pid}", tmp_path / f".x.tmp{dead.pid}"]
    for path in stale:
        path.write_bytes(b"half")
    DatasetWriter(tmp_path, "test").close()
    assert not any(p.exists() for p in stale)
    assert len(load_dataset(tmp_path)) == 3


def test_damaged_pngs_are_refused_without_a_word_from_libpng(tmp_path, capfd):
    import cv2

    from lane_seg.data.dataset import read_image
    from lane_seg.images import decode_image, png_problem
    from lane_seg.ros.image_codec import BadImage, compressed_to_rgb

    png = encode_image(np.random.default_rng(1).integers(0, 255, (40, 60, 3), dtype=np.uint8))
    flipped = bytearray(png)
    flipped[len(png) // 2] ^= 0xFF
    damaged = {
        "truncated": (png[: len(png) // 2], "cut short (truncated file)"),
        "flipped": (bytes(flipped), "IDAT chunk fails its CRC"),
        "no end": (png[:-12], "no IEND chunk"),
    }
    assert png_problem(png) == "" and decode_image(png).shape == (40, 60, 3)
    for name, (data, problem) in damaged.items():
        assert problem in png_problem(data), name
        assert decode_image(data) is None and decode_image(data, cv2.IMREAD_GRAYSCALE) is None
        (tmp_path / f"{name}.png").write_bytes(data)
        with pytest.raises(LaneSegError, match="not a valid image file"):
            read_image(tmp_path / f"{name}.png")
        with pytest.raises(BadImage, match="undecodable PNG"):
            compressed_to_rgb(SimpleNamespace(format="png", data=data))
    assert capfd.readouterr().err == ""  # libpng prints "libpng error: ..." when handed these
