"""Per-layer quantization sensitivity and the automatic mixed-precision mode.

Sensitivity: each weight layer is quantized ALONE (everything else float, same calibration),
and the lane-IoU loss against the fp32 model is measured on the evaluation frames. Layers
whose own quantization costs most are the ones to keep in float.

Mixed precision (`--max-iou-drop B`): start from the fully quantized model; while its lane IoU
is more than B points below fp32, move the next most sensitive layer to float and re-measure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from lane_seg.training.quant import torch_ao as qt

Scorer = Callable[[nn.Module], float]  # model -> lane IoU (percent)


@dataclass
class LayerSensitivity:
    layer: str
    lane_iou: float
    drop: float


def layer_sensitivity(
    model: nn.Module,
    example: torch.Tensor,
    calib: list[torch.Tensor],
    score: Scorer,
    fp32_iou: float,
    observer: str = "histogram",
    backend: qt.CpuBackend | None = None,
    layers: list[str] | None = None,
    progress: bool = False,
) -> list[LayerSensitivity]:
    """Lane-IoU drop of quantizing each layer alone, most sensitive first."""
    names = layers if layers is not None else qt.weight_layer_names(model)
    it = names
    if progress:
        from tqdm import tqdm

        it = tqdm(names, desc="per-layer sensitivity", leave=False)
    out = []
    for name in it:
        q = qt.ptq(model, example, calib, observer, backend, only_layers=[name])
        iou = score(q)
        out.append(LayerSensitivity(name, iou, fp32_iou - iou))
    return sorted(out, key=lambda s: s.drop, reverse=True)


@dataclass
class MixedPrecision:
    float_layers: list[str]
    lane_iou: float
    drop: float
    model: nn.Module
    tried: list[tuple[int, float]] = field(default_factory=list)  # (#float layers, IoU)
    within_budget: bool = True


def mixed_precision(
    model: nn.Module,
    example: torch.Tensor,
    calib: list[torch.Tensor],
    score: Scorer,
    fp32_iou: float,
    ranking: list[LayerSensitivity],
    max_drop: float,
    observer: str = "histogram",
    backend: qt.CpuBackend | None = None,
) -> MixedPrecision:
    """Fewest most-sensitive layers in float such that fp32 IoU - IoU <= max_drop."""
    order = [s.layer for s in ranking]
    tried: list[tuple[int, float]] = []
    best = None
    for k in range(len(order) + 1):
        keep = order[:k]
        q = qt.ptq(model, example, calib, observer, backend, float_layers=keep)
        iou = score(q)
        tried.append((k, iou))
        best = MixedPrecision(keep, iou, fp32_iou - iou, q, tried)
        if fp32_iou - iou <= max_drop:
            return best
    assert best is not None
    best.within_budget = False
    return best


def plot_sensitivity(ranking: list[LayerSensitivity], title: str, path: str | Path) -> Path:
    """Horizontal bar chart: lane-IoU drop per layer (quantized alone), most sensitive on top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    rows = ranking[:40]
    fig, ax = plt.subplots(figsize=(8, 0.25 * len(rows) + 1.5))
    ax.barh([r.layer for r in rows][::-1], [r.drop for r in rows][::-1], color="tab:red")
    ax.set_xlabel("lane IoU drop (points) when only this layer is int8")
    ax.set_title(title)
    ax.axvline(0, color="black", lw=0.8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
