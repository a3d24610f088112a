"""Per-camera distillation: the model's own probabilities on the camera's frames, averaged with
those of the mirrored frames (`Teacher` with `flip`), become soft targets for a short fine-tune
of the same model, mixed with the simulator's labelled frames. It is the trainer's `distill`
section (training/train/distill.py: BCE + Dice on the simulator's labels, BCE against the
teacher on the simulator's frames and the camera's), so there is one training loop.

Where self-training (`selftrain`) keeps only the frames where the model is sure of both ego
lines and draws them as hard labels, every frame teaches here, each pixel by the teacher's
probability. The student sees the frames augmented (training/train/augment.py) and is asked for
the teacher's answer on the clean frame and its mirror, and its BatchNorm trains on batches
half simulator, half camera. No label and no threshold is needed.

Under OUT: `teacher_fp32.onnx` (the starting model, exported: the teacher), `distill_frames/`
(the camera's frames at the model's scale, lossless PNG) and `distill/` (the training run,
resumable like any).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from torch import nn

from lane_seg.artifact import ModelInfo
from lane_seg.data.dataset import atomic_write, encode_image
from lane_seg.models.checkpoint import load_checkpoint, model_from_checkpoint
from lane_seg.training.quant.exporter import export_model
from lane_seg.training.train.config import DistillSection
from lane_seg.training.train.finetune import FinetuneSettings, finetune_config
from lane_seg.training.train.trainer import run_training

TEACHER, FRAMES, RUN = "teacher_fp32.onnx", "distill_frames", "distill"
BATCH = 4  # simulator frames per step, and as many camera frames beside them
WEIGHT = 1.0  # of BCE against the teacher, beside the labels' BCE + Dice


@dataclass
class Distillation:
    frames: int  # camera frames the teacher labelled
    steps: int
    sim: str

    def describe(self) -> str:
        return (
            f"distilled {self.steps} steps from its mirror-averaged probabilities on "
            f"{self.frames} camera frames, mixed with {self.sim}"
        )


def write_frames(folder: Path, frames: list[np.ndarray]) -> str:
    """The frames as PNG files (a resumed run keeps those there: the run's state has checked
    that the frames are the same); the glob that reads them back in order."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, rgb in enumerate(frames):
        path = folder / f"{i:06d}.png"
        if not path.is_file():
            atomic_write(path, encode_image(rgb), durable=False)
    return str(folder / "*.png")


def distill(
    start: Path,
    frames: list[np.ndarray],
    out: Path,
    sim: str,
    steps: int,
    threads: int = 0,
    progress: bool = False,
) -> tuple[nn.Module, ModelInfo, Distillation]:
    """Fine-tune the checkpoint `start` for `steps` on `sim`'s labels and on its own
    mirror-averaged probabilities on `frames` (RGB at the model's scale, whole frames); the
    trained model, its info and what was done."""
    teacher = out / TEACHER
    if not teacher.is_file():
        net, info = model_from_checkpoint(load_checkpoint(start))
        export_model(net, teacher, info=info, check=False)
    pattern = write_frames(out / FRAMES, frames)
    settings = FinetuneSettings(steps=steps, batch_size=BATCH, threads=threads)
    section = DistillSection(
        teacher=str(teacher), weight=WEIGHT, frames=(pattern,), batch_size=BATCH, flip=True,
        threads=threads,
    )  # fmt: skip
    cfg = replace(finetune_config(start, sim, out / RUN, settings), distill=section)
    last = out / RUN / "last.pt"
    run_training(cfg, resume=last.is_file(), progress=progress)
    model, info = model_from_checkpoint(load_checkpoint(last))
    ran = cfg.train.epochs * cfg.train.steps_per_epoch  # what the schedule rounds `steps` to
    return model, info, Distillation(len(frames), ran, sim)
