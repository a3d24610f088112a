"""Fine-tuning on a few labelled frames of one camera (`lane-seg finetune`), thin over the trainer.

The run is an ordinary training run (`trainer.run_training`): its config is built from the
starting checkpoint (architecture, options, preprocessing and label convention all copied, so
`train.init_from` accepts it) and from the user's choices, and written as OUT/config.yaml like
any run's, so `lane-seg train --config OUT/config.yaml` repeats it. The labelled frames (a
dataset `lane-seg import` wrote, e.g. from labelme or CVAT) are mixed with simulator frames by
`label_share` of the draws, so a few frames teach the camera without the model forgetting the
roads it learnt; `frames` keeps a seeded subset of the labelled train frames (nested: 5 of them
are among the 10), for learning curves. The last checkpoint is then exported by the one
exporter, its int8 file calibrated on the labelled dataset's train split: the camera's frames.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lane_seg.artifact import ModelInfo
from lane_seg.errors import LaneSegError
from lane_seg.models.checkpoint import load_checkpoint
from lane_seg.training.quant.calibration import CALIB_SEED, CALIB_SIZE, select_calibration
from lane_seg.training.quant.exporter import Exported, export_model
from lane_seg.training.train.config import TrainConfig, config_from_dict
from lane_seg.training.train.trainer import run_training

STEPS_PER_EPOCH = 50  # one validation and checkpoint every 50 steps
FP32, INT8 = "finetuned_fp32.onnx", "finetuned_int8.onnx"


@dataclass(frozen=True)
class FinetuneSettings:
    frames: int = 0  # labelled train frames to use, a seeded subset; 0 = all
    sim: str = ""  # simulator dataset mixed in; "" = the labelled frames only
    label_share: float = 0.5  # share of the train draws from the labelled frames (with sim)
    steps: int = 300
    batch_size: int = 8
    lr: float = 5e-4  # a quarter of a fresh run's: the weights are already good
    seed: int = 0
    threads: int = 0
    calib_size: int = CALIB_SIZE

    def check(self) -> None:
        if self.frames < 0 or self.steps < 1 or self.batch_size < 1 or self.threads < 0:
            raise LaneSegError(
                "--frames must be >= 0, --steps and --batch-size >= 1, --threads >= 0"
            )
        if not 0.0 < self.label_share < 1.0 and self.sim:
            raise LaneSegError(f"--label-share must be in (0, 1), got {self.label_share}")
        if not 0.0 < self.lr < 1.0:
            raise LaneSegError(f"--lr must be in (0, 1), got {self.lr}")


def schedule(steps: int) -> tuple[int, int]:
    """(epochs, steps per epoch) for `steps` in even epochs of at most STEPS_PER_EPOCH: 60 steps
    are 2 x 30, not 2 x 50; the product exceeds `steps` by less than the number of epochs."""
    epochs = math.ceil(steps / STEPS_PER_EPOCH)
    return epochs, math.ceil(steps / epochs)


def finetune_config(
    model: str | Path, labels: str | Path, out: str | Path, s: FinetuneSettings
) -> TrainConfig:
    """The training config of the run: the checkpoint's model, the labelled frames (and the
    simulator's), a short schedule starting from the checkpoint's weights."""
    info = ModelInfo.from_metadata(load_checkpoint(model)["info"], source=str(model))
    pre = info.preprocess
    sources: list[dict[str, Any]] = [
        {"root": str(labels), "weight": s.label_share if s.sim else 1.0, "limit": s.frames}
    ]
    if s.sim:
        sources.append({"root": str(s.sim), "weight": 1.0 - s.label_share})
    epochs, per_epoch = schedule(s.steps)
    raw = {
        "model": {"name": info.arch, **info.model_config},
        "data": {
            "sources": sources,
            "height": pre.height,
            "width": pre.width,
            "resize": pre.resize,
            "crop_top": pre.crop_top,
            "labels": info.labels,
            "val_limit": 64,
        },
        "optim": {"lr": s.lr, "warmup_steps": min(20, s.steps // 5)},
        "train": {
            "epochs": epochs,
            "steps_per_epoch": per_epoch,
            "batch_size": s.batch_size,
            "seed": s.seed,
            "out": str(out),
            "threads": s.threads,
            "init_from": str(model),
        },
    }
    return config_from_dict(raw, "finetune")


@dataclass
class FinetuneResult:
    run: Path  # the training run's folder (checkpoints, logs, config.yaml)
    exported: Exported
    steps: int
    seconds: float


def finetune(
    model: str | Path,
    labels: str | Path,
    out: str | Path,
    s: FinetuneSettings = FinetuneSettings(),  # noqa: B008 (frozen)
    progress: bool = True,
) -> FinetuneResult:
    """Train as configured by `finetune_config` (resuming OUT/last.pt when it is there), then
    export the last checkpoint to OUT/finetuned_fp32.onnx and OUT/finetuned_int8.onnx."""
    s.check()
    t0 = time.perf_counter()
    out = Path(out)
    cfg = finetune_config(model, labels, out, s)
    calib = select_calibration(labels, s.calib_size, CALIB_SEED)  # refused before training
    run = run_training(cfg, resume=(out / "last.pt").is_file(), progress=progress)
    exported = export_model(out / "last.pt", out / FP32, out / INT8, calib)
    return FinetuneResult(out, exported, run.step, time.perf_counter() - t0)
