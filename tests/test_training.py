"""Training: config validation, augmentation alignment, a smoke run that learns, exact resume,
and DDP with two CPU processes ending with identical weights."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from lane_data import draw_scene, make_line_dataset

from lane_seg.errors import LaneSegError
from lane_seg.models.checkpoint import load_checkpoint, load_model
from lane_seg.training.train.augment import AugmentConfig, augment
from lane_seg.training.train.config import config_from_dict, load_config
from lane_seg.training.train.data import SegmentationSet, WeightedDistributedSampler, gather_samples
from lane_seg.training.train.schedule import lr_factor
from lane_seg.training.train.trainer import train

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def lines(tmp_path_factory) -> Path:
    return make_line_dataset(tmp_path_factory.mktemp("lines") / "ds", n_train=16, n_val=4)


def tiny_config(data: Path, out: Path, **train) -> dict:
    return {
        "model": {"name": "unet", "base": 4, "depth": 2},
        "data": {"sources": [{"root": str(data)}], "height": 32, "width": 64},
        "loss": {"name": "bce_dice"},
        "optim": {"lr": 0.01, "warmup_steps": 2},
        "train": {"epochs": 2, "batch_size": 4, "seed": 3, "out": str(out), "threads": 1, **train},
    }


def test_shipped_configs_parse():
    paths = sorted((REPO / "training" / "configs").glob("*.yaml"))
    assert {p.stem for p in paths} >= {"unet", "enet", "deeplabv3plus", "segformer"}
    for p in paths:
        cfg = load_config(p)
        assert cfg.loss.name == "bce_dice"


def test_config_errors_are_clear(tmp_path):
    good = tiny_config(tmp_path, tmp_path / "out")
    with pytest.raises(LaneSegError, match="unknown keys"):
        config_from_dict({**good, "optim": {"learning_rate": 1}})
    with pytest.raises(LaneSegError, match="model.name"):
        config_from_dict({**good, "model": {"base": 4}})
    with pytest.raises(LaneSegError, match="sources"):
        config_from_dict({**good, "data": {"height": 32}})
    with pytest.raises(LaneSegError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_lr_schedule_warmup_then_cosine():
    f = [lr_factor(s, 100, 10, 0.1) for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[10:], f[11:], strict=False))
    assert f[99] == pytest.approx(0.1, abs=1e-3)


def test_augment_keeps_image_and_mask_aligned():
    rng = np.random.default_rng(0)
    image, mask = draw_scene(rng, 64, 128)
    cfg = AugmentConfig(
        hflip=1.0, rotate_deg=5, brightness=0, contrast=0, saturation=0, hue_deg=0, blur=0,
        noise=0, jpeg=0,
    )  # fmt: skip
    for seed in range(5):
        img2, mask2 = augment(image, mask, np.random.default_rng(seed), cfg)
        assert img2.shape == image.shape and mask2.shape == mask.shape
        assert set(np.unique(mask2)) <= {0, 255}
        # painted pixels are bright; where the mask says lane the image must be bright
        lane = mask2 > 0
        assert lane.sum() > 0
        assert img2[lane].mean() > img2[~lane].mean() + 60
    # same rng seed -> same result (reproducible augmentation)
    a = augment(image, mask, np.random.default_rng(7), AugmentConfig())
    b = augment(image, mask, np.random.default_rng(7), AugmentConfig())
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_weighted_sampler_follows_weights_and_splits_ranks():
    weights = [0.9 / 10] * 10 + [0.1 / 90] * 90  # source A: 10 samples, B: 90 samples
    s = WeightedDistributedSampler(weights, 4000, rank=0, world_size=1, seed=0)
    picked = np.array(list(s))
    assert 0.85 < (picked < 10).mean() < 0.95
    r0 = list(WeightedDistributedSampler(weights, 100, 0, 2, seed=1))
    r1 = list(WeightedDistributedSampler(weights, 100, 1, 2, seed=1))
    full = list(WeightedDistributedSampler(weights, 100, 0, 1, seed=1))
    assert r0 == full[0::2] and r1 == full[1::2]


def test_dataset_items_go_through_preprocess(lines):
    samples, weights = gather_samples(load_config_sources(lines), "train")
    assert len(samples) == 16 and sum(weights) == pytest.approx(1.0)
    ds = SegmentationSet(samples, load_cfg(lines).preprocess, None)
    x, y = ds[0]
    assert x.shape == (3, 32, 64) and x.dtype == torch.float32
    assert y.shape == (1, 32, 64) and set(torch.unique(y).tolist()) <= {0.0, 1.0}


def load_cfg(data: Path):
    return config_from_dict(tiny_config(data, data / "unused"))


def load_config_sources(data: Path):
    return load_cfg(data).data.sources


def _epoch_rows(out: Path) -> list[dict[str, str]]:
    with open(out / "epochs.csv", newline="") as f:
        return list(csv.DictReader(f))


def _step_losses(out: Path) -> list[float]:
    with open(out / "steps.csv", newline="") as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


def test_training_smoke_lowers_loss_and_writes_everything(lines, tmp_path):
    out = tmp_path / "run"
    cfg = config_from_dict(tiny_config(lines, out, epochs=4, ema=0.9))
    train(cfg, progress=False)
    rows = _epoch_rows(out)
    assert len(rows) == 4
    assert float(rows[-1]["train_loss"]) < 0.8 * float(rows[0]["train_loss"])
    for name in ("last.pt", "best.pt", "curves.png", "steps.csv", "config.yaml"):
        assert (out / name).is_file(), name
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["epoch"] == 4 and ckpt["eval_weights"] == "ema"
    model, info = load_model(out / "best.pt")
    assert info.arch == "unet" and info.model_config == {"base": 4, "depth": 2}
    assert (info.preprocess.height, info.preprocess.width) == (32, 64)
    assert 0.0 <= info.metrics["val_lane_iou"] <= 1.0
    best_iou = max(float(r["val_lane_iou"]) for r in rows)
    assert info.metrics["val_lane_iou"] == pytest.approx(best_iou, abs=1e-5)
    with pytest.raises(LaneSegError, match="--resume"):  # never silently overwrite a run
        train(cfg, progress=False)


def test_resume_reproduces_the_uninterrupted_run(lines, tmp_path):
    # dropout + EMA + augmentation: every source of randomness must be restored on resume
    straight = tmp_path / "straight"
    train(config_from_dict(tiny_config(lines, straight, epochs=3, ema=0.9)), progress=False)
    split = tmp_path / "split"
    cfg = config_from_dict(tiny_config(lines, split, epochs=3, ema=0.9))
    train(cfg, progress=False, stop_after=1)  # as if killed after the first epoch
    torch.manual_seed(12345)  # whatever the process did in between must not matter
    train(cfg, resume=True, progress=False)
    assert _step_losses(split) == _step_losses(straight)
    a = load_checkpoint(straight / "last.pt")
    b = load_checkpoint(split / "last.pt")
    for key in ("state_dict", "train_state_dict"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), f"{key}.{name}"
    assert [r["val_lane_iou"] for r in _epoch_rows(split)] == [
        r["val_lane_iou"] for r in _epoch_rows(straight)
    ]


@pytest.mark.slow
def test_resume_after_sigkill_mid_epoch_reproduces_the_uninterrupted_run(lines, tmp_path):
    """`lane-seg train` killed with SIGKILL in the middle of its second epoch (no handler runs,
    the logs may end in half a row), then `--resume`: the same losses and weights as a run that
    was never interrupted, and logs without the killed epoch's rows."""
    import os
    import signal
    import subprocess
    import sys
    import time

    steps = {"epochs": 2, "steps_per_epoch": 120}
    straight = tmp_path / "straight"
    train(config_from_dict(tiny_config(lines, straight, **steps)), progress=False)
    killed = tmp_path / "killed"
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(tiny_config(lines, killed, **steps)))
    cmd = [sys.executable, "-m", "lane_seg.cli", "train", "--config", str(cfg_path)]
    proc = subprocess.Popen([*cmd, "--no-progress"], stderr=subprocess.PIPE, text=True)
    end = time.monotonic() + 120
    while not ((killed / "epochs.csv").is_file() and len(_epoch_rows(killed)) == 1):
        assert proc.poll() is None and time.monotonic() < end, proc.stderr.read()
        time.sleep(0.02)
    time.sleep(0.5)  # well into epoch 2 (120 steps), far from its end
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert len(_epoch_rows(killed)) == 1 and load_checkpoint(killed / "last.pt")["epoch"] == 1
    with open(killed / "steps.csv", "a") as f:
        f.write("2,12")  # "2,121,..." cut short, as a kill in the middle of a write leaves it
    from lane_seg.cli.main import main

    assert main(["train", "--config", str(cfg_path), "--resume", "--no-progress"]) == 0
    assert _step_losses(killed) == _step_losses(straight)
    assert len(_step_losses(killed)) == 240 and len(_epoch_rows(killed)) == 2
    a, b = load_checkpoint(straight / "last.pt"), load_checkpoint(killed / "last.pt")
    for name, tensor in a["state_dict"].items():
        assert torch.equal(tensor, b["state_dict"][name]), name


