"""The import loop: frames in, dataset samples out, malformed labels reported and skipped.

Labels are parsed up front (cheap) so that splits can be assigned by whole clips; then frames
are decoded, drawn, cropped/resized and encoded in a small thread pool (OpenCV releases the
GIL), and written in order by one `DatasetWriter`. Every sample is atomic and the writer
resumes, so an interrupted import is finished by running the same command again.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lane_seg.data.dataset import DatasetWriter, atomic_write, encode_image, encode_mask
from lane_seg.data.importers.common import (
    Crop,
    Frame,
    LabelError,
    Problem,
    assign_splits,
    check_points,
    draw_lanes,
    line_width_px,
    sample_id,
    transform,
)
from lane_seg.data.importers.sources import Source
from lane_seg.images import decode_image
from lane_seg.lanes.drawing import draw_lines
from lane_seg.preprocess import PreprocessConfig

REPORT_NAME = "import_report.json"


MASK_COLOR_TOLERANCE = 24  # grey levels per channel around --mask-color


@dataclass
class Settings:
    """How labels become masks; stored as the dataset's params so a resume must match."""

    format: str
    ref_size: tuple[int, int] | None = None  # benchmark resolution the width refers to
    ref_line_width: float | None = None  # line width at ref_size, in pixels
    margin: float = 0.1  # allowed overshoot of label points past the border (x image size)
    crop: Crop | None = None
    size: PreprocessConfig | None = None
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    prefix: str = ""
    image_format: str = "keep"  # keep | png | jpg
    mask_threshold: int = 127
    mask_color: tuple[int, int, int] | None = None  # class masks: this RGB colour is lane
    lines: bool = False  # drawn in the lines convention (draw_lines), not at a benchmark's width

    def params(self, source_name: str) -> dict[str, Any]:
        return {
            "backend": f"import:{self.format}",
            "source": source_name,
            "ref_size": list(self.ref_size) if self.ref_size else None,
            "line_width": self.ref_line_width,
            "margin": self.margin,
            "crop": str(self.crop) if self.crop else None,
            "size": [self.size.width, self.size.height] if self.size else None,
            "resize": self.size.resize if self.size else None,
            "split": list(self.fractions),
            "seed": self.seed,
            "prefix": self.prefix,
            "image_format": self.image_format,
            "mask_threshold": self.mask_threshold if self.format == "masks" else None,
            "mask_color": list(self.mask_color) if self.mask_color else None,
            **({"convention": "lines"} if self.lines else {}),  # older datasets resume as made
        }


@dataclass
class ImportReport:
    written: int = 0
    skipped_existing: int = 0
    problems: list[Problem] = field(default_factory=list)
    splits: Counter = field(default_factory=Counter)
    clips: int = 0
    seconds: float = 0.0

    @property
    def samples_per_s(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "written": self.written,
            "skipped_existing": self.skipped_existing,
            "problems": [{"sample": p.key, "reason": p.reason} for p in self.problems],
            "splits": dict(self.splits),
            "clips": self.clips,
            "seconds": round(self.seconds, 3),
            "samples_per_s": round(self.samples_per_s, 2),
        }


def _decode(data: bytes, flags: int) -> np.ndarray:
    image = decode_image(data, flags)
    if image is None:
        raise LabelError("not a readable image file")
    return image


def _read(source: Source, rel: str, what: str) -> bytes:
    try:
        return source.read(rel)
    except (OSError, KeyError) as exc:
        raise LabelError(f"{what} {rel} is missing ({exc.__class__.__name__})") from None


def label_mask(data: bytes, settings: Settings) -> np.ndarray:
    """0/255 lane mask from a mask file: grey levels above the threshold, or, for class masks
    (comma10k's RGB classes), the pixels of `mask_color` (within a few levels: lossy files)."""
    if settings.mask_color is None:
        gray = _decode(data, cv2.IMREAD_GRAYSCALE)
        return np.where(gray > settings.mask_threshold, 255, 0).astype(np.uint8)
    bgr = _decode(data, cv2.IMREAD_COLOR).astype(np.int16)
    target = np.asarray(settings.mask_color[::-1], np.int16)
    near = np.abs(bgr - target).max(axis=2) <= MASK_COLOR_TOLERANCE
    return np.where(near, 255, 0).astype(np.uint8)


