"""The dataset on disk (docs/architecture.md, contract 1), shared by every data source.

    <root>/dataset.json   format, classes, counts, created_by, generator parameters
    <root>/meta.jsonl     one JSON object per sample
    <root>/images/<id>.png|jpg, <root>/masks/<id>.png (0 background, 255 lane marking)

Writes are atomic (temporary name, then rename) and a sample's files are complete before its
meta line is appended, so a run killed at any point leaves only whole samples; re-opening the
writer resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lane_seg.errors import LaneSegError
from lane_seg.images import decode_image, encoded_size
from lane_seg.outputs import lock_folder, remove_stale_temps, temp_path
from lane_seg.sizes import MAX_IMAGE_SIDE

FORMAT = "lane_seg/1"
CLASSES = ["background", "lane_marking"]
SPLITS = ("train", "val", "test")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def atomic_write(path: Path, data: bytes, durable: bool = True) -> None:
    """Write `data` to `path` so that readers see either the old file or the whole new one.

    `durable` also flushes it to disk (fsync) before the rename, so it survives a power loss.
    """
    tmp = temp_path(path)
    with open(tmp, "wb") as f:
        f.write(data)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


def encode_image(image_rgb: np.ndarray, ext: str = ".png", jpeg_quality: int = 95) -> bytes:
    """Encode an HxWx3 uint8 RGB image (PNG lossless, or JPEG) to bytes."""
    if image_rgb.dtype != np.uint8 or image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
        raise ValueError(f"expected HxWx3 uint8 RGB, got {image_rgb.dtype} {image_rgb.shape}")
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if ext == ".jpg" else []
    ok, buf = cv2.imencode(ext, cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ValueError(f"could not encode image as {ext}")
    return buf.tobytes()


def encode_mask(mask: np.ndarray) -> bytes:
    """Encode an HxW mask as 8-bit PNG with values exactly 0 or 255."""
    if mask.ndim != 2:
        raise ValueError(f"expected an HxW mask, got shape {mask.shape}")
    binary = np.where(mask > 127, 255, 0).astype(np.uint8)
    ok, buf = cv2.imencode(".png", binary)
    if not ok:
        raise ValueError("could not encode mask")
    return buf.tobytes()


def read_image(path: Path) -> np.ndarray:
    """Read an image file as HxWx3 uint8 RGB; a clear error if it is missing or corrupt, or if
    its header declares a side above MAX_IMAGE_SIDE (refused before any pixel is decoded)."""
    data = np.fromfile(path, dtype=np.uint8) if Path(path).is_file() else None
    size = encoded_size(data.tobytes()) if data is not None else None
    if size is not None and max(size) > MAX_IMAGE_SIDE:
        raise LaneSegError(
            f"cannot read image {path}: it is {size[1]}x{size[0]} px, above the limit of "
            f"{MAX_IMAGE_SIDE} px a side"
        )
    image = decode_image(data) if data is not None else None
    if image is None:
        raise LaneSegError(f"cannot read image {path}: missing or not a valid image file")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_mask(path: Path) -> np.ndarray:
    """Read a mask file as HxW uint8 with values 0 or 255."""
    data = np.fromfile(path, dtype=np.uint8) if Path(path).is_file() else None
    mask = decode_image(data, cv2.IMREAD_GRAYSCALE) if data is not None else None
    if mask is None:
        raise LaneSegError(f"cannot read mask {path}: missing or not a valid image file")
    return np.where(mask > 127, 255, 0).astype(np.uint8)


@dataclass
class Sample:
    """One row of meta.jsonl, with paths resolved against the dataset root."""

    root: Path
    meta: dict[str, Any]

    @property
    def id(self) -> str:
        return self.meta["id"]

    @property
    def split(self) -> str:
        return self.meta["split"]

    @property
    def image_path(self) -> Path:
        return self.root / self.meta["image"]

    @property
    def mask_path(self) -> Path:
        return self.root / self.meta["mask"]

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """(RGB image, mask) as uint8 arrays."""
        return read_image(self.image_path), read_mask(self.mask_path)


ROW_KEYS = ("id", "split", "image", "mask")  # what every meta.jsonl row must hold (text)


@dataclass
class MetaFile:
    """meta.jsonl as read: the rows, the lines that are not rows, and a torn tail.

    Only the last line can be torn (a run killed while appending leaves it without its newline);
    it is not part of the dataset and a writer cuts it off. Any other line that is not a sample
    row is damage that nothing may silently skip or overwrite: `bad` names it.
    """

    path: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)  # "line N <what is wrong>"
    size: int = 0  # bytes on disk
    keep: int = 0  # bytes to keep: everything but a torn tail
    newline_missing: bool = False  # the last row is whole but lacks its newline

    def first_bad(self, root: Path) -> str:
        more = f" (and {len(self.bad) - 1} more)" if len(self.bad) > 1 else ""
        return (
            f"{self.path} {self.bad[0]}{more}; fix or delete that line "
            f"(`lane-seg verify {root}` lists every bad line)"
        )


def _row_problem(line: bytes) -> tuple[dict[str, Any] | None, str]:
    """(row, "") for a sample row, else (None, what is wrong with the line)."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, f"is not valid JSON ({exc.msg} at column {exc.colno})"
    except UnicodeDecodeError:
        return None, "is not UTF-8 text"
    if not isinstance(row, dict):
        return None, "is not a JSON object"
    missing = [k for k in ROW_KEYS if not isinstance(row.get(k), str)]
    if missing:
        return None, f"lacks {', '.join(missing)} (a row holds {', '.join(ROW_KEYS)} as text)"
    return row, ""


