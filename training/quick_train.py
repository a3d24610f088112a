"""A short fp32 training that gives the quantization report a converged-enough checkpoint when
the full trainer's (`lane-seg train`) checkpoints are not at hand.

    python -m lane_seg.training.quick_train --data data/sim --out runs/quick_unet \
        --arch unet --config '{"base": 8}' --size 128x256 --epochs 3

Same contracts as the full trainer: frames through lane_seg.preprocess (resize + normalize),
BCE on logits + soft Dice on the sigmoid, checkpoint in the lane_seg.ckpt/1 format with its
ModelInfo. No augmentation beyond a horizontal flip, no EMA, no validation-based selection:
it is a stop-gap, and the report says which checkpoint it measured.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import Dataset

from lane_seg.artifact import ModelInfo
from lane_seg.dataset import Sample, load_dataset
from lane_seg.preprocess import PreprocessConfig, normalize, resize_image, resize_mask
from lane_seg.training.qat import FinetuneConfig, finetune


class FrameSet(Dataset):
    """Preprocessed (input, target) pairs held in memory; hflip with probability 0.5."""

    def __init__(self, samples: list[Sample], cfg: PreprocessConfig, flip: bool = True) -> None:
        self.items = []
        for s in samples:
            rgb, mask = s.load()
            self.items.append((resize_image(rgb, cfg), resize_mask(mask, cfg)))
        self.cfg, self.flip = cfg, flip
        self.rng = np.random.default_rng(0)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        img, mask = self.items[i]
        if self.flip and self.rng.random() < 0.5:
            img, mask = img[:, ::-1], mask[:, ::-1]
        x = torch.from_numpy(normalize(np.ascontiguousarray(img), self.cfg))
        y = torch.from_numpy((mask > 127).astype(np.float32))[None]
        return x, y


def bce_dice(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE on logits + soft Dice on the sigmoid (batch-wide), weights 1 and 1."""
    p = torch.sigmoid(logits).flatten()
    t = target.flatten()
    dice = 1 - (2 * (p * t).sum() + 1) / (p.sum() + t.sum() + 1)
    return F.binary_cross_entropy_with_logits(logits, target) + dice


def main(argv: list[str] | None = None) -> int:
    from lane_seg.models import build_model
    from lane_seg.models.checkpoint import save_checkpoint

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--arch", default="unet")
    ap.add_argument("--config", default="{}", help="model options as JSON")
    ap.add_argument("--size", default="128x256", help="input HxW")
    ap.add_argument("--epochs", type=float, default=3.0)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--max-frames", type=int, default=0, help="train frames (0 = all)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    h, w = (int(v) for v in args.size.split("x"))
    pre = PreprocessConfig(height=h, width=w)
    model_cfg = json.loads(args.config)
    model = build_model(args.arch, **model_cfg)
    train = sorted(load_dataset(args.data).split("train"), key=lambda s: s.id)
    if args.max_frames:
        train = train[: args.max_frames]
    data = FrameSet(train, pre)
    ft = FinetuneConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch, weight_decay=1e-4)
    t0 = time.time()
    log = finetune(model, data, bce_dice, ft, progress=True, desc="fp32 training")
    info = ModelInfo(args.arch, model_cfg, pre, train_data=f"{args.data}:train:{len(train)} frames")
    args.out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(
        args.out / "best.pt", model.eval(), info, trainer="lane_seg.training.quick_train"
    )
    print(
        f"{args.out / 'best.pt'}: {log.steps} steps in {time.time() - t0:.0f} s, "
        f"loss {log.first_loss:.3f} -> {log.last_loss:.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
