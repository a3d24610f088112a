"""Building blocks shared by the four architectures.

Everything here is chosen to survive int8 post-training quantization and QAT:
conv -> batch norm -> ReLU triples (fusable into one quantized conv), bilinear resizing with
`align_corners=False` (a plain ONNX `Resize` that every runtime supports), no max-unpooling, no
data-dependent shapes.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class ConvBNReLU(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d -> ReLU; a triple that quantizers fuse into one op.

    `bn=False` keeps a biased conv instead, for the U-Net "batch norm off" variant.
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int | tuple[int, int] = 3,
        stride: int = 1,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bn: bool = True,
        relu: bool = True,
    ) -> None:
        k = (kernel, kernel) if isinstance(kernel, int) else kernel
        d = (dilation, dilation) if isinstance(dilation, int) else dilation
        padding = (d[0] * (k[0] - 1) // 2, d[1] * (k[1] - 1) // 2)
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, k, stride, padding, dilation=d, groups=groups, bias=not bn)
        ]
        if bn:
            layers.append(nn.BatchNorm2d(cout))
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class Upsample(nn.Module):
    """Bilinear resize by an integer factor (align_corners=False), as a module so it is visible
    in the graph and in model summaries."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale == 1:
            return x
        return F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)


def resize_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Bilinear resize of `x` to the spatial size of `like` (align_corners=False)."""
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


class MatMul(nn.Module):
    """`a @ b` as a module, so the MAC counter (forward hooks) and quantizers can see it."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.matmul(a, b)


def init_weights(model: nn.Module) -> None:
    """Kaiming init for convs (ReLU networks), unit BN, small-normal linears."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
