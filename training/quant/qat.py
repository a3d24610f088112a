"""Fake-quant fine-tuning shared by int8 QAT (torch.ao) and the low-bit study (lowbit.py).

It starts from a converged fp32 model (QAT from scratch, or for one epoch from a poor start,
tends to collapse), uses the training losses and data pipeline,
and freezes BatchNorm statistics and then the quantization ranges after configurable points
(in epochs, fractions allowed), so the last steps fine-tune weights against fixed ranges.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


@dataclass
class FinetuneConfig:
    epochs: float = 2.0
    lr: float = 1e-4
    batch_size: int = 4
    freeze_bn_after: float = 1.0  # epochs
    freeze_observers_after: float = 1.5  # epochs
    weight_decay: float = 0.0
    seed: int = 0


@dataclass
class FinetuneLog:
    steps: int
    first_loss: float
    last_loss: float
    bn_frozen_at: int | None
    observers_frozen_at: int | None


def finetune(
    model: nn.Module,
    data: Dataset,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    cfg: FinetuneConfig,
    freeze_bn: Callable[[nn.Module], None] | None = None,
    freeze_observers: Callable[[nn.Module], None] | None = None,
    progress: bool = False,
    desc: str = "fake-quant fine-tune",
) -> FinetuneLog:
    """Train `model` (already carrying fake-quant) in place for cfg.epochs over `data`."""
    gen = torch.Generator().manual_seed(cfg.seed)
    loader = DataLoader(data, batch_size=cfg.batch_size, shuffle=True, generator=gen)
    per_epoch = max(1, len(loader))
    total = max(1, round(cfg.epochs * per_epoch))
    bn_step = round(cfg.freeze_bn_after * per_epoch)
    obs_step = round(cfg.freeze_observers_after * per_epoch)
    opt = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, total)
    model.train()
    step, losses = 0, []
    bn_at = obs_at = None
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc=desc, leave=False)
    while step < total:
        epoch = step // per_epoch
        if hasattr(data, "set_epoch"):
            data.set_epoch(epoch)
        for x, y in loader:
            if freeze_bn is not None and bn_at is None and step >= bn_step:
                freeze_bn(model)
                bn_at = step
            if freeze_observers is not None and obs_at is None and step >= obs_step:
                freeze_observers(model)
                obs_at = step
            loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            step += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.4f}")
            if step >= total:
                break
    if bar is not None:
        bar.close()
    model.eval()
    return FinetuneLog(step, losses[0], losses[-1], bn_at, obs_at)
