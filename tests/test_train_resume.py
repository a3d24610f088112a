"""A training run's checkpoints survive what stops it between two writes: a kill between
last.pt and best.pt (a resume makes the pair consistent again), and a full disk (one line
naming the file, exit 2, the previous checkpoints as they were, no temporary file left)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import torch
import yaml
from lane_data import make_line_dataset

from lane_seg.cli.main import main
from lane_seg.models.checkpoint import load_checkpoint
from lane_seg.training.train import trainer
from lane_seg.training.train.config import config_from_dict
from lane_seg.training.train.trainer import Run, train

# Validation scores per epoch, scripted so that which epoch is best is known: epoch 2 beats
# epoch 1 (the figures seen when best.pt went stale), epoch 3 beats neither.
SCORES = {1: 0.0188, 2: 0.0314, 3: 0.0250}


class Killed(BaseException):
    """The process dying at this point (nothing after it runs, no handler catches it)."""


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_line_dataset(tmp_path_factory.mktemp("d") / "ds", n_train=8, n_val=4)


@pytest.fixture
def scripted(monkeypatch):
    """Run.validate gives SCORES[epoch being validated]; the training itself is real."""
    monkeypatch.setattr(Run, "validate", lambda self: {"val_lane_iou": SCORES[self.epoch + 1]})


def _config(data: Path, out: Path, epochs: int) -> dict:
    return {
        "model": {"name": "unet", "base": 4, "depth": 2},
        "data": {"sources": [{"root": str(data)}], "height": 32, "width": 64},
        "train": {"epochs": epochs, "batch_size": 4, "steps_per_epoch": 1, "out": str(out)},
    }


def _kill_between_last_and_best(monkeypatch, epoch: int) -> None:
    real = trainer.save_checkpoint

    def save(path, model, info, **extra):
        if Path(path).name == "best.pt" and extra["epoch"] == epoch:
            raise Killed
        real(path, model, info, **extra)

    monkeypatch.setattr(trainer, "save_checkpoint", save)


def _same_weights(a: Path, b: Path) -> bool:
    sa, sb = load_checkpoint(a)["state_dict"], load_checkpoint(b)["state_dict"]
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("killed_at", [1, 2])
def test_a_kill_between_last_and_best_is_repaired_on_resume(
    data, tmp_path, monkeypatch, scripted, killed_at, capsys
):
    """Killed at epoch 1, best.pt never existed; killed at epoch 2, it held epoch 1 while
    last.pt recorded epoch 2's better score. The resume restores best.pt from last.pt."""
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _kill_between_last_and_best(m, killed_at)
        with pytest.raises(Killed):
            train(config_from_dict(_config(data, out, killed_at)), progress=False)
    assert load_checkpoint(out / "last.pt")["best_iou"] == SCORES[killed_at]
    assert (out / "best.pt").is_file() == (killed_at == 2)  # missing, or stale (epoch 1)
    capsys.readouterr()

    train(config_from_dict(_config(data, out, killed_at)), resume=True, progress=False)
    assert f"best.pt: restored from last.pt (epoch {killed_at}" in capsys.readouterr().err
    best = load_checkpoint(out / "best.pt")
    assert best["epoch"] == killed_at and best["best_iou"] == SCORES[killed_at]
    assert _same_weights(out / "best.pt", out / "last.pt")

    run = train(config_from_dict(_config(data, out, 3)), resume=True, progress=False)
    assert "restored" not in capsys.readouterr().err  # the pair is consistent now
    best = load_checkpoint(out / "best.pt")
    assert best["epoch"] == 2 and best["best_iou"] == SCORES[2] == run.best_iou
    assert load_checkpoint(out / "last.pt")["epoch"] == 3  # epoch 3 scored lower: best stays


def test_a_consistent_pair_is_left_alone(data, tmp_path, scripted, capsys):
    out = tmp_path / "run"
    train(config_from_dict(_config(data, out, 2)), progress=False)
    before = hashlib.sha256((out / "best.pt").read_bytes()).hexdigest()
    assert _same_weights(out / "best.pt", out / "last.pt")  # epoch 2 was the best
    train(config_from_dict(_config(data, out, 3)), resume=True, progress=False)
    assert "restored" not in capsys.readouterr().err
    assert hashlib.sha256((out / "best.pt").read_bytes()).hexdigest() == before


def test_a_full_disk_is_one_line_naming_the_file_and_loses_no_checkpoint(
    data, tmp_path, scripted, capfd
):
    """The checkpoint's temporary file is /dev/full (the kernel's own ENOSPC on write): the
    run stops with one line naming last.pt, exit 2; last.pt and best.pt are epoch 1's still,
    byte for byte, no temporary file is left, and a resume on a disk with room goes on."""
    out = tmp_path / "run"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(_config(data, out, 1)))
    args = ["train", "--config", str(cfg), "--no-progress"]
    assert main(args) == 0
    kept = {n: (out / n).read_bytes() for n in ("last.pt", "best.pt")}
    full = out / f".last.pt.tmp{os.getpid()}"
    full.symlink_to("/dev/full")
    capfd.readouterr()
    assert main([*args, "--resume", "--epochs", "2"]) == 2
    err = capfd.readouterr().err
    assert "Traceback" not in err and err.count("error") == 1, err
    assert err.splitlines()[-1] == f"lane-seg train: error: {out}/last.pt: no space left on device"
    assert {n: (out / n).read_bytes() for n in kept} == kept
    assert not list(out.glob(".*.tmp*"))
    assert main([*args, "--resume", "--epochs", "2"]) == 0
    assert load_checkpoint(out / "last.pt")["epoch"] == 2
