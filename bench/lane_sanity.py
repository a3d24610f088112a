"""Lane instances on the labelled real frames, scored with the benchmarks' own metrics.

    .venv/bin/python bench/lane_sanity.py                 # shipped int8 model
    .venv/bin/python bench/lane_sanity.py --model m.onnx --out runs/lane_sanity

Two runs per source, both through `lane_seg.lanes.extract_lanes`:

- label: the source's own label mask as the "prediction" (what the extraction itself loses);
- model: the model's 256x512 mask and probabilities of the frame, instances scaled to the frame.

Sources (under ../shared/data, skipped when absent):

- real_train/culane_driver23: 180 CULane frames (1640x590), `.lines.txt` labels and CULane's
  16 px label masks (laneseg_label_w16). Scored with CULane F1 (30 px, IoU > 0.5), at most two
  lines each side of the ego lane, as CULane labels them.
- real/culane_night: 10 CULane night frames with `.lines.txt` labels and no masks; the label
  mask is drawn from the lines, 16 px wide as CULane's own. CULane F1 as above.
- real/tusimple_lanenet: 6 TuSimple frames with LaneNet's binary masks (gt_binary_image) and no
  TuSimple json labels. The label lanes are read back from those masks at TuSimple's 56 rows
  (one lane per 8-connected blob, the centre of its run on each row), so lanes that touch in the
  mask become one, and the rows where a lane starts and ends are the mask's, not the labeller's.
  Scored with TuSimple's accuracy, FP and FN; an approximation of the benchmark, not its figure.

Writes OUT/lane_sanity.json and prints a table. A check of the extraction, not a test.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
CULANE_SOURCES = {
    "culane_driver23": ("real_train/culane_driver23/driver_23_30frame", "laneseg_label_w16"),
    "culane_night": ("real/culane_night", None),
}
TUSIMPLE_SOURCE = "real/tusimple_lanenet"


def culane_frames(rel: str, mask_dir: str | None) -> Iterator[tuple[Path, list, np.ndarray]]:
    """(image, label lanes, label mask) of every frame with a .lines.txt beside it."""
    from lane_seg.importers.common import draw_lanes
    from lane_seg.importers.culane import REF_LINE_WIDTH, parse_lines

    root = SHARED / rel
    for image in sorted(root.rglob("*.jpg")):
        label = image.with_suffix(".lines.txt")
        if not label.is_file():
            continue
        lanes = parse_lines(label.read_text())
        if mask_dir is None:
            h, w = cv2.imread(str(image), cv2.IMREAD_UNCHANGED).shape[:2]
            mask = draw_lanes(h, w, lanes, REF_LINE_WIDTH)
        else:
            rel_img = image.relative_to(root.parent)
            mask = cv2.imread(str(root.parent / mask_dir / rel_img.with_suffix(".png")), 0)
        yield image, lanes, mask


class Model:
    """The model's mask and probabilities of a frame at its input size (what the node sees)."""

    def __init__(self, model: str | None, engine: str, threads: int) -> None:
        from lane_seg.runtime.segmenter import Segmenter
        from lane_seg.runtime.shipped_model import model_or_default

        self.path = model_or_default(model)
        self.seg = Segmenter.load(self.path, engine, threads)

    def __call__(self, image: Path) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        from lane_seg.preprocess import probability

        bgr = cv2.imread(str(image), cv2.IMREAD_COLOR)
        prob = probability(self.seg.logits(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
        mask = np.where(prob > self.seg.threshold, 255, 0).astype(np.uint8)
        return mask, prob, (bgr.shape[1], bgr.shape[0])


def frame_lanes(mask: np.ndarray, prob: np.ndarray | None, size: tuple[int, int]) -> list:
    """Instances of a mask, in a frame of `size` (width, height)."""
    from lane_seg.lanes import extract_lanes

    lanes = extract_lanes(mask, prob)
    src = (mask.shape[1], mask.shape[0])
    return lanes if src == size else [lane.scaled(src, size) for lane in lanes]


def score_culane(name: str, rel: str, mask_dir: str | None, model: Model) -> dict:
    from lane_seg.lane_metrics import culane_dataset, culane_frame
    from lane_seg.lanes import nearest_lines

    runs: dict[str, list] = {"label": [], "model": []}
    for image, gt, label_mask in culane_frames(rel, mask_dir):
        size = (label_mask.shape[1], label_mask.shape[0])
        m, p, frame_size = model(image)
        for run, lanes in (
            ("label", frame_lanes(label_mask, None, size)),
            ("model", frame_lanes(m, p, frame_size)),
        ):
            picked = nearest_lines(lanes, 2)
            runs[run].append(culane_frame([lane.points for lane in picked], gt, size))
    return {run: culane_dataset(frames).to_dict() for run, frames in runs.items()}


def score_tusimple(model: Model) -> dict:
    from lane_seg.importers.tusimple import lanes_from_mask
    from lane_seg.lane_formats import tusimple_lanes
    from lane_seg.lane_metrics import TUSIMPLE_H_SAMPLES, tusimple_dataset, tusimple_frame

    root = SHARED / TUSIMPLE_SOURCE
    rows = list(TUSIMPLE_H_SAMPLES)
    runs: dict[str, list] = {"label": [], "model": []}
    for label in sorted((root / "gt_binary_image").glob("*.png")):
        label_mask = cv2.imread(str(label), 0)
        gt = lanes_from_mask(label_mask, rows)
        size = (label_mask.shape[1], label_mask.shape[0])
        m, p, frame_size = model(root / "image" / label.name)
        for run, lanes in (
            ("label", frame_lanes(label_mask, None, size)),
            ("model", frame_lanes(m, p, frame_size)),
        ):
            pred = tusimple_lanes(lanes, rows, size[0])
            runs[run].append(tusimple_frame(pred, gt, rows, size))
    return {run: tusimple_dataset(frames).to_dict() for run, frames in runs.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", help="lane_seg .onnx model (default: the shipped int8 model)")
    p.add_argument("--engine", default="auto")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(REPO / "runs" / "lane_sanity"))
    args = p.parse_args()
    model = Model(args.model, args.engine, args.threads)
    report: dict = {"model": model.path, "culane": {}, "tusimple": {}}
    for name, (rel, mask_dir) in CULANE_SOURCES.items():
        if (SHARED / rel).is_dir():
            report["culane"][name] = score_culane(name, rel, mask_dir, model)
    if (SHARED / TUSIMPLE_SOURCE).is_dir():
        report["tusimple"]["tusimple_lanenet"] = score_tusimple(model)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "lane_sanity.json").write_text(json.dumps(report, indent=2))
    print(f"model: {model.path}")
    print(f"{'source':18s} {'run':6s} {'frames':>6s}  scores")
    for name, runs in report["culane"].items():
        for run, s in runs.items():
            print(
                f"{name:18s} {run:6s} {s['frames']:6d}  CULane F1 {s['f1']:.3f} "
                f"(P {s['precision']:.3f}, R {s['recall']:.3f}; "
                f"tp {s['tp']} fp {s['fp']} fn {s['fn']})"
            )
    for name, runs in report["tusimple"].items():
        for run, s in runs.items():
            print(
                f"{name:18s} {run:6s} {s['frames']:6d}  TuSimple-style accuracy {s['accuracy']:.3f}"
                f", FP {s['fp']:.3f}, FN {s['fn']:.3f}"
            )
    print(f"wrote {out / 'lane_sanity.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
