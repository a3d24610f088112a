"""Losses on logits: BCE with logits, soft Dice on the sigmoid, and their weighted sum.

BCE always takes logits (never a sigmoid output: BCE on probabilities is a classic slip); Dice
takes the sigmoid of the same logits. Soft Dice is computed over the whole batch (all pixels
of all images), which stays well defined on frames without lane pixels.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from lane_seg.errors import LaneSegError
from lane_seg.training.train.config import LOSSES


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 - (2 sum(p t) + s) / (sum(p) + sum(t) + s), p = sigmoid(logits), over the batch."""
    p = torch.sigmoid(logits).flatten()
    t = target.flatten().to(p.dtype)
    inter = (p * t).sum()
    return 1.0 - (2.0 * inter + smooth) / (p.sum() + t.sum() + smooth)


def distill_loss(logits: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """BCE of the student's logits against a teacher's probabilities (soft labels in [0, 1])."""
    return F.binary_cross_entropy_with_logits(logits, soft.to(logits.dtype))


class SegLoss(nn.Module):
    """`bce_weight * BCE + dice_weight * Dice` (either weight may be 0)."""

    def __init__(
        self, bce_weight: float = 1.0, dice_weight: float = 1.0, smooth: float = 1.0
    ) -> None:
        super().__init__()
        if bce_weight < 0 or dice_weight < 0 or bce_weight + dice_weight == 0:
            raise LaneSegError("loss weights must be >= 0 and not both 0")
        self.bce_weight, self.dice_weight, self.smooth = bce_weight, dice_weight, smooth

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = logits.new_zeros(())
        if self.bce_weight:
            bce = F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype))
            loss = loss + self.bce_weight * bce
        if self.dice_weight:
            loss = loss + self.dice_weight * soft_dice_loss(logits, target, self.smooth)
        return loss


def build_loss(name: str = "bce_dice", **opts: Any) -> SegLoss:
    """ "bce", "dice" or "bce_dice" (weights `bce_weight`, `dice_weight`, default 1 and 1)."""
    if name == "bce":
        return SegLoss(opts.get("bce_weight", 1.0), 0.0)
    if name == "dice":
        return SegLoss(0.0, opts.get("dice_weight", 1.0), opts.get("smooth", 1.0))
    if name == "bce_dice":
        return SegLoss(
            opts.get("bce_weight", 1.0), opts.get("dice_weight", 1.0), opts.get("smooth", 1.0)
        )
    raise LaneSegError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
