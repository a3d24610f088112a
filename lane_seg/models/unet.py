"""U-Net (Ronneberger et al. 2015), sized for real-time lane marking segmentation.

Configurable: `base` width (channels of the first level, doubled at each level), `depth`
(number of 2x downsamplings), `batch_norm` on/off, and the decoder's upsampling:

- `decoder="bilinear"` (default): bilinear x2 then 3x3 conv. Quantizes well: a Resize on int8
  activations plus an ordinary conv, no learned upsampling kernel with checkerboard artefacts.
- `decoder="transpose"`: 2x2 stride-2 transposed conv, as in the paper.

Convs are padded ("same"), so the output has the input's size; H and W must be multiples of
2**depth. Activations are ReLU; pooling is 2x2 max pooling (quantizes exactly).
"""

from __future__ import annotations

import torch
from torch import nn

from lane_seg.models.layers import ConvBNReLU, Upsample, init_weights

DECODERS = ("bilinear", "transpose")


class DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int, bn: bool) -> None:
        super().__init__(ConvBNReLU(cin, cout, bn=bn), ConvBNReLU(cout, cout, bn=bn))


class Up(nn.Module):
    """Upsample x2 halving the channels, concatenate the skip, double conv."""

    def __init__(self, cin: int, cout: int, bn: bool, decoder: str) -> None:
        super().__init__()
        if decoder == "bilinear":
            self.up = nn.Sequential(Upsample(2), ConvBNReLU(cin, cout, bn=bn))
        else:
            self.up = nn.ConvTranspose2d(cin, cout, kernel_size=2, stride=2)
        self.conv = DoubleConv(2 * cout, cout, bn)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([self.up(x), skip], dim=1))


class UNet(nn.Module):
    def __init__(
        self,
        base: int = 16,
        depth: int = 4,
        batch_norm: bool = True,
        decoder: str = "bilinear",
        in_channels: int = 3,
        num_classes: int = 1,
    ) -> None:
        super().__init__()
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
        if depth < 1 or base < 1:
            raise ValueError("depth and base must be positive")
        widths = [base * 2**i for i in range(depth + 1)]
        self.input_multiple = 2**depth
        self.stem = DoubleConv(in_channels, widths[0], batch_norm)
        self.pool = nn.MaxPool2d(2)
        self.down = nn.ModuleList(
            DoubleConv(widths[i], widths[i + 1], batch_norm) for i in range(depth)
        )
        self.up = nn.ModuleList(
            Up(widths[i + 1], widths[i], batch_norm, decoder) for i in reversed(range(depth))
        )
        self.head = nn.Conv2d(widths[0], num_classes, kernel_size=1)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        skips = [x]
        for block in self.down:
            x = block(self.pool(x))
            skips.append(x)
        skips.pop()
        for block in self.up:
            x = block(x, skips.pop())
        return self.head(x)
