"""Per-camera self-training: the model's own confident lines on the camera's frames become labels
(`lane_seg.training.pseudo_labels`: kept only where both ego lines are sure, drawn in the lines
convention), then a short fine-tune on them mixed with simulator frames
(`lane_seg.training.train.finetune`), so the camera's look is learnt without forgetting the
roads the simulator taught. Frames the model is unsure of are left out rather than taught
wrongly; with none sure enough there is nothing to train on and the rung is skipped.

Under OUT: `pseudo/` (the dataset, resumable) and `selftrain/` (the training run, resumable).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from lane_seg.artifact import ModelInfo
from lane_seg.data.dataset import DatasetWriter, sha256_file
from lane_seg.models.checkpoint import load_checkpoint, model_from_checkpoint
from lane_seg.runtime.segmenter import Segmenter
from lane_seg.training.pseudo_labels import BACKEND, PseudoConfig, write_pseudo_labels
from lane_seg.training.train.finetune import FinetuneSettings, finetune_config
from lane_seg.training.train.trainer import run_training

PSEUDO, RUN = "pseudo", "selftrain"


@dataclass
class SelfTraining:
    pseudo_frames: int  # frames the model was sure of, now labels
    frames: int  # frames looked at
    steps: int
    sim: str

    def describe(self) -> str:
        mixed = f" mixed with {self.sim}" if self.sim else ""
        return (
            f"self-trained {self.steps} steps on {self.pseudo_frames} pseudo-labelled frames{mixed}"
        )


def self_train(
    start: Path,
    frames: list[tuple[str, str, object]],
    frames_sha256: str,
    out: Path,
    sim: str,
    steps: int,
    threads: int = 0,
    progress: bool = False,
) -> tuple[nn.Module, ModelInfo, SelfTraining] | None:
    """Pseudo-label `frames` ((key, clip, RGB)) with the checkpoint `start`, then fine-tune it
    on them (and `sim`); the trained model, its info and what was done, or None when no frame
    was sure enough to become a label."""
    seg = Segmenter.load(str(start), "torch", threads)
    params = {"backend": BACKEND, "model_sha256": sha256_file(start), "frames": frames_sha256}
    with DatasetWriter(out / PSEUDO, created_by="lane-seg adapt", params=params) as w:
        report = write_pseudo_labels(seg, frames, w, PseudoConfig())
    kept = report.kept + report.already
    if kept == 0:
        return None
    settings = FinetuneSettings(sim=sim, steps=steps, threads=threads)
    cfg = finetune_config(start, out / PSEUDO, out / RUN, settings)
    last = out / RUN / "last.pt"
    run_training(cfg, resume=last.is_file(), progress=progress)
    model, info = model_from_checkpoint(load_checkpoint(last))
    ran = cfg.train.epochs * cfg.train.steps_per_epoch  # what the schedule rounds `steps` to
    return model, info, SelfTraining(kept, report.frames, ran, sim)
