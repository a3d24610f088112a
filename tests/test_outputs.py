"""Output paths are checked before any work, with the operating system's reason in one line."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

from lane_seg import outputs
from lane_seg.errors import LaneSegError
from lane_seg.outputs import output_dir, output_file, remove_stale_temps


def test_a_writable_folder_is_checked_and_nothing_is_left(tmp_path):
    assert output_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert output_file(tmp_path / "c" / "m.onnx") == tmp_path / "c" / "m.onnx"
    assert output_dir(tmp_path) == tmp_path
    assert os.listdir(tmp_path) == []


def test_a_file_where_a_folder_should_be_and_the_reverse(tmp_path):
    (tmp_path / "f").write_text("keep me")
    with pytest.raises(LaneSegError, match=r"cannot write to .*/f: it is a file, not a folder"):
        output_dir(tmp_path / "f")
    with pytest.raises(LaneSegError, match=r"cannot write to .*/f/x/y: .*/f is a file, not a"):
        output_dir(tmp_path / "f" / "x" / "y")
    with pytest.raises(LaneSegError, match=r"cannot write to .*/f: it is a file, not a folder"):
        output_file(tmp_path / "f" / "m.onnx")
    with pytest.raises(LaneSegError, match=r"cannot write to .*: it is a folder, not a file"):
        output_file(tmp_path)
    assert (tmp_path / "f").read_text() == "keep me"


def test_the_systems_reason_in_its_own_words(tmp_path, monkeypatch):
    if os.path.isdir("/proc/self"):
        with pytest.raises(LaneSegError, match="cannot write to /proc/x: no such file or dir"):
            output_dir("/proc/x")

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(outputs.tempfile, "mkstemp", read_only)
    with pytest.raises(LaneSegError) as err:
        output_dir(tmp_path)
    assert str(err.value) == f"cannot write to {tmp_path}: read-only file system"


def test_only_the_temporary_files_of_dead_writers_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        names = [f".last.pt.tmp{dead.pid}", f".best.pt.tmp{os.getpid()}", f".x.png.tmp{live.pid}",
                 "last.pt", ".hidden", "notes.tmp1"]  # fmt: skip
        for name in names:
            (tmp_path / name).write_bytes(b"x")
        removed = remove_stale_temps(tmp_path)
    finally:
        live.kill()
        live.wait()
    assert sorted(p.name for p in removed) == sorted(names[:2])  # dead, and an earlier same pid
    assert sorted(os.listdir(tmp_path)) == sorted(names[2:])


def test_any_other_os_error_of_a_command_is_one_line(tmp_path, capsys, monkeypatch):
    """Past the up-front checks (the disk filling up mid-run): still one line, exit 2."""
    from lane_seg.cli import verify
    from lane_seg.cli.main import main

    def full(args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "x.png"))

    monkeypatch.setattr(verify, "run", full)
    assert main(["verify", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == f"lane-seg verify: error: {tmp_path / 'x.png'}: no space left on device\n"


HOLD = (
    "import sys; from lane_seg.outputs import lock_file, lock_folder; "
    "lock_folder(sys.argv[1]); lock_file(sys.argv[2]); print('held', flush=True); sys.stdin.read()"
)


def _holder(folder, file) -> subprocess.Popen:
    """Another process writing `folder` and `file` until its stdin closes."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder), str(file)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline() == "held\n"
    return proc


def test_a_second_writer_is_refused_with_the_holders_pid(tmp_path):
    from lane_seg.outputs import lock_file, lock_folder

    folder, file = tmp_path / "runs" / "x", tmp_path / "m.onnx"
    proc = _holder(folder, file)
    try:
        for lock, path in ((lock_folder, folder), (lock_file, file)):
            with pytest.raises(LaneSegError) as err:
                lock(path)
            assert str(err.value).startswith(f"{path} is being written by pid {proc.pid};")
        assert (folder / ".lane_seg.lock").read_text() == f"{proc.pid}\n"  # left as it was
    finally:
        proc.stdin.close()
        proc.wait()
    assert os.listdir(tmp_path) == []  # its exit removed its lock files and empty folders
    (tmp_path / "runs").mkdir()
    with lock_folder(folder) as lock:  # free again
        assert (folder / ".lane_seg.lock").read_text() == f"{os.getpid()}\n"
        assert lock_folder(folder) is lock  # re-entrant in one process
        lock.release()
        assert (folder / ".lane_seg.lock").exists()
    assert os.listdir(tmp_path) == ["runs"]  # the last release: lock and folder it made gone


def test_a_killed_writer_leaves_no_stale_lock(tmp_path):
    import signal

    from lane_seg.outputs import lock_folder

    proc = _holder(tmp_path / "x", tmp_path / "f")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdin.close()
    assert (tmp_path / "x" / ".lane_seg.lock").read_text() == f"{proc.pid}\n"  # file, no lock
    with lock_folder(tmp_path / "x"):
        assert (tmp_path / "x" / ".lane_seg.lock").read_text() == f"{os.getpid()}\n"
    assert not (tmp_path / "x" / ".lane_seg.lock").exists()


def test_locks_taken_by_a_command_are_released_when_it_returns(tmp_path):
    from lane_seg.outputs import lock_file, lock_folder, releasing_locks

    kept = lock_folder(tmp_path / "kept")  # taken before: not the command's
    with pytest.raises(LaneSegError), releasing_locks():
        lock_folder(tmp_path / "a" / "b")
        lock_file(tmp_path / "c" / "m.onnx")
        raise LaneSegError("the command fails")
    assert sorted(os.listdir(tmp_path)) == ["kept"]  # no lock file, no empty folder left
    assert (tmp_path / "kept" / ".lane_seg.lock").exists()
    kept.release()
    assert os.listdir(tmp_path) == []


def test_a_rerun_removes_what_a_failed_or_killed_file_write_left(tmp_path):
    """Export writes `.m.onnx.tmp<pid>` and renames it: a run that failed half-way or was
    killed leaves it behind, and the next writer of m.onnx removes it."""
    from lane_seg.outputs import lock_file, temp_path

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    killed = tmp_path / f".m.onnx.tmp{dead.pid}"
    other = tmp_path / f".other.onnx.tmp{dead.pid}"
    for path in (killed, other):
        path.write_bytes(b"half")
    with lock_file(tmp_path / "m.onnx"):
        assert not killed.exists() and other.exists()  # only m.onnx's own
        temp_path(tmp_path / "m.onnx").write_bytes(b"half")  # this run fails half-way
    assert sorted(os.listdir(tmp_path)) == [other.name]
