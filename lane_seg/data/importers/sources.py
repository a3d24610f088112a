"""Where an importer reads its files from: a folder, or a zip archive read in place.

Label files name images by paths relative to some root (TuSimple's `raw_file`, CULane's list
entries). A `Source` resolves such paths the same way in a folder and inside a zip, so a
downloaded archive can be imported without extracting it first.
"""

from __future__ import annotations

import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from lane_seg.errors import LaneSegError


class Source:
    """Read-only file access relative to a root; paths are POSIX strings."""

    name: str

    def read(self, rel: str) -> bytes:
        raise NotImplementedError

    def exists(self, rel: str) -> bool:
        raise NotImplementedError

    def files(self) -> Iterator[str]:
        """Every file below the root, as relative POSIX paths, sorted."""
        raise NotImplementedError


class DirSource(Source):
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.name = str(self.root.resolve())
        if not self.root.is_dir():
            raise LaneSegError(f"{self.root} is not a folder; pass the dataset's root folder")

    def _path(self, rel: str) -> Path:
        if ".." in PurePosixPath(rel).parts:  # a label may not reach outside the dataset
            raise FileNotFoundError(f"{rel} points outside {self.root}")
        return self.root / rel.lstrip("/")

    def read(self, rel: str) -> bytes:
        return self._path(rel).read_bytes()

    def exists(self, rel: str) -> bool:
        try:
            return self._path(rel).is_file()
        except FileNotFoundError:
            return False

    def files(self) -> Iterator[str]:
        paths = (p for p in self.root.rglob("*") if p.is_file())
        yield from sorted(p.relative_to(self.root).as_posix() for p in paths)


class ZipSource(Source):
    """A zip archive read in place. Thread-safe: each thread gets its own handle."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.name = str(self.path.resolve())
        try:
            with zipfile.ZipFile(self.path) as z:
                self._names = {n for n in z.namelist() if not n.endswith("/")}
        except (OSError, zipfile.BadZipFile) as exc:
            raise LaneSegError(f"cannot open {self.path} as a zip archive: {exc}") from exc
        self._local = threading.local()

    def _zip(self) -> zipfile.ZipFile:
        z = getattr(self._local, "zip", None)
        if z is None:
            z = self._local.zip = zipfile.ZipFile(self.path)  # noqa: SIM115 (kept per thread)
        return z

    def read(self, rel: str) -> bytes:
        name = str(PurePosixPath(rel.lstrip("/")))
        if name not in self._names:
            raise FileNotFoundError(f"{name} not in {self.path}")
        return self._zip().read(name)

    def exists(self, rel: str) -> bool:
        return str(PurePosixPath(rel.lstrip("/"))) in self._names

    def files(self) -> Iterator[str]:
        yield from sorted(self._names)


def open_source(path: str | Path) -> Source:
    path = Path(path)
    if path.is_file() and zipfile.is_zipfile(path):
        return ZipSource(path)
    if path.is_dir():
        return DirSource(path)
    raise LaneSegError(f"{path} does not exist or is neither a folder nor a zip archive")


def join(base: str, rel: str) -> str:
    """`rel` relative to the folder `base` (both POSIX, inside one Source)."""
    return str(PurePosixPath(base) / rel.lstrip("/")) if base not in ("", ".") else rel.lstrip("/")
