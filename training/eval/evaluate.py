"""`lane-seg eval`: a .pt or .onnx model on labelled frames, through the shared preprocessing.

Every frame: `preprocess.to_input` -> the model's engine (torch for a checkpoint, onnxruntime
CPU for ONNX) -> `preprocess.to_mask` back at the frame's own resolution (probability threshold
from the model's metadata, 0.5) -> confusion counts against the original label: the scoring
loop of lane_seg.training.eval.score, which bench and quantize use too. The model's input size,
normalisation and threshold come from the checkpoint / ONNX metadata, never from command-line
guesses.

Outputs: per_image.csv, summary.json and gallery.png (worst and best frames, prediction over
the image: green = correct lane, red = false lane, blue = missed lane).
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from lane_seg.data.dataset import atomic_write, encode_image, load_dataset, read_image, read_mask
from lane_seg.data.importers.common import LabelError
from lane_seg.errors import LaneSegError
from lane_seg.metrics import MetricAccumulator
from lane_seg.preprocess import PreprocessConfig, to_input
from lane_seg.runtime.engines import Engine, baseline_engine, load_engine
from lane_seg.training.eval.score import frame_counts, predict_mask
from lane_seg.visualize import contact_sheet

IMAGE_EXTS = (".png", ".jpg", ".jpeg")


def load_model_engine(path: str | Path) -> Engine:
    """The model on its baseline engine: torch for a checkpoint, onnxruntime CPU for ONNX."""
    return load_engine(path, baseline_engine(path))


@dataclass
class Frame:
    id: str
    image_path: Path
    mask_path: Path

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """(RGB image, 0/255 mask); LabelError (the frame is skipped and reported) for a mask
        of another size than its image."""
        rgb, label = read_image(self.image_path), read_mask(self.mask_path)
        if label.shape != rgb.shape[:2]:
            raise LabelError(
                f"its mask is {label.shape[1]}x{label.shape[0]}, its image "
                f"{rgb.shape[1]}x{rgb.shape[0]}"
            )
        return rgb, label


def dataset_frames(root: Path, split: str) -> list[Frame]:
    """Frames of a lane_seg dataset (`split` = train|val|test|all)."""
    ds = load_dataset(root)
    samples = ds.samples if split == "all" else ds.split(split)
    if not samples:
        counts = ds.info.get("counts", {})
        raise LaneSegError(f"{root} has no '{split}' frames (counts {counts}); pick --split")
    return [Frame(s.id, s.image_path, s.mask_path) for s in samples]


def folder_frames(images: Path, masks: Path) -> list[Frame]:
    """Images and masks paired by file stem (e.g. TuSimple image/ + gt_binary_image/)."""
    if not images.is_dir() or not masks.is_dir():
        raise LaneSegError(f"need image and mask folders; got {images} and {masks}")
    by_stem = {p.stem: p for p in masks.iterdir() if p.suffix.lower() in IMAGE_EXTS}
    frames = [
        Frame(p.stem, p, by_stem[p.stem])
        for p in sorted(images.iterdir())
        if p.suffix.lower() in IMAGE_EXTS and p.stem in by_stem
    ]
    if not frames:
        raise LaneSegError(f"no image in {images} has a mask with the same name in {masks}")
    return frames


def find_frames(data: Path, split: str, masks: Path | None = None) -> list[Frame]:
    """A dataset root, a folder with image/ + gt_binary_image/, or --data IMAGES --masks M."""
    if masks is not None:
        return folder_frames(data, masks)
    if (data / "dataset.json").is_file():
        return dataset_frames(data, split)
    for img, msk in (("image", "gt_binary_image"), ("images", "masks")):
        if (data / img).is_dir() and (data / msk).is_dir():
            return folder_frames(data / img, data / msk)
    raise LaneSegError(
        f"{data} is neither a lane_seg dataset (dataset.json) nor a folder with image/ + "
        "gt_binary_image/; pass --masks DIR to pair an image folder with a mask folder"
    )


@dataclass
class FrameResult:
    frame: Frame
    scores: dict[str, float]
    counts: dict[str, int]


def _inputs(
    frames: list[Frame], cfg: PreprocessConfig, skipped: list[str]
) -> Iterator[tuple[str, Any, Any]]:
    for frame in frames:
        try:
            rgb, label = frame.load()
        except LabelError as exc:
            skipped.append(f"{frame.id}: {exc}")
            continue
        yield frame.id, to_input(rgb, cfg), label


def evaluate(
    engine: Engine, frames: list[Frame], progress: bool = True
) -> tuple[list[FrameResult], dict[str, Any]]:
    acc = MetricAccumulator()
    results: list[FrameResult] = []
    bar = tqdm(total=len(frames), desc="eval", unit="frame", disable=not progress)
    t0 = time.perf_counter()
    skipped: list[str] = []
    by_id = {frame.id: frame for frame in frames}
    for frame_id, _, counts in frame_counts(
        engine, _inputs(frames, engine.info.preprocess, skipped)
    ):
        frame = by_id[frame_id]
        scores = acc.add(counts, frame.id)
        results.append(FrameResult(frame, scores, counts.to_dict()))
        bar.update(1)
        bar.set_postfix(iou=f"{acc.summary()['lane_iou']:.3f}")
    bar.close()
    cfg = engine.info.preprocess
    summary = acc.summary() | {
        "threshold": engine.info.threshold,
        "seconds": round(time.perf_counter() - t0, 2),
        "arch": engine.info.arch,
        "engine": engine.name,
        "provider": engine.device,
        "input": [cfg.height, cfg.width],
        "skipped_malformed": skipped,
    }
    if not results:
        raise LaneSegError(f"no frame could be scored: {len(skipped)} skipped ({skipped[0]})")
    return results, summary


def write_per_image_csv(results: list[FrameResult], path: Path) -> None:
    keys = ["lane_iou", "dice", "precision", "recall", "miou"]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", *keys, "tp", "fp", "fn", "tn", "image", "mask"])
        for r in results:
            c = r.counts
            w.writerow(
                [r.frame.id, *(f"{r.scores[k]:.6f}" for k in keys)]
                + [c["tp"], c["fp"], c["fn"], c["tn"], r.frame.image_path, r.frame.mask_path]
            )


def error_overlay(rgb: np.ndarray, pred: np.ndarray, label: np.ndarray) -> np.ndarray:
    """Green: predicted and labelled; red: predicted only; blue: labelled only."""
    p, t = pred > 127, label > 127
    out = (rgb.astype(np.float32) * 0.6).astype(np.uint8)
    out[p & t] = (40, 230, 40)
    out[p & ~t] = (240, 40, 40)
    out[~p & t] = (40, 110, 255)
    return out


def gallery(engine: Engine, results: list[FrameResult], path: Path, per_side: int = 4) -> None:
    """Worst `per_side` frames (top rows) and best `per_side` (bottom rows) by lane IoU."""
    ranked = sorted(results, key=lambda r: r.scores["lane_iou"])
    per_side = max(1, min(per_side, len(ranked) // 2))  # no frame shown twice
    worst = ranked[:per_side]
    best = ranked[len(ranked) - per_side :][::-1] if len(ranked) > 1 else []
    tiles = []
    for tag, group in (("worst", worst), ("best", best)):
        for r in group:
            rgb, label = r.frame.load()
            pred = predict_mask(engine, to_input(rgb, engine.info.preprocess), label.shape)
            tile = error_overlay(rgb, pred, label)
            scale = 480 / tile.shape[1]
            tile = cv2.resize(
                tile, (480, round(tile.shape[0] * scale)), interpolation=cv2.INTER_AREA
            )
            text = f"{tag} {r.frame.id}  IoU {r.scores['lane_iou']:.3f}"
            (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.55, 1)
            cv2.rectangle(tile, (0, 0), (tw + 12, th + 12), (0, 0, 0), -1)
            cv2.putText(tile, text, (6, th + 6), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1)
            tiles.append(tile)
    h = max(t.shape[0] for t in tiles)
    tiles = [np.pad(t, ((0, h - t.shape[0]), (0, 0), (0, 0)), constant_values=255) for t in tiles]
    sheet = contact_sheet(tiles, cols=min(per_side, len(tiles)))
    atomic_write(path, encode_image(sheet), durable=False)


def run_eval(
    model: Path,
    data: Path,
    out: Path,
    split: str = "val",
    masks: Path | None = None,
    gallery_size: int = 4,
    progress: bool = True,
) -> dict[str, Any]:
    engine = load_model_engine(model)
    frames = find_frames(data, split, masks)
    results, summary = evaluate(engine, frames, progress)
    is_dataset = masks is None and (data / "dataset.json").is_file()
    summary |= {"model": str(model), "data": str(data), "split": split if is_dataset else ""}
    out.mkdir(parents=True, exist_ok=True)
    write_per_image_csv(results, out / "per_image.csv")
    atomic_write(out / "summary.json", (json.dumps(summary, indent=2) + "\n").encode(), False)
    if gallery_size > 0:
        gallery(engine, results, out / "gallery.png", gallery_size)
    return summary
