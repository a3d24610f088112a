"""Parameter and multiply-accumulate (MAC) counting with forward hooks.

MACs are counted for the ops that dominate inference cost: Conv2d, ConvTranspose2d, Linear and
the attention matmuls (`lane_seg.models.layers.MatMul`). Batch norm (folded into convs at
deployment), activations, pooling, resizing, softmax and layer norm are not counted; they are a
few percent of the total for these models. One MAC = one multiply + one add (GMACs ~ GFLOPs/2).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lane_seg.models.layers import MatMul


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _conv_macs(m: nn.Conv2d, out: torch.Tensor) -> int:
    kh, kw = m.kernel_size
    return out.numel() * (m.in_channels // m.groups) * kh * kw


def _deconv_macs(m: nn.ConvTranspose2d, inp: torch.Tensor) -> int:
    kh, kw = m.kernel_size
    return inp.numel() * (m.out_channels // m.groups) * kh * kw


def _module_macs(m: nn.Module, inputs: tuple, out: torch.Tensor) -> int:
    if isinstance(m, nn.Conv2d):
        return _conv_macs(m, out)
    if isinstance(m, nn.ConvTranspose2d):
        return _deconv_macs(m, inputs[0])
    if isinstance(m, nn.Linear):
        return out.numel() * m.in_features
    if isinstance(m, MatMul):
        return out.numel() * inputs[0].shape[-1]
    return 0


def count_macs(model: nn.Module, height: int, width: int, batch: int = 1) -> int:
    """MACs of one forward pass at `batch` x 3 x height x width (eval mode, no grad)."""
    total = 0

    def hook(m: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
        nonlocal total
        total += _module_macs(m, inputs, out)

    counted = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, MatMul)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, counted)]
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            model(torch.zeros(batch, 3, height, width))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total


@dataclass(frozen=True)
class Complexity:
    params: int
    macs: int

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    @property
    def mparams(self) -> float:
        return self.params / 1e6


def complexity(model: nn.Module, height: int, width: int) -> Complexity:
    return Complexity(count_params(model), count_macs(model, height, width))
