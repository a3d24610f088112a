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