def test_resume_without_checkpoint_is_an_error(lines, tmp_path):
    cfg = config_from_dict(tiny_config(lines, tmp_path / "none"))
    with pytest.raises(LaneSegError, match="not found"):
        train(cfg, resume=True, progress=False)


def _ddp_worker(rank: int, world: int, init_file: str, cfg_dict: dict, result_dir: str) -> None:
    import torch.distributed as dist

    from lane_seg.training.train.trainer import DistContext

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        run = train(config_from_dict(cfg_dict), ctx=DistContext(rank, world), progress=False)
        params = {k: v.detach().clone() for k, v in run.model.named_parameters()}
        torch.save(params, Path(result_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_ddp_two_cpu_processes_hold_identical_weights(lines, tmp_path):
    import torch.multiprocessing as mp

    out = tmp_path / "ddp"
    cfg = tiny_config(lines, out, epochs=1)
    mp.spawn(
        _ddp_worker,
        args=(2, str(tmp_path / "init"), cfg, str(tmp_path)),
        nprocs=2,
        join=True,
    )
    w0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    w1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert w0.keys() == w1.keys()
    for name in w0:
        assert torch.equal(w0[name], w1[name]), name
    # 16 samples / 2 ranks / batch 4 = 2 steps per epoch, and only rank 0 wrote files
    assert len(_step_losses(out)) == 2
    saved = load_checkpoint(out / "last.pt")["state_dict"]
    for name in w0:  # last.pt holds rank 0's final weights, without a "module." prefix
        assert torch.equal(saved[name], w0[name]), name


@pytest.mark.slow
def test_torchrun_entry_point(lines, tmp_path):
    import os
    import subprocess
    import sys

    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(tiny_config(lines, tmp_path / "tr", epochs=1)))
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_port", str(29500 + os.getpid() % 1000),
        "-m", "lane_seg.cli", "train", "--config", str(cfg_path), "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "tr" / "last.pt").is_file()


def test_train_cli_and_resume_flag(lines, tmp_path):
    from lane_seg.cli.main import main

    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(tiny_config(lines, tmp_path / "cli", epochs=2)))
    args = ["train", "--config", str(cfg_path), "--no-progress"]
    assert main([*args, "--stop-after", "1"]) == 0
    assert len(_epoch_rows(tmp_path / "cli")) == 1
    assert main(args) == 2  # refuses to overwrite the paused run
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / "cli" / f".last.pt.tmp{dead.pid}"  # a save killed half-way
    stale.write_bytes(b"\0" * 4096)
    assert main([*args, "--resume"]) == 0
    assert [r["epoch"] for r in _epoch_rows(tmp_path / "cli")] == ["1", "2"]
    assert not stale.exists()
    assert main(["train", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert main([*args, "--out", str(tmp_path / "minus"), "--epochs", "-1"]) == 2
    assert not (tmp_path / "minus").exists()


def test_init_from_loads_weights_and_checks_architecture(lines, tmp_path):
    first = tmp_path / "first"
    train(config_from_dict(tiny_config(lines, first, epochs=1)), progress=False)
    cfg = config_from_dict(tiny_config(lines, tmp_path / "ft", epochs=1))
    cfg.train.init_from = str(first / "last.pt")
    from lane_seg.training.train.trainer import DistContext, Run

    run = Run(cfg, DistContext(), progress=False)
    start = load_checkpoint(first / "last.pt")["state_dict"]
    for name, tensor in run.model.state_dict().items():
        assert torch.equal(tensor, start[name]), name
    cfg.model.options = {"base": 8, "depth": 2}
    with pytest.raises(LaneSegError, match="init_from"):
        Run(cfg, DistContext(), progress=False)


def test_two_sources_with_weights_train_end_to_end(lines, tmp_path):
    other = make_line_dataset(tmp_path / "other", n_train=8, n_val=2, seed=5)
    raw = tiny_config(lines, tmp_path / "mix", epochs=1, steps_per_epoch=3)
    raw["data"]["sources"] = [{"root": str(lines), "weight": 3.0}, {"root": str(other)}]
    run = train(config_from_dict(raw), progress=False)
    assert run.step == 3 and len(run.val_set) == 4 + 2
    assert "weight 3" in load_checkpoint(tmp_path / "mix" / "last.pt")["info"]["train_data"]
