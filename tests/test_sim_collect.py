import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lane_seg.cli.main import main
from lane_seg.data.dataset import load_dataset, read_mask, verify_dataset
from lane_seg.sim.world.collect import collect_planar, render_frame
from lane_seg.sim.world.scene import SimConfig


def _files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "images").iterdir())} | {
        "m_" + p.name: p.read_bytes() for p in sorted((root / "masks").iterdir())
    }


def test_same_seed_gives_identical_frames():
    a_img, a_mask, a_meta = render_frame(5, 3, SimConfig())
    b_img, b_mask, b_meta = render_frame(5, 3, SimConfig())
    assert np.array_equal(a_img, b_img) and np.array_equal(a_mask, b_mask)
    assert a_meta == b_meta
    c_img, _, _ = render_frame(5, 4, SimConfig())
    assert not np.array_equal(a_img, c_img)


def test_dataset_contract_and_masks(tmp_path):
    assert collect_planar(tmp_path, 12, seed=1, val_fraction=0.25) == 12
    ds = load_dataset(tmp_path)
    info = json.loads((tmp_path / "dataset.json").read_text())
    assert info["format"] == "lane_seg/1" and info["classes"] == ["background", "lane_marking"]
    assert sum(info["counts"].values()) == 12 and info["counts"]["val"] > 0
    for s in ds:
        assert {"fx", "fy", "cx", "cy", "height_m", "pitch_deg"} <= set(s.meta["camera"])
        image, mask = s.load()
        assert image.shape == (256, 512, 3) and mask.shape == (256, 512)
        assert set(np.unique(read_mask(s.mask_path))) <= {0, 255}
    assert sum((s.load()[1] > 0).any() for s in ds) >= 10  # lanes are visible in most frames


def test_resume_is_byte_identical_and_never_duplicates(tmp_path):
    ref, part = tmp_path / "ref", tmp_path / "part"
    collect_planar(ref, 8, seed=2)
    collect_planar(part, 5, seed=2)
    # A run killed while appending leaves a partial meta line and a stray temporary file.
    with open(part / "meta.jsonl", "ab") as f:
        f.write(b'{"id": "planar_s2_000005", "spl')
    (part / "images" / ".planar_s2_000005.png.tmp123").write_bytes(b"half")
    assert collect_planar(part, 8, seed=2) == 3
    assert collect_planar(part, 8, seed=2) == 0
    ids = [s.id for s in load_dataset(part)]
    assert len(ids) == len(set(ids)) == 8
    assert _files(ref) == {k: v for k, v in _files(part).items() if ".tmp" not in k}
    assert verify_dataset(part).ok


def test_killed_collect_resumes(tmp_path):
    out = tmp_path / "ds"
    cmd = [
        sys.executable,
        "-m",
        "lane_seg.cli",
        "collect",
        "--out",
        str(out),
        "--frames",
        "60",
        "--workers",
        "1",
        "--seed",
        "4",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        meta = out / "meta.jsonl"
        if meta.exists() and meta.read_bytes().count(b"\n") >= 4:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(load_dataset(out))
    assert 4 <= done < 60
    assert verify_dataset(out).ok  # what was written is whole
    assert (
        main(["collect", "--out", str(out), "--frames", "60", "--workers", "1", "--seed", "4"]) == 0
    )
    ds = load_dataset(out)
    assert len(ds) == 60 and len({s.id for s in ds}) == 60
    assert verify_dataset(out).ok


def test_workers_of_a_killed_collect_end_silently(tmp_path):
    """SIGKILL the parent of a two-worker collect: its workers end with it, no traceback
    (they printed BrokenPipeError ones when handing back their next frame)."""
    out = tmp_path / "ds"
    argv = ["collect", "--out", str(out), "--frames", "200", "--workers", "2"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "lane_seg.cli", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    while not ((out / "meta.jsonl").exists() and (out / "meta.jsonl").read_bytes().count(b"\n")):
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    err = proc.communicate(timeout=30)[1]  # EOF: every worker has closed its stderr, i.e. ended
    lines = [ln for ln in err.replace("\r", "\n").splitlines() if ln.strip()]
    assert not [ln for ln in lines if not ln.startswith("collect:")], err  # progress bar only
    assert verify_dataset(out).ok


def test_verify_finds_corrupt_and_missing_files(tmp_path, capsys):
    collect_planar(tmp_path, 4, seed=3)
    ds = load_dataset(tmp_path)
    img = ds.samples[0].image_path
    data = bytearray(img.read_bytes())
    data[len(data) // 2] ^= 0xFF
    img.write_bytes(bytes(data))
    ds.samples[1].mask_path.unlink()
    assert main(["verify", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert ds.samples[0].id in err and "sha256" in err
    assert ds.samples[1].id in err and "missing" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--frames", "0"], "--frames must be positive"),
        (["--frames", "5", "--val-fraction", "1.5"], "must lie in [0, 1)"),
        (["--frames", "5", "--val-fraction", "0.6", "--test-fraction", "0.5"], "leave frames"),
        (["--frames", "5", "--workers", "0"], "--workers"),
    ],
)
def test_collect_rejects_bad_arguments(tmp_path, capsys, argv, message):
    assert main(["collect", "--out", str(tmp_path / "x"), *argv]) == 2
    assert message in capsys.readouterr().err


def test_collect_rejects_bad_config_and_changed_settings(tmp_path, capsys):
    cfg = tmp_path / "sim.yaml"
    cfg.write_text("lanes: [1, 3]\nnot_a_setting: 1\n")
    assert (
        main(["collect", "--out", str(tmp_path / "a"), "--frames", "2", "--config", str(cfg)]) == 2
    )
    assert "not_a_setting" in capsys.readouterr().err
    cfg.write_text("lane_width_m: [4.0, 3.0]\n")
    assert (
        main(["collect", "--out", str(tmp_path / "a"), "--frames", "2", "--config", str(cfg)]) == 2
    )
    assert "lane_width_m must be a range" in capsys.readouterr().err
    assert (
        main(
            [
                "collect",
                "--out",
                str(tmp_path / "b"),
                "--frames",
                "2",
                "--seed",
                "1",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    assert main(["collect", "--out", str(tmp_path / "b"), "--frames", "2", "--seed", "2"]) == 2
    assert "different settings (seed)" in capsys.readouterr().err


def test_unknown_backend_is_an_argument_error(tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["collect", "--backend", "unreal", "--out", str(tmp_path), "--frames", "1"])
    assert exc.value.code == 2


def test_config_override_changes_scenes():
    cfg = SimConfig.from_dict({"lanes": [4, 4], "night_probability": 1.0})
    _, _, meta = render_frame(0, 0, cfg)
    assert meta["scene"]["lanes"] == 4 and meta["scene"]["time"] == "night"


def test_shipped_config_file_lists_the_defaults():
    path = Path(__file__).resolve().parents[1] / "config" / "sim.yaml"
    assert SimConfig.from_yaml(path) == SimConfig()
