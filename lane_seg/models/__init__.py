"""Segmentation models: our own U-Net, E-Net, DeepLabV3+ and SegFormer, and their registry.

Every model maps a preprocessed float image [N, 3, H, W] to lane logits [N, 1, H, W] at the
input size (probability = sigmoid, lane where p > 0.5). All are built to quantize: conv+BN+ReLU
triples, bilinear upsampling with align_corners=False, no max-unpooling (each module's
docstring says where it departs from its paper and why).

    model = build_model("unet", base=16, depth=4)
    model = build_model(info.arch, **info.model_config)   # from a checkpoint's ModelInfo
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from lane_seg.errors import LaneSegError
from lane_seg.models.complexity import Complexity, complexity, count_macs, count_params
from lane_seg.models.deeplabv3plus import DeepLabV3Plus
from lane_seg.models.enet import ENet
from lane_seg.models.segformer import SegFormer
from lane_seg.models.unet import UNet

MODELS: dict[str, Callable[..., nn.Module]] = {
    "unet": UNet,
    "enet": ENet,
    "deeplabv3plus": DeepLabV3Plus,
    "segformer": SegFormer,
}

__all__ = [
    "MODELS",
    "Complexity",
    "build_model",
    "complexity",
    "count_macs",
    "count_params",
    "input_multiple",
    "model_names",
]


def model_names() -> list[str]:
    return list(MODELS)


def build_model(name: str, **cfg: Any) -> nn.Module:
    """Build a registered model by name; unknown names or options raise LaneSegError."""
    if name not in MODELS:
        raise LaneSegError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    try:
        return MODELS[name](**cfg)
    except TypeError as exc:  # an option the constructor does not take
        raise LaneSegError(f"bad options for model {name!r}: {exc}") from exc
    except ValueError as exc:
        raise LaneSegError(f"bad options for model {name!r}: {exc}") from exc


def input_multiple(model: nn.Module) -> int:
    """Input H and W must be multiples of this (the model's total downsampling)."""
    return int(getattr(model, "input_multiple", 1))


def check_input_size(model: nn.Module, height: int, width: int) -> None:
    m = input_multiple(model)
    if height % m or width % m:
        raise LaneSegError(
            f"input size {width}x{height} (WxH) is not a multiple of {m} for this model; "
            f"pick a width and height divisible by {m} (e.g. 512x256)"
        )
