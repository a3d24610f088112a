"""Small models and datasets for the quantization tests (no trained checkpoint needed)."""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from lane_seg.data.dataset import DatasetWriter, encode_image, encode_mask


def cbr(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()
    )


class TinySeg(nn.Module):
    """conv-bn-relu encoder, bilinear (or transposed-conv) upsampling, a skip concat."""

    def __init__(self, transpose: bool = False) -> None:
        super().__init__()
        self.enc1 = cbr(3, 8)
        self.enc2 = cbr(8, 16, stride=2)
        self.mid = cbr(16, 16)
        self.transpose = transpose
        self.up = nn.ConvTranspose2d(16, 16, 2, stride=2) if transpose else nn.Identity()
        self.dec = cbr(24, 8)
        self.head = nn.Conv2d(8, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.enc1(x)
        b = self.mid(self.enc2(a))
        if self.transpose:
            b = self.up(b)
        else:
            b = F.interpolate(b, size=a.shape[-2:], mode="bilinear", align_corners=False)
        return self.head(self.dec(torch.cat([a, b], dim=1)))


def settle_bn(model: nn.Module, inputs: list[torch.Tensor]) -> nn.Module:
    """Give BN realistic running statistics (as a trained model would have)."""
    model.train()
    with torch.no_grad():
        for x in inputs:
            model(x)
    return model.eval()


def stripe_batch(n: int, h: int = 32, w: int = 64, seed: int = 0) -> torch.Tensor:
    """Normalised-looking inputs with lane-like bright stripes, not pure noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.5, size=(n, 3, h, w)).astype(np.float32)
    for i in range(n):
        c = int(rng.integers(4, w - 4))
        x[i, :, :, c - 1 : c + 2] += 2.0
    return torch.from_numpy(x)


def lane_frame(rng: np.random.Generator, h: int = 48, w: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """A grey road with one bright slanted marking, and its 0/255 mask."""
    img = np.full((h, w, 3), 90, np.uint8)
    img += rng.integers(0, 20, size=(h, w, 3), dtype=np.uint8)
    mask = np.zeros((h, w), np.uint8)
    x0 = int(rng.integers(10, w - 10))
    for y in range(h // 3, h):
        x = x0 + (y - h // 3) // 3
        if 0 <= x < w - 2:
            img[y, x : x + 2] = 235
            mask[y, x : x + 2] = 255
    return img, mask


def write_dataset(root: Path, n_train: int = 12, n_val: int = 6, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    with DatasetWriter(root, "quant tests", {"seed": seed}) as w:
        for i in range(n_train + n_val):
            img, mask = lane_frame(rng)
            split = "train" if i < n_train else "val"
            w.add(f"f{i:03d}", split, "test", encode_image(img), encode_mask(mask))
    return root


def trained_tiny(transpose: bool = False, steps: int = 60) -> TinySeg:
    """TinySeg fitted for a few steps to find the stripes: logits spanning several units, as a
    trained model's do (a random net's near-constant output says nothing about closeness).
    Trained once per test session; each call gets its own copy."""
    return copy.deepcopy(_trained_tiny(transpose, steps))


@functools.lru_cache(maxsize=4)
def _trained_tiny(transpose: bool, steps: int) -> TinySeg:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny net on a shared 2-core box: 1 thread is ~4x faster
    try:
        return _fit(transpose, steps)
    finally:
        torch.set_num_threads(threads)


def _fit(transpose: bool, steps: int) -> TinySeg:
    torch.manual_seed(0)
    model = TinySeg(transpose)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    model.train()
    for i in range(steps):
        x = stripe_batch(8, seed=1000 + i)
        y = (x[:, :1] > 1.0).float()
        loss = F.binary_cross_entropy_with_logits(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()