def read_meta(path: Path) -> MetaFile:
    """Parse meta.jsonl line by line (MetaFile says what each kind of line means)."""
    meta = MetaFile(path)
    if not path.exists():
        return meta
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            meta.size += len(line)
            row, problem = _row_problem(line)
            if row is not None:
                meta.rows.append(row)
                meta.newline_missing = not line.endswith(b"\n")
            elif line.endswith(b"\n"):
                meta.bad.append(f"line {number} {problem}")
            else:
                meta.keep = meta.size - len(line)  # the last line, cut short by a killed run
                return meta
    meta.keep = meta.size
    return meta


@dataclass
class Dataset:
    root: Path
    info: dict[str, Any]
    samples: list[Sample] = field(default_factory=list)
    bad_lines: list[str] = field(default_factory=list)  # meta.jsonl lines that are not rows
    torn_tail: bool = False  # meta.jsonl ends in a line cut short

    def split(self, name: str) -> list[Sample]:
        return [s for s in self.samples if s.split == name]

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)


def _read_info(path: Path) -> dict[str, Any]:
    try:
        info = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LaneSegError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(info, dict):
        raise LaneSegError(f"{path} is not a JSON object")
    return info


def load_dataset(root: str | Path, strict: bool = True) -> Dataset:
    """Open a dataset written in the lane_seg format (module docstring).

    A line of meta.jsonl that is not a sample row is an error (`strict`), never a silently
    shorter dataset; `strict=False` keeps the rows and lists the bad lines in `bad_lines`.
    """
    root = Path(root)
    info_path = root / "dataset.json"
    if not info_path.is_file():
        raise LaneSegError(
            f"{root} is not a lane_seg dataset (no dataset.json); create one with "
            "`lane-seg collect --out DIR` or `lane-seg import`"
        )
    info = _read_info(info_path)
    if info.get("format") != FORMAT:
        raise LaneSegError(f"{root}: format {info.get('format')!r}, expected {FORMAT!r}")
    meta = read_meta(root / "meta.jsonl")
    if strict and meta.bad:
        raise LaneSegError(meta.first_bad(root))
    samples = [Sample(root, row) for row in meta.rows]
    bad = [f"{meta.path} {line}" for line in meta.bad]
    return Dataset(root, info, samples, bad, meta.keep != meta.size)


