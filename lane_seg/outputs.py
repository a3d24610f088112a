"""Output paths, checked before a command does any work: a folder or file it can write, or one
line that says why not ("cannot write to runs/x: read-only file system"); and the temporary
names atomic writes use (`.<name>.tmp<pid>`, renamed when whole), whose leftovers from killed
processes `remove_stale_temps` deletes."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lane_seg.errors import LaneSegError


def os_reason(exc: OSError) -> str:
    """The operating system's words for `exc`, in lower case ("read-only file system")."""
    text = exc.strerror or str(exc) or type(exc).__name__
    return text[0].lower() + text[1:]


def os_error_line(exc: OSError) -> str:
    """`exc` as one line: its file, then the reason ("runs/x/log.csv: no space left on device")."""
    return f"{exc.filename}: {os_reason(exc)}" if exc.filename else os_reason(exc)


def output_dir(path: str | Path) -> Path:
    """Prove the folder `path` can be written, or made and written, without making it: a file
    is created and removed in it, or in its nearest existing parent (a command that then fails
    leaves nothing behind)."""
    path = Path(path)
    there = path
    while not there.exists() and there != there.parent:
        there = there.parent
    if not there.is_dir():
        what = "it" if there == path else str(there)
        raise LaneSegError(f"cannot write to {path}: {what} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".write_test", dir=there)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise LaneSegError(f"cannot write to {path}: {os_reason(exc)}") from None
    return path


def output_file(path: str | Path) -> Path:
    """A file path whose folder `output_dir` accepts and that is not itself a folder."""
    path = Path(path)
    if path.is_dir():
        raise LaneSegError(f"cannot write to {path}: it is a folder, not a file")
    output_dir(path.parent)
    return path


def temp_path(path: Path) -> Path:
    """Where this process writes `path` before renaming it into place."""
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete the `temp_path` files in `folder` whose writer is dead (killed while writing), and
    this process's own (left by an earlier process that had the same pid); returns them. Call it
    before this process writes there."""
    removed = []
    for path in Path(folder).glob(".*.tmp*"):
        m = re.fullmatch(r"\..+\.tmp(\d+)", path.name)
        if m and path.is_file() and (int(m.group(1)) == os.getpid() or not _alive(int(m.group(1)))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


@contextmanager
def naming(path: str | Path) -> Iterator[None]:
    """An OSError raised inside that names no file (a write or flush to an open file when the
    disk fills up) names `path`, so its one line says which file (`os_error_line`)."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None:
            exc.filename = str(path)
        raise
