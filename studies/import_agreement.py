"""How well `lane-seg import --format tusimple` reproduces LaneNet's own TuSimple masks.

LaneNet's `gt_binary_image/` was drawn by its author from TuSimple labels (cv2.polylines,
thickness 5, through the labelled points at the h_samples rows). The TuSimple json for those
six frames is not shipped with them, so this reads the lane points back from each LaneNet mask
(`lanes_from_mask`: centre of each blob's run on each h_samples row 160..710), writes them as a
TuSimple json file, imports it with our TuSimple importer, and scores our mask against
LaneNet's (IoU per frame). It measures the drawing convention (where a line starts and ends,
how wide it is, how gaps are bridged), not the human labels. Also imports the same frames with
`--format masks` (must reproduce LaneNet's masks exactly) and times the importer.

    python studies/import_agreement.py [--real ../shared/data/real] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lane_seg.data.dataset import load_dataset, read_mask
from lane_seg.data.importers import Settings, open_frames, run_import
from lane_seg.data.importers.tusimple import REF_LINE_WIDTH, REF_SIZE, lanes_from_mask

H_SAMPLES = list(range(160, 720, 10))
LANENET_THICKNESS = 5.0  # cv2.polylines thickness in LaneNet's generate_tusimple_dataset.py


def iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def write_tusimple_json(lanenet: Path, work: Path) -> Path:
    """A TuSimple label file for LaneNet's frames, lanes read back from its masks."""
    (work / "image").symlink_to((lanenet / "image").resolve(), target_is_directory=True)
    lines = []
    for mask_path in sorted((lanenet / "gt_binary_image").glob("*.png")):
        lanes = lanes_from_mask(read_mask(mask_path), H_SAMPLES)
        raw = f"image/{mask_path.name}"
        lines.append(json.dumps({"lanes": lanes, "h_samples": H_SAMPLES, "raw_file": raw}))
    label = work / "label_data_lanenet.json"
    label.write_text("\n".join(lines) + "\n")
    return label


def import_and_score(fmt: str, src: Path, out: Path, lanenet: Path, **kw) -> dict:
    frames, images, masks = open_frames(fmt, src, kw.pop("mask_dir", None))
    settings = Settings(format=fmt, fractions=(1, 0, 0), **kw)
    report = run_import(frames, images, out, settings, masks=masks)
    scores = {}
    for sample in load_dataset(out):
        name = Path(sample.meta["source_image"]).name
        ours = read_mask(sample.mask_path)
        theirs = read_mask(lanenet / "gt_binary_image" / name)
        scores[name] = iou(ours, theirs)
    values = list(scores.values())
    return {
        "frames": len(values),
        "iou_mean": round(float(np.mean(values)), 4),
        "iou_min": round(float(np.min(values)), 4),
        "per_frame": {k: round(v, 4) for k, v in scores.items()},
        "problems": [str(p) for p in report.problems],
    }


def speed(zip_path: Path, work: Path, size: str | None, repeats: int = 3) -> dict:
    """samples/s importing carla_tusimple's zip (100 frames), best of `repeats` runs."""
    from lane_seg.preprocess import PreprocessConfig

    cfg = None
    if size:
        w, h = (int(v) for v in size.split("x"))
        cfg = PreprocessConfig(height=h, width=w)
    best = 0.0
    for r in range(repeats):
        frames, images, _ = open_frames("tusimple", zip_path)
        settings = Settings("tusimple", REF_SIZE, REF_LINE_WIDTH, size=cfg)
        t0 = time.perf_counter()
        report = run_import(frames, images, work / f"speed_{size}_{r}", settings, workers=2)
        elapsed = time.perf_counter() - t0
        best = max(best, report.written / elapsed)
    return {"frames": report.written, "size": size or "source", "samples_per_s": round(best, 1)}


def main(argv: list[str] | None = None) -> int:
    default_real = Path(
        os.environ.get(
            "LANE_SEG_REAL_DATA",
            Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real",
        )
    )
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--real", type=Path, default=default_real)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    lanenet = args.real / "tusimple_lanenet"
    if not (lanenet / "gt_binary_image").is_dir():
        print(f"LaneNet frames not found under {lanenet}", file=sys.stderr)
        return 1
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        label = write_tusimple_json(lanenet, work)
        for name, width in (("lanenet_width", LANENET_THICKNESS), ("benchmark_width", 10.0)):
            results[f"tusimple_{name}_{width:g}px"] = import_and_score(
                "tusimple",
                label,
                work / f"tusimple_{width:g}",
                lanenet,
                ref_size=REF_SIZE,
                ref_line_width=width,
            )
        results["masks_format"] = import_and_score(
            "masks",
            lanenet / "image",
            work / "masks",
            lanenet,
            mask_dir=lanenet / "gt_binary_image",
        )
        zip_path = args.real / "carla_tusimple" / "sample_dataset.zip"
        if zip_path.is_file():
            results["speed"] = [speed(zip_path, work, None), speed(zip_path, work, "512x256")]
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
