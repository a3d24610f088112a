"""Output paths, checked before a command does any work: a folder or file it can write, or one
line that says why not ("cannot write to runs/x: read-only file system"); and the temporary
names atomic writes use (`.<name>.tmp<pid>`, renamed when whole), whose leftovers from killed
processes `remove_stale_temps` deletes; and the lock that keeps a second process from writing
the same folder or file at the same time (`lock_folder`, `lock_file`)."""

from __future__ import annotations

import atexit
import fcntl
import glob
import os
import re
import tempfile
import time
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


LOCK_NAME = ".lane_seg.lock"  # in a folder being written: the writer's pid
LOCK_TRIES = 10


class OutputLock:
    """This process writing a folder or a file, and no other: an advisory flock on a lock file
    that holds the writer's pid (docs/architecture.md, contract 4). The kernel drops a flock
    when its process ends, however it ends, so a killed writer leaves at most an unlocked file
    that the next writer takes over, never a stale lock. Re-entrant within a process; the last
    `release` deletes the lock file, and the folders that taking the lock made if still empty."""

    def __init__(self, path: Path, fd: int, made: list[Path], file: Path | None) -> None:
        self.path, self.fd, self.made, self.file = path, fd, made, file
        self.pid, self.count = os.getpid(), 1

    def release(self) -> None:
        if self.pid != os.getpid() or self.count == 0:  # a forked child holds nothing
            return
        self.count -= 1
        if self.count:
            return
        _HELD.pop(self.path, None)
        if self.file is not None:  # a write of it by this process that failed half-way
            temp_path(self.file).unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)  # while still locked (see _acquire)
        os.close(self.fd)
        for folder in reversed(self.made):
            try:
                folder.rmdir()
            except OSError:  # not empty: the command wrote there
                break

    def __enter__(self) -> OutputLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


_HELD: dict[Path, OutputLock] = {}


def lock_folder(path: str | Path) -> OutputLock:
    """`output_dir(path)`, then make the folder and hold it (`OutputLock`) and delete what
    killed writes left in it (`remove_stale_temps`); a LaneSegError "PATH is being written by
    pid N" while another process holds it."""
    path = output_dir(path)
    lock = _acquire(path / LOCK_NAME, path, path, None)
    if lock.count == 1:  # taken now, not again by its holder
        remove_stale_temps(path)
    return lock


def lock_file(path: str | Path) -> OutputLock:
    """`output_file(path)`, then hold `path` (a lock file beside it, `.NAME.lock`) and delete
    what killed writes of it left (`remove_stale_temps`); for a file, or for a folder that
    another library makes (a rosbag2 output)."""
    path = output_file(path)
    lock = _acquire(path.with_name(f".{path.name}.lock"), path, path.parent, path)
    if lock.count == 1:
        remove_stale_temps(path.parent, path.name)
    return lock


@contextmanager
def releasing_locks() -> Iterator[None]:
    """Release, when the block ends, every lock taken in it: a command's outputs are its own
    until it returns, and one that fails leaves no lock file or empty folder behind."""
    before = set(_HELD)
    try:
        yield
    finally:
        for key in [key for key in _HELD if key not in before]:
            _HELD[key].count = 1
            _HELD[key].release()


def _acquire(path: Path, target: Path, folder: Path, file: Path | None) -> OutputLock:
    key = Path(os.path.abspath(path))
    if key in _HELD:
        _HELD[key].count += 1
        return _HELD[key]
    made = _make_folders(folder)
    for _ in range(LOCK_TRIES):
        try:
            fd = os.open(key, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:  # a writer that just finished removed the empty folder
            made += _make_folders(folder)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _holder(fd)
            os.close(fd)
            raise LaneSegError(
                f"{target} is being written by pid {pid}; wait for it to finish, or write "
                "somewhere else"
            ) from None
        # A writer that releases deletes the file while it still holds it, so the lock just
        # taken guards `target` only if the name still leads to the same file.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(key))
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            _HELD[key] = OutputLock(key, fd, made, file)
            return _HELD[key]
        os.close(fd)
    raise LaneSegError(f"cannot lock {target}: its lock file {key} keeps being replaced")


def _holder(fd: int) -> str:
    """The pid in a lock file another process holds (it writes it just after locking)."""
    for _ in range(LOCK_TRIES):
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if text.isdigit():
            return text
        time.sleep(0.05)
    return "unknown"


def _make_folders(folder: Path) -> list[Path]:
    """Make `folder` and its missing parents; the ones this call made, outermost first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    made = []
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:
            continue
        made.append(path)
    return made


@atexit.register
def _release_all() -> None:
    """Delete this process's lock files when it exits (the kernel drops the locks anyway)."""
    for key in list(_HELD):
        _HELD[key].count = 1
        _HELD[key].release()


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


def remove_stale_temps(folder: Path, name: str = "") -> list[Path]:
    """Delete the `temp_path` files in `folder` (of the file `name` only, if given) whose writer
    is dead (killed while writing), and this process's own (left by an earlier process that had
    the same pid); returns them. Call it before this process writes there."""
    removed = []
    for path in Path(folder).glob(f".{glob.escape(name)}.tmp*" if name else ".*.tmp*"):
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
