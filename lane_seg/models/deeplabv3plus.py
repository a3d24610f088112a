"""DeepLabV3+ (Chen et al. 2018) with a light MobileNetV2-style backbone, written here.

Backbone: inverted residual blocks (1x1 expand -> 3x3 depthwise -> 1x1 linear project, residual
when shapes match) at output stride 16: the last stride-2 stage is replaced by dilation 2, as
DeepLab does. `width` scales every backbone channel count (0.5 -> a 0.5x MobileNetV2).

Head: ASPP (1x1, three dilated 3x3, image pooling) on the stride-16 features, upsampled x4 and
concatenated with a 1x1-reduced low-level (stride-4) skip, two 3x3 convs, then bilinear x4 to the
input size. Default ASPP rates (3, 6, 9) rather than the paper's (6, 12, 18) because a 256x512
input gives only a 16x32 feature map, where rate 18 would look mostly at padding.

Lane lines are a few pixels wide, and a stride-4 decoder output places them only to within a
quarter of the input's pixels. Two options for a cheaper, finer head (training/README.md, "The
fast model"):
`separable_decoder` makes the decoder's two 3x3 convs depthwise-separable (3x3 depthwise + 1x1),
about an eighth of their MACs, which were most of the model's; `refine_channels` > 0 adds a
stride-2 stage: the decoder's features upsampled x2, concatenated with a 1x1-reduced copy of the
stem's stride-2 features, one depthwise-separable conv, then the logits and bilinear x2.

Quantization-friendly: ReLU instead of ReLU6 (conv+BN+ReLU fuse everywhere), bilinear resizing,
the image-pooling branch is a global average pool broadcast back by nearest resize (exact in
int8). H and W must be multiples of 16.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from lane_seg.models.layers import ConvBNReLU, Upsample, init_weights

# (expansion t, channels c, repeats n, stride s) of MobileNetV2, Sandler et al. 2018, table 2.
MBV2_SETTINGS = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


def _scaled(channels: int, width: float) -> int:
    """Channel count scaled by `width`, rounded to a multiple of 8 (kernel-friendly)."""
    return max(8, int(channels * width + 4) // 8 * 8)


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int, dilation: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBNReLU(cin, hidden, 1))
        layers += [
            ConvBNReLU(hidden, hidden, 3, stride=stride, dilation=dilation, groups=hidden),
            ConvBNReLU(hidden, cout, 1, relu=False),
        ]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


class MobileNetV2Backbone(nn.Module):
    """Returns (stem stride-2, low-level stride-4, high-level stride-16 features)."""

    def __init__(self, width: float = 1.0, in_channels: int = 3) -> None:
        super().__init__()
        cin = _scaled(32, width)
        self.stem = ConvBNReLU(in_channels, cin, 3, stride=2)
        low: list[nn.Module] = []
        high: list[nn.Module] = []
        stride_so_far, dilation = 2, 1
        for t, c, n, s in MBV2_SETTINGS:
            cout = _scaled(c, width)
            if s == 2 and stride_so_far == 16:
                s, dilation = 1, 2  # output stride 16: dilate instead of downsampling
            for i in range(n):
                stride = s if i == 0 else 1
                block = InvertedResidual(cin, cout, stride, t, dilation if i else 1)
                (low if stride_so_far * stride <= 4 else high).append(block)
                stride_so_far *= stride
                cin = cout
        self.low = nn.Sequential(*low)
        self.high = nn.Sequential(*high)
        self.low_channels = _scaled(24, width)
        self.high_channels = cin

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        stem = self.stem(x)
        low = self.low(stem)
        return stem, low, self.high(low)


class ASPP(nn.Module):
    def __init__(self, cin: int, cout: int, rates: tuple[int, ...] | list[int]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            [ConvBNReLU(cin, cout, 1)] + [ConvBNReLU(cin, cout, 3, dilation=r) for r in rates]
        )
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), ConvBNReLU(cin, cout, 1, bn=False))
        self.project = ConvBNReLU(cout * (len(rates) + 2), cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.interpolate(self.pool(x), size=x.shape[-2:], mode="nearest")
        return self.project(torch.cat([b(x) for b in self.branches] + [pooled], dim=1))


def _separable(cin: int, cout: int) -> nn.Sequential:
    """3x3 depthwise + 1x1 pointwise, each with BN and ReLU."""
    return nn.Sequential(ConvBNReLU(cin, cin, 3, groups=cin), ConvBNReLU(cin, cout, 1))


class DeepLabV3Plus(nn.Module):
    def __init__(
        self,
        width: float = 1.0,
        aspp_channels: int = 128,
        aspp_rates: tuple[int, ...] | list[int] = (3, 6, 9),
        low_channels: int = 48,
        decoder_channels: int = 128,
        in_channels: int = 3,
        num_classes: int = 1,
        separable_decoder: bool = False,
        refine_channels: int = 0,
    ) -> None:
        super().__init__()
        self.input_multiple = 16
        self.backbone = MobileNetV2Backbone(width, in_channels)
        self.aspp = ASPP(self.backbone.high_channels, aspp_channels, aspp_rates)
        self.low_proj = ConvBNReLU(self.backbone.low_channels, low_channels, 1)
        conv = _separable if separable_decoder else ConvBNReLU
        decoder = [conv(aspp_channels + low_channels, decoder_channels)]
        decoder.append(conv(decoder_channels, decoder_channels))
        self.refine = None
        if refine_channels:
            stem_channels = self.backbone.stem[0].out_channels
            self.stem_proj = ConvBNReLU(stem_channels, refine_channels, 1)
            self.refine = nn.Sequential(
                _separable(decoder_channels + refine_channels, refine_channels),
                nn.Conv2d(refine_channels, num_classes, 1),
            )
        else:
            decoder.append(nn.Conv2d(decoder_channels, num_classes, 1))
        self.decoder = nn.Sequential(*decoder)
        self.up2, self.up4 = Upsample(2), Upsample(4)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stem, low, high = self.backbone(x)
        high = self.up4(self.aspp(high))
        y = self.decoder(torch.cat([high, self.low_proj(low)], dim=1))
        if self.refine is None:
            return self.up4(y)
        return self.up2(self.refine(torch.cat([self.up2(y), self.stem_proj(stem)], dim=1)))
