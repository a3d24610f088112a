"""Learning-rate schedule, weight EMA and seeding: small pieces the training loop composes."""

from __future__ import annotations

import copy
import math
import os
import random

import numpy as np
import torch
from torch import nn


def lr_factor(step: int, total_steps: int, warmup_steps: int, min_ratio: float) -> float:
    """Linear warm-up from ~0 to 1 over `warmup_steps`, then cosine from 1 to `min_ratio`.

    `step` is the index of the optimizer step about to be taken (0-based).
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


class ModelEMA:
    """Exponential moving average of a model's weights (buffers are copied, not averaged).

    The effective decay ramps up as min(decay, (1 + n) / (10 + n)) over the first updates, so
    the average is not dominated by the random initialisation in short runs.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self._param_names = {name for name, _ in self.module.named_parameters()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        src = model.state_dict()
        for name, value in self.module.state_dict().items():
            if name in self._param_names:
                value.mul_(d).add_(src[name].detach(), alpha=1 - d)
            else:
                value.copy_(src[name])


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and CUDA); ask cuDNN for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
