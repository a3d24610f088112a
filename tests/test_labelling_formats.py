"""labelme and CVAT: the importers (lines convention, clip-wise splits, problems skipped and
reported, a broken XML refused) and the pre-label writers read back by them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from lane_seg.cli import import_ as import_cli
from lane_seg.data.dataset import encode_image, load_dataset
from lane_seg.data.importers import LINES_REF, open_frames
from lane_seg.data.importers.common import line_width_px
from lane_seg.errors import LaneSegError
from lane_seg.lanes.drawing import draw_lines
from lane_seg.lanes.extract import LaneInstance
from lane_seg.lanes.formats import cvat_xml, labelme_record

W, H = 320, 160
LINES = [
    np.array([[150.0, 70.0], [60.0, 159.0]]),
    np.array([[170.0, 70.0], [200.0, 110.5], [260.0, 159.0]]),
]


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    import_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["import", *argv])
    return args.func(args)


def frame(seed: int, w: int = W, h: int = H) -> bytes:
    rng = np.random.default_rng(seed)
    return encode_image(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), ".png")


def instances(lines: list[np.ndarray]) -> list[LaneInstance]:
    return [
        LaneInstance(p, 0.9, ego) for p, ego in zip(lines, ("left", "right", None), strict=False)
    ]


def expected_mask(lines: list[np.ndarray], w: int = W, h: int = H) -> np.ndarray:
    return draw_lines((h, w), lines, line_width_px(LINES_REF[1], LINES_REF[0], (w, h)))


def write_labelme(folder: Path, name: str, seed: int, lines=LINES, size=(W, H)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.png").write_bytes(frame(seed))
    record = labelme_record(instances(lines), f"{name}.png", size)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(record))
    return path


def masks_of(out: Path) -> dict[str, np.ndarray]:
    ds = load_dataset(out)
    return {
        s.meta["source_image"]: cv2.imread(str(s.mask_path), cv2.IMREAD_GRAYSCALE)
        for s in ds.samples
    }


def test_labelme_import_draws_the_lines_convention_and_splits_by_clip(tmp_path):
    src = tmp_path / "labelme"
    for clip in ("a", "b", "c"):
        for i in range(3):
            write_labelme(src / clip, f"f{i}", seed=i)
    # not lane lines: a polygon is left out, a file without line shapes is an empty frame
    record = json.loads((src / "a" / "f0.json").read_text())
    record["shapes"].append({"label": "car", "points": [[1, 1], [9, 1], [9, 9]]})
    (src / "a" / "f0.json").write_text(json.dumps(record))
    write_labelme(src / "c", "empty", seed=9, lines=[])
    assert cli("--format", "labelme", str(src), "--out", str(tmp_path / "ds"), "--split",
               "2,0,1") == 0  # fmt: skip
    ds = load_dataset(tmp_path / "ds")
    assert ds.info["params"]["convention"] == "lines"
    masks = masks_of(tmp_path / "ds")
    assert len(masks) == 10
    for key, mask in masks.items():
        want = expected_mask([] if key.endswith("empty.png") else LINES)
        assert np.array_equal(mask, want), key
    by_clip: dict[str, set[str]] = {}
    for s in ds.samples:
        by_clip.setdefault(s.meta["clip"], set()).add(s.split)
    assert all(len(splits) == 1 for splits in by_clip.values())
    assert {s.split for s in ds.samples} == {"train", "test"}


def test_labelme_problems_are_reported_and_the_rest_imported(tmp_path):
    src = tmp_path / "labelme"
    write_labelme(src, "good", seed=0)
    (src / "broken.json").write_text("{not json")
    bad = json.loads(write_labelme(src, "nan", seed=1).read_text())
    bad["shapes"][0]["points"][0] = ["NaN", 3]
    (src / "nan.json").write_text(json.dumps(bad))
    write_labelme(src, "outside", seed=2, lines=[np.array([[5000.0, 10.0], [10.0, 150.0]])])
    write_labelme(src, "size", seed=3, size=(640, 320))
    gone = write_labelme(src, "gone", seed=4)
    (src / "gone.png").unlink()
    frames, images, _ = open_frames("labelme", src)
    from lane_seg.data.importers import Settings, run_import

    settings = Settings("labelme", *LINES_REF, lines=True)
    report = run_import(frames, images, tmp_path / "ds", settings)
    reasons = {p.key: p.reason for p in report.problems}
    assert report.written == 1
    assert "not valid json" in reasons["broken.json"]
    assert "not a finite number" in reasons["nan.json"]
    assert "outside the 320x160 image" in reasons["outside.json"]
    assert "for a 640x320 image, 320x160 here" in reasons["size.json"]
    assert "gone.png is missing" in reasons[gone.name]


def test_cvat_import_reads_polylines_and_its_images_folder(tmp_path):
    src = tmp_path / "cvat"
    (src / "images" / "clip1").mkdir(parents=True)
    entries = []
    for i in range(3):
        name = f"clip1/{i:06d}.png"
        (src / "images" / name).write_bytes(frame(i))
        entries.append((name, (W, H), instances(LINES)))
    entries.append(("clip1/missing.png", (W, H), []))
    xml = cvat_xml(entries).replace(
        'name="clip1/000002.png" width="320"', 'name="clip1/000002.png" width="0"'
    )
    (src / "annotations.xml").write_text(xml)
    assert cli("--format", "cvat", str(src / "annotations.xml"), "--out", str(tmp_path / "ds")) == 0
    masks = masks_of(tmp_path / "ds")
    assert sorted(masks) == ["images/clip1/000000.png", "images/clip1/000001.png"]
    for mask in masks.values():
        assert np.array_equal(mask, expected_mask(LINES))
    problems = json.loads((tmp_path / "ds" / "import_report.json").read_text())["problems"]
    reasons = " | ".join(p["reason"] for p in problems)
    assert (
        "width must be a positive whole number" in reasons and "missing.png is missing" in reasons
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("<annotations><image", "is not valid XML"),
        ("<labels/>", "CVAT for images has <annotations>"),
        ('<!DOCTYPE x [<!ENTITY a "aa">]><annotations/>', "declares a DOCTYPE"),
    ],
)
def test_an_unusable_cvat_file_is_refused_whole(tmp_path, text, says):
    (tmp_path / "annotations.xml").write_text(text)
    with pytest.raises(LaneSegError, match=says):
        open_frames("cvat", tmp_path)


@pytest.mark.parametrize("fmt", ["labelme", "cvat"])
def test_prelabels_read_back_as_the_same_lines_mask(tmp_path, fmt, capsys):
    """infer --export writes the model's lines for a labelling tool; importing them gives the
    mask those lines draw in the lines convention, within a pixel."""
    from lane_seg.camera import Camera
    from lane_seg.cli.main import main
    from lane_seg.lanes.extract import nearest_lines
    from lane_seg.models.testing import road_rgb, tiny_info, write_tiny_onnx
    from lane_seg.runtime.segmenter import Segmenter

    model = write_tiny_onnx(tmp_path / "bright.onnx", "bright", tiny_info(256, 512))
    cam = Camera.from_fov(960, 540, 60.0, height_m=1.5, pitch_deg=3.0)
    frames = {f"r{i}": road_rgb(cam, (1.75 + 0.3 * i, -1.75 + 0.3 * i), seed=i) for i in range(2)}
    for name, rgb in frames.items():
        (tmp_path / "in").mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / "in" / f"{name}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    out = tmp_path / "out"
    argv = ["infer", "--model", str(model), "--engine", "onnxruntime-cpu", "--out", str(out)]
    assert main([*argv, "--export", fmt, "--no-overlays", str(tmp_path / "in")]) == 0
    assert main(["import", "--format", fmt, str(out / fmt), "--out", str(tmp_path / "ds")]) == 0
    capsys.readouterr()
    seg = Segmenter.load(str(model), "onnxruntime-cpu")
    masks = {Path(k).stem: m for k, m in masks_of(tmp_path / "ds").items()}
    assert sorted(masks) == sorted(frames)
    for name, rgb in frames.items():
        _, lanes = seg.segment_lanes(rgb)
        lines = [lane.points for lane in nearest_lines(lanes, 2)]
        assert len(lines) == 2
        want = expected_mask(lines, 960, 540)
        got = masks[name]
        kernel = np.ones((3, 3), np.uint8)
        assert not (got & ~cv2.dilate(want, kernel)).any(), name
        assert not (want & ~cv2.dilate(got, kernel)).any(), name
