"""E-Net (Paszke et al. 2016, "ENet: A Deep Neural Network Architecture for Real-Time Semantic
Segmentation"): an initial block, then bottlenecks with regular, dilated and asymmetric convs.

Deviations from the paper, all for int8 quantization and portable ONNX export (said here so
nobody mistakes them for bugs):

- Max-unpooling with stored indices (the paper's decoder main branch) has no int8 kernel in
  common runtimes and ties decoder and encoder through index tensors. The upsampling bottleneck
  here uses a 1x1 conv + BN followed by **bilinear x2 upsampling** on the main branch, and
  bilinear x2 + 3x3 conv on the extension branch (`upsample="transpose"` restores the paper's
  transposed conv on the extension branch).
- The downsampling main branch (max pool + zero channel padding in the paper) is max pool + 1x1
  conv + BN, so the residual add sees real features in every channel and quantizes per channel.
- PReLU is replaced by ReLU (fuses with conv+BN in every quantizer).
- The final full-resolution transposed conv is a 1x1 conv at half resolution + bilinear x2.

Sizes follow the paper: 16 -> 64 -> 128 channels, input H and W multiples of 8.
"""

from __future__ import annotations

import torch
from torch import nn

from lane_seg.models.layers import ConvBNReLU, Upsample, init_weights

UPSAMPLES = ("bilinear", "transpose")


class InitialBlock(nn.Module):
    """3x3 stride-2 conv (cout - 3 channels) concatenated with a 2x2 max pool of the input."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout - cin, 3, stride=2, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(torch.cat([self.conv(x), self.pool(x)], dim=1)))


class Bottleneck(nn.Module):
    """Residual bottleneck: 1x1 reduce -> main conv -> 1x1 expand -> spatial dropout, + input.

    kind: "regular" (3x3), "dilated" (3x3 with `dilation`), "asymmetric" (5x1 then 1x5).
    """

    def __init__(
        self, channels: int, kind: str = "regular", dilation: int = 1, dropout: float = 0.1
    ) -> None:
        super().__init__()
        mid = channels // 4
        if kind == "asymmetric":
            main: nn.Module = nn.Sequential(
                ConvBNReLU(mid, mid, (5, 1), relu=False), ConvBNReLU(mid, mid, (1, 5))
            )
        elif kind in ("regular", "dilated"):
            main = ConvBNReLU(mid, mid, 3, dilation=dilation)
        else:
            raise ValueError(f"unknown bottleneck kind {kind!r}")
        self.ext = nn.Sequential(
            ConvBNReLU(channels, mid, 1),
            main,
            ConvBNReLU(mid, channels, 1, relu=False),
            nn.Dropout2d(dropout),
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(x + self.ext(x))


class DownBottleneck(nn.Module):
    """Halves the resolution: ext branch 2x2 stride-2 conv; main branch max pool + 1x1 conv."""

    def __init__(self, cin: int, cout: int, dropout: float) -> None:
        super().__init__()
        mid = cin // 4
        self.main = nn.Sequential(nn.MaxPool2d(2), ConvBNReLU(cin, cout, 1, relu=False))
        self.ext = nn.Sequential(
            ConvBNReLU(cin, mid, 2, stride=2),
            ConvBNReLU(mid, mid, 3),
            ConvBNReLU(mid, cout, 1, relu=False),
            nn.Dropout2d(dropout),
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.main(x) + self.ext(x))


class UpBottleneck(nn.Module):
    """Doubles the resolution without max-unpooling (see the module docstring)."""

    def __init__(self, cin: int, cout: int, upsample: str) -> None:
        super().__init__()
        mid = cin // 4
        self.main = nn.Sequential(ConvBNReLU(cin, cout, 1, relu=False), Upsample(2))
        if upsample == "bilinear":
            up: nn.Module = nn.Sequential(Upsample(2), ConvBNReLU(mid, mid, 3))
        else:
            up = nn.Sequential(
                nn.ConvTranspose2d(mid, mid, 2, stride=2, bias=False),
                nn.BatchNorm2d(mid),
                nn.ReLU(inplace=True),
            )
        self.ext = nn.Sequential(ConvBNReLU(cin, mid, 1), up, ConvBNReLU(mid, cout, 1, relu=False))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.main(x) + self.ext(x))


def _stage2_3(channels: int, dropout: float) -> list[nn.Module]:
    """The paper's repeated 8-block pattern of stages 2 and 3."""
    return [
        Bottleneck(channels, "regular", 1, dropout),
        Bottleneck(channels, "dilated", 2, dropout),
        Bottleneck(channels, "asymmetric", 1, dropout),
        Bottleneck(channels, "dilated", 4, dropout),
        Bottleneck(channels, "regular", 1, dropout),
        Bottleneck(channels, "dilated", 8, dropout),
        Bottleneck(channels, "asymmetric", 1, dropout),
        Bottleneck(channels, "dilated", 16, dropout),
    ]


class ENet(nn.Module):
    def __init__(
        self,
        widths: tuple[int, int, int] | list[int] = (16, 64, 128),
        dropout: float = 0.1,
        upsample: str = "bilinear",
        in_channels: int = 3,
        num_classes: int = 1,
    ) -> None:
        super().__init__()
        if upsample not in UPSAMPLES:
            raise ValueError(f"upsample must be one of {UPSAMPLES}, got {upsample!r}")
        w0, w1, w2 = widths
        self.input_multiple = 8
        self.initial = InitialBlock(in_channels, w0)
        self.stage1 = nn.Sequential(
            DownBottleneck(w0, w1, dropout / 10),
            *(Bottleneck(w1, "regular", 1, dropout / 10) for _ in range(4)),
        )
        self.stage2 = nn.Sequential(DownBottleneck(w1, w2, dropout), *_stage2_3(w2, dropout))
        self.stage3 = nn.Sequential(*_stage2_3(w2, dropout))
        self.stage4 = nn.Sequential(UpBottleneck(w2, w1, upsample), Bottleneck(w1), Bottleneck(w1))
        self.stage5 = nn.Sequential(UpBottleneck(w1, w0, upsample), Bottleneck(w0))
        self.head = nn.Sequential(nn.Conv2d(w0, num_classes, 1), Upsample(2))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.initial(x)
        x = self.stage3(self.stage2(self.stage1(x)))
        x = self.stage5(self.stage4(x))
        return self.head(x)
