"""Evaluation of a .pt or .onnx model on labelled frames, through the shared preprocessing.

Every frame: `preprocess.to_input` -> model logits -> `preprocess.to_mask` back at the frame's
own resolution (probability threshold from the model's metadata, 0.5) -> confusion counts
against the original label (`lane_seg.metrics`). The model's input size, normalisation and
threshold come from the checkpoint / ONNX metadata, never from command-line guesses.

Outputs: per_image.csv, summary.json and gallery.png (worst and best frames, prediction over
the image: green = correct lane, red = false lane, blue = missed lane).
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lane_seg.artifact import ModelInfo
from lane_seg.dataset import load_dataset, read_image, read_mask
from lane_seg.errors import LaneSegError
from lane_seg.metrics import MetricAccumulator, confusion
from lane_seg.preprocess import to_input, to_mask

IMAGE_EXTS = (".png", ".jpg", ".jpeg")


@dataclass
class Predictor:
    """Logits for preprocessed input, from PyTorch or onnxruntime."""

    info: ModelInfo
    kind: str  # "torch" | "onnx"
    run: Callable[[np.ndarray], np.ndarray]
    provider: str = "cpu"

    def logits(self, x: np.ndarray) -> np.ndarray:
        return self.run(x.astype(np.float32))


def load_predictor(path: str | Path) -> Predictor:
    """A .pt checkpoint (rebuilt with build_model) or an .onnx file (metadata_props)."""
    path = Path(path)
    if not path.is_file():
        raise LaneSegError(f"model {path} not found")
    if path.suffix == ".onnx":
        return _onnx_predictor(path)
    if path.suffix == ".pt":
        return _torch_predictor(path)
    raise LaneSegError(f"model {path}: expected a .pt checkpoint or an .onnx file")


def _torch_predictor(path: Path) -> Predictor:
    import torch

    from lane_seg.models.checkpoint import load_model

    model, info = load_model(path)

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()

    return Predictor(info, "torch", run, "torch-cpu")


def _onnx_predictor(path: Path) -> Predictor:
    import onnxruntime as ort

    from lane_seg.artifact import INPUT_NAME, OUTPUT_NAME

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise LaneSegError(f"cannot load ONNX model {path}: {exc}") from exc
    meta = session.get_modelmeta().custom_metadata_map
    info = ModelInfo.from_metadata(meta, source=str(path))

    def run(x: np.ndarray) -> np.ndarray:
        return session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]

    return Predictor(info, "onnx", run, session.get_providers()[0])


@dataclass
class Frame:
    id: str
    image_path: Path
    mask_path: Path

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        return read_image(self.image_path), read_mask(self.mask_path)


def dataset_frames(root: Path, split: str) -> list[Frame]:
    """Frames of a Contract-1 dataset (`split` = train|val|test|all)."""
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


def evaluate(
    predictor: Predictor, frames: list[Frame], progress: bool = True
) -> tuple[list[FrameResult], dict[str, Any]]:
    cfg, threshold = predictor.info.preprocess, predictor.info.threshold
    acc = MetricAccumulator()
    results: list[FrameResult] = []
    it: Iterator[Frame] | Any = frames
    if progress:
        from tqdm import tqdm

        it = tqdm(frames, desc="eval", unit="frame")
    t0 = time.perf_counter()
    for frame in it:
        rgb, label = frame.load()
        logits = predictor.logits(to_input(rgb, cfg))
        pred = to_mask(logits[0, 0], label.shape, cfg, threshold)
        counts = confusion(pred, label)
        scores = acc.add(counts, frame.id)
        results.append(FrameResult(frame, scores, counts.to_dict()))
        if progress:
            it.set_postfix(iou=f"{acc.summary()['lane_iou']:.3f}")
    summary = acc.summary() | {
        "threshold": threshold,
        "seconds": round(time.perf_counter() - t0, 2),
        "arch": predictor.info.arch,
        "backend": predictor.kind,
        "provider": predictor.provider,
        "input": [cfg.height, cfg.width],
    }
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


def gallery(
    predictor: Predictor, results: list[FrameResult], path: Path, per_side: int = 4
) -> None:
    """Worst `per_side` frames (top rows) and best `per_side` (bottom rows) by lane IoU."""
    ranked = sorted(results, key=lambda r: r.scores["lane_iou"])
    per_side = max(1, min(per_side, len(ranked) // 2))  # no frame shown twice
    worst = ranked[:per_side]
    best = ranked[len(ranked) - per_side :][::-1] if len(ranked) > 1 else []
    tiles = []
    cfg = predictor.info.preprocess
    for tag, group in (("worst", worst), ("best", best)):
        for r in group:
            rgb, label = r.frame.load()
            logits = predictor.logits(to_input(rgb, cfg))
            pred = to_mask(logits[0, 0], label.shape, cfg, predictor.info.threshold)
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
    from lane_seg.visualize import contact_sheet

    sheet = contact_sheet(tiles, cols=min(per_side, len(tiles)))
    ok, buf = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if not ok:
        raise LaneSegError("could not encode the gallery PNG")
    _atomic_bytes(path, buf.tobytes())


def _atomic_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def run_eval(
    model: Path,
    data: Path,
    out: Path,
    split: str = "val",
    masks: Path | None = None,
    gallery_size: int = 4,
    progress: bool = True,
) -> dict[str, Any]:
    predictor = load_predictor(model)
    frames = find_frames(data, split, masks)
    results, summary = evaluate(predictor, frames, progress)
    is_dataset = masks is None and (data / "dataset.json").is_file()
    summary |= {"model": str(model), "data": str(data), "split": split if is_dataset else ""}
    out.mkdir(parents=True, exist_ok=True)
    write_per_image_csv(results, out / "per_image.csv")
    _atomic_bytes(out / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())
    if gallery_size > 0:
        gallery(predictor, results, out / "gallery.png", gallery_size)
    return summary
