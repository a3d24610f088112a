"""ONNX export of a model with its ModelInfo in `metadata_props` (docs/architecture.md, contract 2).

Input "image" float32 [N, 3, H, W] (N dynamic, H and W fixed by the preprocessing config),
output "logits" float32 [N, 1, H, W]. Uses the TorchScript-based exporter (`dynamo=False`): it
needs no extra dependency and gives a plain Conv/Resize/MatMul graph that onnxruntime's
quantizer handles.

Parity: `onnx_parity` runs the file in onnxruntime and compares with PyTorch on the same input;
`PARITY_ATOL` / `PARITY_RTOL` are the tolerances the tests and `lane-seg export` enforce
(float32 reassociation differences are ~1e-5 on these logits).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lane_seg.artifact import INPUT_NAME, OUTPUT_NAME, ModelInfo
from lane_seg.outputs import temp_path

DEFAULT_OPSET = 17
PARITY_ATOL = 1e-3
PARITY_RTOL = 1e-3


def export_onnx(
    model: nn.Module, info: ModelInfo, path: str | Path, opset: int = DEFAULT_OPSET
) -> Path:
    """Export `model` (eval mode) at info.preprocess's input size; write atomically."""
    import onnx

    if opset < 17:
        raise ValueError("opset must be >= 17 (LayerNormalization, consistent Resize)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    dummy = torch.zeros(1, 3, info.preprocess.height, info.preprocess.width)
    tmp = temp_path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation/tracer chatter
        torch.onnx.export(
            model,
            (dummy,),
            str(tmp),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            opset_version=opset,
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            dynamo=False,
        )
    proto = onnx.load(str(tmp))
    onnx.checker.check_model(proto)
    set_metadata(proto, info.to_metadata())
    proto.producer_name = "lane_seg"
    onnx.save(proto, str(tmp))
    os.replace(tmp, path)
    return path


def set_metadata(proto, meta: dict[str, str]) -> None:  # noqa: ANN001 (onnx.ModelProto)
    """Replace the model's metadata_props with `meta` (str -> str)."""
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def write_metadata(path: str | Path, info: ModelInfo) -> Path:
    """Replace an ONNX file's metadata_props with `info`, atomically; the graph is untouched."""
    import onnx

    path = Path(path)
    proto = onnx.load(str(path))
    set_metadata(proto, info.to_metadata())
    tmp = temp_path(path)
    onnx.save(proto, str(tmp))
    os.replace(tmp, path)
    return path


def read_metadata(path: str | Path) -> dict[str, str]:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}


def onnx_parity(model: nn.Module, path: str | Path, x: np.ndarray) -> tuple[bool, float]:
    """Run `x` (float32 [N, 3, H, W]) through onnxruntime and PyTorch.

    Returns (every logit within PARITY_ATOL + PARITY_RTOL * |torch|, max abs difference).
    """
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run([OUTPUT_NAME], {INPUT_NAME: x.astype(np.float32)})[0]
    with torch.inference_mode():
        want = model.eval()(torch.from_numpy(x.astype(np.float32))).numpy()
    if got.shape != want.shape:
        return False, float("inf")
    diff = np.abs(got - want)
    return bool(np.all(diff <= PARITY_ATOL + PARITY_RTOL * np.abs(want))), float(diff.max())