class DatasetWriter:
    """Appends samples to a dataset directory, resuming an earlier run in the same directory.

    `params` identify how the data was generated (backend, seed, config); re-opening a directory
    that was made with different params is refused rather than silently mixing two datasets.
    """

    def __init__(self, root: str | Path, created_by: str, params: dict[str, Any] | None = None):
        self.root = Path(root)
        self.created_by = created_by
        self.params = params or {}
        self._lock = lock_folder(self.root)  # one writer at a time, until close()
        try:
            self._open()
        except BaseException:
            self._lock.release()
            raise

    def _open(self) -> None:
        for folder in (self.root / "images", self.root / "masks"):
            folder.mkdir(parents=True, exist_ok=True)
            remove_stale_temps(folder)  # half-written files of a killed run
        remove_stale_temps(self.root)
        self._check_params()
        meta = read_meta(self.root / "meta.jsonl")
        if meta.bad:  # rows after a damaged line are data: never truncate or rewrite them
            raise LaneSegError(meta.first_bad(self.root))
        if meta.keep != meta.size:
            os.truncate(meta.path, meta.keep)  # only the torn last line of a killed run
        self.rows: dict[str, dict[str, Any]] = {row["id"]: row for row in meta.rows}
        self._meta = open(meta.path, "ab")  # noqa: SIM115 (closed in close())
        if meta.newline_missing:
            self._meta.write(b"\n")
        self._write_info()

    def _check_params(self) -> None:
        info_path = self.root / "dataset.json"
        if not info_path.exists() or not self.params:
            return
        old = _read_info(info_path).get("params", {})
        if old and old != self.params:
            changed = sorted(
                k for k in set(old) | set(self.params) if old.get(k) != self.params.get(k)
            )
            raise LaneSegError(
                f"{self.root} was written with different settings ({', '.join(changed)}); "
                "use a new --out directory, or the same settings to resume"
            )

    def __contains__(self, sample_id: str) -> bool:
        return sample_id in self.rows

    def add(
        self,
        sample_id: str,
        split: str,
        source: str,
        image: bytes,
        mask: bytes,
        image_ext: str = ".png",
        **meta: Any,
    ) -> dict[str, Any]:
        """Store one sample from already-encoded image and mask bytes; returns its meta row."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if "/" in sample_id or sample_id.startswith("."):
            raise ValueError(f"invalid sample id {sample_id!r}")
        image_rel = f"images/{sample_id}{image_ext}"
        mask_rel = f"masks/{sample_id}.png"
        atomic_write(self.root / image_rel, image)
        atomic_write(self.root / mask_rel, mask)
        row = {
            "id": sample_id,
            "split": split,
            "source": source,
            "image": image_rel,
            "mask": mask_rel,
            "image_sha256": sha256_bytes(image),
            "mask_sha256": sha256_bytes(mask),
            **meta,
        }
        self._meta.write((json.dumps(row, sort_keys=True) + "\n").encode())
        self._meta.flush()
        os.fsync(self._meta.fileno())
        self.rows[sample_id] = row
        self._write_info()
        return row

    def _write_info(self) -> None:
        counts = Counter(row["split"] for row in self.rows.values())
        info = {
            "format": FORMAT,
            "classes": CLASSES,
            "counts": {split: counts.get(split, 0) for split in SPLITS},
            "created_by": self.created_by,
            "params": self.params,
        }
        # A summary derived from meta.jsonl, rewritten per sample: atomic, but not worth an fsync.
        info_bytes = (json.dumps(info, indent=2) + "\n").encode()
        atomic_write(self.root / "dataset.json", info_bytes, durable=False)

    def close(self) -> None:
        if self._meta.closed:
            return
        try:
            self._meta.close()
            self._write_info()
        finally:
            self._lock.release()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class VerifyReport:
    checked: int = 0
    missing: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # worth saying, not a failure

    @property
    def ok(self) -> bool:
        return not (self.missing or self.corrupt or self.problems)


def verify_dataset(root: str | Path) -> VerifyReport:
    """Recompute every checksum; report missing files, corrupt files and bad meta rows."""
    dataset = load_dataset(root, strict=False)
    report = VerifyReport()
    report.problems += dataset.bad_lines
    if dataset.torn_tail:
        report.notes.append(
            f"{dataset.root / 'meta.jsonl'} ends in a line cut short (a killed run?); the "
            "command that wrote it drops that line when re-run"
        )
    seen: set[str] = set()
    for sample in dataset:
        report.checked += 1
        if sample.id in seen:
            report.problems.append(f"{sample.id}: duplicate id in meta.jsonl")
        seen.add(sample.id)
        if sample.split not in SPLITS:
            report.problems.append(f"{sample.id}: unknown split {sample.split!r}")
        for key, path in (("image", sample.image_path), ("mask", sample.mask_path)):
            if not path.is_file():
                report.missing.append(f"{sample.id}: {key} {path} is missing")
            elif sha256_file(path) != sample.meta.get(f"{key}_sha256"):
                report.corrupt.append(f"{sample.id}: {key} {path} fails its sha256 check")
    counts = Counter(s.split for s in dataset)
    recorded = dataset.info.get("counts", {})
    if not dataset.bad_lines and any(
        recorded.get(split, 0) != counts.get(split, 0) for split in SPLITS
    ):
        report.notes.append(
            f"dataset.json counts {recorded} lag meta.jsonl {dict(counts)}: an interrupted run? "
            "re-run the command that wrote it to resume"
        )
    return report
