"""SegFormer (Xie et al. 2021) with a MiT-B0-like encoder, written here.

Encoder (Mix Transformer): four stages, each an overlapping patch embedding (strided conv with a
kernel larger than its stride: 7x7/4 then 3x3/2), transformer blocks with efficient
self-attention (keys and values from a sequence spatially reduced by a strided conv of ratio R)
and Mix-FFN (linear -> 3x3 depthwise conv -> activation -> linear; the depthwise conv gives the
positional information, so there is no positional embedding and any input size works).
MiT-B0 sizes: dims (32, 64, 160, 256), depths (2, 2, 2, 2), heads (1, 2, 5, 8), R (8, 4, 2, 1).

Decoder (all-MLP): each stage linearly projected to `decoder_dim` (a 1x1 conv), bilinearly
upsampled to stride 4, concatenated, fused by 1x1 conv + BN + ReLU, classified, then bilinear x4
to the input size.

Quantization notes: the Mix-FFN activation defaults to ReLU (`act="gelu"` gives the paper's
GELU, which has no fused int8 kernel in most runtimes); attention is explicit matmul + softmax
through `MatMul` modules that quantizers and the MAC counter can see; LayerNorm stays (ONNX
opset 17 has LayerNormalization). Stochastic depth is left out (it only matters for long
training). H and W must be multiples of 32.
"""

from __future__ import annotations

import torch
from torch import nn

from lane_seg.models.layers import ConvBNReLU, MatMul, Upsample, init_weights

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU}


class OverlapPatchEmbed(nn.Module):
    def __init__(self, cin: int, dim: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(cin, dim, kernel, stride, padding=kernel // 2)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        x = self.proj(x)
        h, w = x.shape[-2:]
        return self.norm(x.flatten(2).transpose(1, 2)), h, w


def _to_map(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """[N, h*w, C] tokens -> [N, C, h, w] feature map."""
    return x.transpose(1, 2).reshape(x.shape[0], -1, h, w)


class EfficientAttention(nn.Module):
    """Multi-head self-attention whose keys/values come from a sequence reduced R x R."""

    def __init__(self, dim: int, heads: int, sr_ratio: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} not divisible by heads {heads}")
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.sr_ratio = sr_ratio
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, sr_ratio, sr_ratio)
            self.sr_norm = nn.LayerNorm(dim)
        self.qk = MatMul()
        self.av = MatMul()

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        n, t, c = x.shape
        return x.reshape(n, t, self.heads, c // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        n, t, c = x.shape
        q = self._split(self.q(x)) * self.scale
        if self.sr_ratio > 1:
            reduced = self.sr(_to_map(x, h, w)).flatten(2).transpose(1, 2)
            x = self.sr_norm(reduced)
        k, v = self.kv(x).chunk(2, dim=-1)
        attn = self.qk(q, self._split(k).transpose(-2, -1)).softmax(dim=-1)
        out = self.av(attn, self._split(v)).transpose(1, 2).reshape(n, t, c)
        return self.proj(out)


class MixFFN(nn.Module):
    def __init__(self, dim: int, hidden: int, act: str) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dw = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.act = ACTIVATIONS[act]()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        x = self.dw(_to_map(self.fc1(x), h, w)).flatten(2).transpose(1, 2)
        return self.fc2(self.act(x))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, sr_ratio: int, mlp_ratio: int, act: str) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = EfficientAttention(dim, heads, sr_ratio)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = MixFFN(dim, dim * mlp_ratio, act)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), h, w)
        return x + self.ffn(self.norm2(x), h, w)


class Stage(nn.Module):
    def __init__(
        self,
        cin: int,
        dim: int,
        depth: int,
        heads: int,
        sr_ratio: int,
        mlp_ratio: int,
        act: str,
        first: bool,
    ) -> None:
        super().__init__()
        self.embed = OverlapPatchEmbed(cin, dim, 7 if first else 3, 4 if first else 2)
        self.blocks = nn.ModuleList(
            Block(dim, heads, sr_ratio, mlp_ratio, act) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, h, w = self.embed(x)
        for block in self.blocks:
            x = block(x, h, w)
        return _to_map(self.norm(x), h, w)


class SegFormer(nn.Module):
    def __init__(
        self,
        dims: tuple[int, ...] | list[int] = (32, 64, 160, 256),
        depths: tuple[int, ...] | list[int] = (2, 2, 2, 2),
        heads: tuple[int, ...] | list[int] = (1, 2, 5, 8),
        sr_ratios: tuple[int, ...] | list[int] = (8, 4, 2, 1),
        mlp_ratio: int = 4,
        decoder_dim: int = 256,
        act: str = "relu",
        in_channels: int = 3,
        num_classes: int = 1,
    ) -> None:
        super().__init__()
        if act not in ACTIVATIONS:
            raise ValueError(f"act must be one of {sorted(ACTIVATIONS)}, got {act!r}")
        if not len(dims) == len(depths) == len(heads) == len(sr_ratios) == 4:
            raise ValueError("dims, depths, heads and sr_ratios need 4 entries each")
        self.input_multiple = 32
        cins = [in_channels, *dims[:3]]
        self.stages = nn.ModuleList(
            Stage(cins[i], dims[i], depths[i], heads[i], sr_ratios[i], mlp_ratio, act, i == 0)
            for i in range(4)
        )
        self.linear = nn.ModuleList(nn.Conv2d(d, decoder_dim, 1) for d in dims)
        self.ups = nn.ModuleList(Upsample(2**i) for i in range(4))
        self.fuse = ConvBNReLU(4 * decoder_dim, decoder_dim, 1)
        self.classify = nn.Conv2d(decoder_dim, num_classes, 1)
        self.up4 = Upsample(4)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        fused = [up(proj(f)) for f, proj, up in zip(feats, self.linear, self.ups, strict=True)]
        return self.up4(self.classify(self.fuse(torch.cat(fused, dim=1))))