def build_sample(
    frame: Frame, images: Source, masks: Source | None, settings: Settings
) -> tuple[bytes, bytes, str, dict[str, Any]]:
    """(image bytes, mask bytes, image ext, meta) for one frame; LabelError if it is bad."""
    raw = _read(images, frame.image, "image")
    decoded = _decode(raw, cv2.IMREAD_UNCHANGED)
    # Only a plain 8-bit 3-channel file may be copied as is; anything else is converted.
    plain = decoded.dtype == np.uint8 and decoded.ndim == 3 and decoded.shape[2] == 3
    bgr = decoded if plain else _decode(raw, cv2.IMREAD_COLOR)
    h, w = bgr.shape[:2]
    if frame.size is not None and tuple(frame.size) != (w, h):
        raise LabelError(f"the label is for a {frame.size[0]}x{frame.size[1]} image, {w}x{h} here")
    if frame.lanes is not None:
        check_points(frame.lanes, w, h, settings.margin)
        assert settings.ref_size and settings.ref_line_width
        width = line_width_px(settings.ref_line_width, settings.ref_size, (w, h))
        if settings.lines:  # docs/architecture.md, "Label conventions"
            mask = draw_lines((h, w), frame.lanes, width)
        else:
            mask = draw_lanes(h, w, frame.lanes, width)
        label_meta: dict[str, Any] = {"lanes": len(frame.lanes), "line_width_px": round(width, 2)}
    else:
        assert masks is not None and frame.mask is not None
        mask = label_mask(_read(masks, frame.mask, "mask"), settings)
        if mask.shape != (h, w):
            raise LabelError(f"mask is {mask.shape[1]}x{mask.shape[0]}, image is {w}x{h}")
        label_meta = {}
    src_ext = Path(frame.image).suffix.lower()
    natural = ".jpg" if src_ext in (".jpg", ".jpeg") else ".png"
    ext = natural if settings.image_format == "keep" else f".{settings.image_format}"
    changed = settings.crop is not None or settings.size is not None
    if plain and not changed and ext == natural and src_ext in (".jpg", ".jpeg", ".png"):
        image_bytes = raw  # the original file, bit for bit: no second JPEG generation
    else:
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        rgb, mask = transform(rgb, mask, settings.crop, settings.size)
        image_bytes = encode_image(rgb, ext)
    meta = {
        "source_image": frame.image,
        "clip": frame.clip,
        "source_size": [w, h],
        "size": [mask.shape[1], mask.shape[0]],
        "lane_pixels": int(np.count_nonzero(mask)),
        **label_meta,
        **frame.meta,
    }
    return image_bytes, encode_mask(mask), ext, meta


def _bounded_map(pool: ThreadPoolExecutor, fn, items: Iterable, depth: int) -> Iterator:
    """pool.map that keeps at most `depth` results in flight (memory stays flat)."""
    pending: list = []
    for item in items:
        pending.append((item, pool.submit(fn, item)))
        if len(pending) >= depth:
            first = pending.pop(0)
            yield first[0], first[1]
    for item, fut in pending:
        yield item, fut


def run_import(
    frames: Iterable[Frame | Problem],
    images: Source,
    out: str | Path,
    settings: Settings,
    masks: Source | None = None,
    workers: int = 2,
    progress: bool = False,
    limit: int | None = None,
) -> ImportReport:
    """Import `frames` into the dataset at `out`; returns counts, problems and speed."""
    report = ImportReport()
    good: list[Frame] = []
    ids: dict[str, str] = {}
    for item in frames:
        if isinstance(item, Problem):
            report.problems.append(item)
            continue
        sid = sample_id(settings.prefix, item.key)
        if sid in ids:
            report.problems.append(Problem(item.key, f"same sample id as {ids[sid]}; skipped"))
            continue
        ids[sid] = item.key
        good.append(item)
        if limit is not None and len(good) >= limit:
            break
    if not good:  # nothing usable: leave no dataset behind (the caller says why)
        return report
    clip_sizes = Counter(f.clip for f in good)
    splits = assign_splits(dict(clip_sizes), settings.fractions, settings.seed)
    report.clips = len(clip_sizes)
    name = f"{images.name}" + (f" + {masks.name}" if masks is not None else "")
    writer = DatasetWriter(
        out, f"lane-seg import --format {settings.format}", settings.params(name)
    )
    todo = []
    for f in good:
        if sample_id(settings.prefix, f.key) in writer:
            report.skipped_existing += 1
        else:
            todo.append(f)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit="frame", desc="import")
    start = time.perf_counter()
    try:
        with ThreadPoolExecutor(max(1, workers)) as pool:
            job = lambda f: build_sample(f, images, masks, settings)  # noqa: E731
            for frame, fut in _bounded_map(pool, job, todo, depth=4 * max(1, workers)):
                try:
                    image_bytes, mask_bytes, ext, meta = fut.result()
                except LabelError as exc:
                    report.problems.append(Problem(frame.meta.get("label", frame.key), str(exc)))
                else:
                    split = splits[frame.clip]
                    sid = sample_id(settings.prefix, frame.key)
                    writer.add(
                        sid,
                        split,
                        f"import:{settings.format}",
                        image_bytes,
                        mask_bytes,
                        image_ext=ext,
                        **meta,
                    )
                    report.written += 1
                    report.splits[split] += 1
                if bar is not None:
                    bar.update(1)
    finally:
        report.seconds = time.perf_counter() - start
        writer.close()
        if bar is not None:
            bar.close()
        atomic_write(
            Path(out) / REPORT_NAME, (json.dumps(report.to_json(), indent=2) + "\n").encode()
        )
    return report
