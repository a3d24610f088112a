"""Importers for real lane datasets (TuSimple, CULane, image+mask folders) and for lane lines drawn
in labelling tools (labelme, CVAT) into the dataset format.

`open_frames(format, src, ...)` finds the labelled frames of a dataset; `run_import` writes
them. `lane-seg import` (lane_seg/import_cli.py) is the command-line front end.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from lane_seg.data.importers import culane, cvat, labelme, masks, tusimple
from lane_seg.data.importers.common import Frame, Problem
from lane_seg.data.importers.runner import ImportReport, Settings, run_import
from lane_seg.data.importers.sources import DirSource, Source, open_source
from lane_seg.errors import LaneSegError

FORMATS = ("tusimple", "culane", "masks", "labelme", "cvat")
# Formats drawn in the lines convention (docs/architecture.md, "Label conventions"): as wide
# as the simulator draws its lines labels, 5 px at 512x256, scaled to the image.
LINES_FORMATS = ("labelme", "cvat")
LINES_REF = ((512, 256), 5.0)
# Benchmark resolution and line width drawn at it, per format that has lane polylines.
LINE_WIDTHS = {
    "tusimple": (tusimple.REF_SIZE, tusimple.REF_LINE_WIDTH),
    "culane": (culane.REF_SIZE, culane.REF_LINE_WIDTH),
    **{fmt: LINES_REF for fmt in LINES_FORMATS},
}

__all__ = [
    "FORMATS",
    "LINES_FORMATS",
    "LINE_WIDTHS",
    "Frame",
    "ImportReport",
    "Problem",
    "Settings",
    "open_frames",
    "run_import",
]


class _ListFile(Source):
    """A list file on disk layered over the dataset's source (CULane list/*.txt)."""

    def __init__(self, inner: Source, name: str, data: bytes):
        self.inner, self.name, self._name, self._data = inner, inner.name, name, data

    def read(self, rel: str) -> bytes:
        return self._data if rel == self._name else self.inner.read(rel)

    def exists(self, rel: str) -> bool:
        return rel == self._name or self.inner.exists(rel)

    def files(self) -> Iterator[str]:
        return self.inner.files()


def open_frames(
    fmt: str,
    src: str | Path,
    mask_dir: str | Path | None = None,
    list_file: str | None = None,
    clip_pattern: str | None = None,
) -> tuple[Iterator[Frame | Problem], Source, Source | None]:
    """(frames, image source, mask source) for a dataset in format `fmt` at `src`."""
    src = Path(src)
    if fmt == "tusimple":
        if src.is_file() and src.suffix in (".json", ".jsonl"):
            source = DirSource(src.parent)
            return tusimple.iter_frames(source, [src.name]), source, None
        source = open_source(src)
        labels = tusimple.label_files(source)
        if not labels:
            raise LaneSegError(
                f"no .json label files in {src}; pass the folder or zip holding TuSimple's "
                "label_data_*.json, or one json file"
            )
        return tusimple.iter_frames(source, labels), source, None
    if fmt == "culane":
        source = open_source(src)
        if list_file is None:
            return culane.iter_frames(source), source, None
        if Path(list_file).is_file():
            name = f"<list>{Path(list_file).name}"
            source = _ListFile(source, name, Path(list_file).read_bytes())
            return culane.iter_frames(source, name), source, None
        if not source.exists(list_file):
            raise LaneSegError(f"list file {list_file} found neither on disk nor in {src}")
        return culane.iter_frames(source, list_file), source, None
    if fmt == "masks":
        if mask_dir is None:
            raise LaneSegError("--format masks needs --masks DIR (the binary mask folder)")
        images, mask_source = open_source(src), open_source(mask_dir)
        return masks.iter_frames(images, mask_source, clip_pattern), images, mask_source
    if fmt == "labelme":
        source = open_source(src)
        return labelme.iter_frames(source, clip_pattern), source, None
    if fmt == "cvat":
        if src.is_file() and src.suffix.lower() == ".xml":
            source = DirSource(src.parent)
            return cvat.iter_frames(source, [src.name], clip_pattern), source, None
        source = open_source(src)
        return cvat.iter_frames(source, cvat.xml_files(source), clip_pattern), source, None
    raise LaneSegError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
