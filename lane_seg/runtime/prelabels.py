"""Pre-labels: the model's lane lines written for a labelling tool, so that a person corrects
lines instead of drawing them (`lane-seg infer --export labelme|cvat`).

Each export folder is self-contained, in the layout its tool reads and `lane-seg import` takes
back (`--format labelme|cvat`):

  OUT/labelme/<name>.<ext> + <name>.json     the frame and its labelme file side by side
  OUT/cvat/images/<name>.<ext>               the frames, as CVAT's own export lays them out
  OUT/cvat/annotations.xml                   CVAT for images 1.1, written when the run ends

The lines are those the lines convention labels (docs/architecture.md, "Label conventions"):
the ego lane's and the nearest one on each side (`nearest_lines`), in the frame's pixels.
Frames are copied as they are (images) or encoded as JPEG (video frames); every file is written
atomically.
"""

from __future__ import annotations

import json
from pathlib import Path

from lane_seg.data.dataset import atomic_write
from lane_seg.errors import LaneSegError
from lane_seg.lanes.extract import LaneInstance, nearest_lines
from lane_seg.lanes.formats import cvat_xml, labelme_record

EXPORT_FORMATS = ("labelme", "cvat")
LINES_PER_SIDE = 2  # the ego line and one more on each side, as the lines convention labels


class PreLabels:
    """Collects frames and their lines for one export folder under `out`."""

    def __init__(self, out: str | Path, fmt: str) -> None:
        if fmt not in EXPORT_FORMATS:
            raise LaneSegError(f"pre-labels are {' or '.join(EXPORT_FORMATS)}, not {fmt!r}")
        self.fmt = fmt
        self.root = Path(out) / fmt
        self._cvat: list[tuple[str, tuple[int, int], list[LaneInstance]]] = []

    def add(
        self, name: str, image: bytes, ext: str, size: tuple[int, int], lanes: list[LaneInstance]
    ) -> list[Path]:
        """One frame (its encoded file `image`, `ext` with the dot) of `size` (width, height)
        and the lines found in it; returns the files written now."""
        lines = nearest_lines(lanes, LINES_PER_SIDE)
        rel = f"{name}{ext}"
        if self.fmt == "labelme":
            picture = self.root / rel
            record = labelme_record(lines, Path(rel).name, size)
            label = picture.with_suffix(".json")
            return [self._write(picture, image), self._write(label, json.dumps(record).encode())]
        self._cvat.append((rel, size, lines))
        return [self._write(self.root / "images" / rel, image)]

    def finish(self) -> list[Path]:
        """The files only the end of the run can write (CVAT's one annotations.xml)."""
        if self.fmt != "cvat" or not self._cvat:
            return []
        return [self._write(self.root / "annotations.xml", cvat_xml(self._cvat).encode())]

    @staticmethod
    def _write(path: Path, data: bytes) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)
        return path
