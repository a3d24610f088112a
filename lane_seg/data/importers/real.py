"""Import one of the known real sources (`lane_seg.data.real_sources`) for training.

Each frame keeps the split of its clip (`real_sources.split_of`: 'train' or 'test'), and its
meta row records `real_source` and `real_key`, so a model trained on the dataset can carry the
list of real frames it saw (`ModelInfo.real_frames`) and the scoreboard never scores them.
Labels are the source's own (its convention), brought to `size` by the shared preprocessing.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from lane_seg.data import real_sources
from lane_seg.data.dataset import DatasetWriter, encode_image, encode_mask
from lane_seg.data.importers.common import LabelError, Problem
from lane_seg.data.importers.runner import ImportReport
from lane_seg.errors import LaneSegError
from lane_seg.preprocess import PreprocessConfig, resize_image, resize_mask


def import_real(name: str, data_root: Path, out: Path, size: PreprocessConfig) -> ImportReport:
    """Write the frames of real source `name` not yet in `out`: how many, how many were there
    already, and the frames skipped for a malformed label (`real_sources.load_frame`)."""
    source = real_sources.SOURCES.get(name)
    if source is None:
        raise LaneSegError(
            f"unknown real source {name!r}; known: {', '.join(real_sources.SOURCES)}"
        )
    if not (data_root / source.folder).is_dir():
        raise LaneSegError(f"{data_root / source.folder} is not there")
    params = {
        "backend": "import:real",
        "source": name,
        "size": [size.width, size.height],
        "resize": size.resize,
        "train_share": real_sources.TRAIN_SHARE,
    }
    report = ImportReport()
    with DatasetWriter(out, created_by=f"lane-seg import --real {name}", params=params) as w:
        for frame in source.frames(data_root):
            sample_id = f"{name}_{hashlib.sha256(frame.key.encode()).hexdigest()[:16]}"
            if sample_id in w:
                report.skipped_existing += 1
                continue
            try:
                rgb, mask = real_sources.load_frame(frame)
            except LabelError as exc:
                report.problems.append(Problem(frame.key, str(exc)))
                continue
            split = real_sources.split_of(frame)
            w.add(
                sample_id,
                split,
                f"real:{name}",
                encode_image(resize_image(rgb, size), ".jpg"),
                encode_mask(resize_mask(mask, size)),
                image_ext=".jpg",
                real_source=name,
                real_key=frame.key,
                clip=frame.clip,
                condition=real_sources.condition(rgb),
            )
            report.written += 1
            report.splits[split] += 1
    return report


def real_frames_of(samples) -> dict[str, list[str]]:
    """{real source: sorted keys} of the real frames among dataset samples."""
    out: dict[str, set[str]] = {}
    for s in samples:
        if "real_source" in s.meta:
            out.setdefault(s.meta["real_source"], set()).add(s.meta["real_key"])
    return {k: sorted(v) for k, v in sorted(out.items())}
