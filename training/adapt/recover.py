"""A trainable fp32 model recovered from an int8 ONNX file written by the one exporter.

The int8 file holds each convolution's weights as int8 with a scale per output channel (and its
bias as int32 with a scale); dequantizing them, `(q - zero_point) * scale`, gives the fp32
weights up to int8 rounding. The exporter folded each BatchNorm into the convolution before it,
so the file has no BatchNorm statistics left for AdaBN to re-estimate. They are put back
exactly: for a convolution whose output y = W x (W folded, bias b folded) feeds a BatchNorm,
the BatchNorm's running mean and variance become y's per-channel mean mu and variance var on
source frames (the simulator's), its scale sqrt(var + eps) and its shift mu + b, so that

    BN(y) = (y - mu) / sqrt(var + eps) * sqrt(var + eps) + mu + b = y + b

is the folded convolution on any input, and on source frames the running statistics are what
the frames show. AdaBN (`lane_seg.training.adapt.batchnorm`) then replaces them with the
camera's, as it would on the original model up to the int8 rounding of its weights.

The statistics follow the convention AdaBN collects the camera's with: batches of
`batchnorm.BATCH` frames, each batch's per-channel mean and unbiased variance, averaged over
every frame seen.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lane_seg.artifact import ModelInfo
from lane_seg.data.dataset import sha256_file
from lane_seg.errors import LaneSegError
from lane_seg.models import build_model
from lane_seg.models.checkpoint import save_checkpoint
from lane_seg.preprocess import to_input
from lane_seg.runtime.engines import OnnxRuntimeEngine, TorchEngine
from lane_seg.training.adapt.batchnorm import BATCH
from lane_seg.training.quant.onnx_int8 import compare_outputs

CHECK_FRAMES = 8  # source frames on which the recovered model is compared with the int8 file


@dataclass
class Recovered:
    model: nn.Module  # fp32, eval mode
    info: ModelInfo
    origin: dict[str, Any]  # the file, its sha256, the source frames, the fidelity figures


def _dequantizer(graph: Any) -> Any:
    from onnx import numpy_helper

    const = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}

    def value(name: str) -> np.ndarray:
        if name in const:  # a float initializer (not quantized)
            return const[name].astype(np.float32)
        dq = producer.get(name)
        if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] not in const:
            raise LaneSegError(f"{name}: not a constant or a dequantized constant")
        x, scale = const[dq.input[0]].astype(np.float32), const[dq.input[1]]
        zp = const[dq.input[2]].astype(np.float32) if len(dq.input) > 2 and dq.input[2] else 0.0
        if np.ndim(scale) == 1 and x.ndim > 1:  # per output channel (axis 0)
            shape = (-1,) + (1,) * (x.ndim - 1)
            scale, zp = scale.reshape(shape), np.reshape(zp, shape) if np.ndim(zp) else zp
        return ((x - zp) * scale).astype(np.float32)

    return value


def conv_pairs(model: nn.Module) -> list[tuple[nn.Conv2d, nn.BatchNorm2d | None]]:
    """Each Conv2d in module order with the BatchNorm2d right after it (None if there is none):
    the pairs the exporter folds (`lane_seg.models.layers.ConvBNReLU`)."""
    mods = list(model.modules())
    pairs = []
    for i, m in enumerate(mods):
        if isinstance(m, nn.Conv2d):
            nxt = mods[i + 1] if i + 1 < len(mods) else None
            folded = isinstance(nxt, nn.BatchNorm2d) and nxt.num_features == m.out_channels
            pairs.append((m, nxt if folded else None))
    return pairs


def load_folded(path: Path) -> tuple[nn.Module, ModelInfo]:
    """The file's architecture with its dequantized weights and every BatchNorm the identity
    plus the folded bias: the int8 file's computation in fp32, without activation rounding."""
    import onnx

    proto = onnx.load(str(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    info = ModelInfo.from_metadata(meta, source=str(path))
    model = build_model(info.arch, **info.model_config).eval()
    value = _dequantizer(proto.graph)
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    pairs = conv_pairs(model)
    if len(convs) != len(pairs) or any(isinstance(m, nn.ConvTranspose2d) for m in model.modules()):
        raise LaneSegError(
            f"{path}: {len(convs)} convolutions in the file, {len(pairs)} in {info.arch} "
            f"{info.model_config}; only models made of plain convolutions can be recovered"
        )
    with torch.no_grad():
        for node, (conv, bn) in zip(convs, pairs, strict=True):
            w = torch.from_numpy(value(node.input[1]))
            if w.shape != conv.weight.shape:
                raise LaneSegError(f"{path}: weight {tuple(w.shape)} != {tuple(conv.weight.shape)}")
            b = value(node.input[2]) if len(node.input) > 2 and node.input[2] else None
            b = torch.zeros(conv.out_channels) if b is None else torch.from_numpy(b)
            conv.weight.copy_(w)
            if bn is not None:
                if conv.bias is not None:
                    conv.bias.zero_()
                bn.weight.fill_(1.0)
                bn.bias.copy_(b)
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
            elif conv.bias is not None:
                conv.bias.copy_(b)
            elif b.abs().max() > 0:
                raise LaneSegError(f"{path}: {node.name} has a bias the model's layer lacks")
    return model, replace(info, precision="fp32", calibration={})


def source_statistics(
    model: nn.Module, inputs: Sequence[np.ndarray], batch: int = BATCH
) -> dict[nn.Conv2d, tuple[torch.Tensor, torch.Tensor]]:
    """Per-channel (mean, unbiased variance) of each BatchNorm'd convolution's output (without
    bias) on `inputs`, averaged over batches of `batch` frames as AdaBN averages them."""
    convs = [c for c, bn in conv_pairs(model) if bn is not None]
    zeros = [torch.zeros(c.out_channels, dtype=torch.float64) for c in convs]
    sums = {c: (z, z) for c, z in zip(convs, zeros, strict=True)}

    def hook(conv: nn.Conv2d, _: Any, out: torch.Tensor) -> None:
        n = len(out)  # the batch's frames: weights its statistics as AdaBN's cumulative average
        var_b, mean_b = torch.var_mean(out.detach(), dim=(0, 2, 3), unbiased=True)
        mean, var = sums[conv]
        sums[conv] = (mean + n * mean_b.double(), var + n * var_b.double())

    handles = [c.register_forward_hook(hook) for c in convs]
    seen = 0
    try:
        with torch.no_grad():
            for i in range(0, len(inputs), batch):
                x = torch.from_numpy(np.concatenate(inputs[i : i + batch]))
                model(x)
                seen += len(x)
    finally:
        for h in handles:
            h.remove()
    if seen == 0:
        raise LaneSegError("no source frames to measure the BatchNorm statistics on")
    return {c: (m.float() / seen, v.float() / seen) for c, (m, v) in sums.items()}


def reparameterize(model: nn.Module, inputs: Sequence[np.ndarray]) -> int:
    """Give each folded BatchNorm the source statistics while keeping the folded model's
    output (module docstring). Returns the number of BatchNorm layers set."""
    stats = source_statistics(model, inputs)
    with torch.no_grad():
        for conv, bn in conv_pairs(model):
            if bn is None:
                continue
            mean, var = stats[conv]
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)
            bn.weight.copy_(torch.sqrt(var + bn.eps))
            bn.bias.add_(mean)  # it held the folded bias
    return len(stats)


def _max_diff(a: nn.Module, b: nn.Module, inputs: Sequence[np.ndarray]) -> float:
    with torch.no_grad():
        return max(
            float((a(torch.from_numpy(x)) - b(torch.from_numpy(x))).abs().max()) for x in inputs
        )


def recover_int8(path: str | Path, source_frames: Sequence[np.ndarray], source: str) -> Recovered:
    """The trainable fp32 model of the int8 file at `path`, its BatchNorm statistics measured
    on `source_frames` (RGB frames of the domain it was trained on, described by `source`)."""
    import copy

    path = Path(path)
    folded, info = load_folded(path)
    inputs = [to_input(f, info.preprocess) for f in source_frames]
    model = copy.deepcopy(folded)
    layers = reparameterize(model, inputs)
    check = inputs[:CHECK_FRAMES]
    vs_int8 = compare_outputs(TorchEngine(model, info), OnnxRuntimeEngine(path), check)
    frames_sha = hashlib.sha256(b"".join(f.tobytes() for f in source_frames)).hexdigest()
    origin = {
        "path": str(path),
        "sha256": sha256_file(path),
        "source_frames": {"source": source, "count": len(inputs), "sha256": frames_sha},
        "batchnorm_layers": layers,
        "max_abs_logit_diff_vs_folded": _max_diff(model, folded, check[:2]),
        "vs_int8_file": vs_int8,
    }
    what = f"recovered from {path.name} (sha256 {origin['sha256'][:16]})"
    info = replace(info, train_data=f"{info.train_data}; {what}" if info.train_data else what)
    return Recovered(model.eval(), info, origin)


def save_recovered(rec: Recovered, out: str | Path) -> None:
    """The recovered model as a checkpoint (contract 2), its origin under `recovered_from`."""
    save_checkpoint(out, rec.model, rec.info, recovered_from=rec.origin)
