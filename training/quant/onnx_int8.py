"""Checks of int8 ONNX files and what actually runs in int8; the metadata writer.

The int8 files themselves are written by lane_seg.training.quant.exporter, the one exporter.

- `check_qdq`: the structure of a QDQ file: per-channel int8 weights on every Conv, and for the
  TensorRT-ready variant all zero points 0 and int8.
- `int8_op_counts`: loads the file in onnxruntime with full graph optimization, writes the
  optimized graph (SessionOptions.optimized_model_filepath) and counts which convolutions
  became QLinearConv / ConvInteger and which stayed float Conv. A QDQ file only says which
  tensors MAY be int8; this says what the CPU provider actually runs.
- `compare_outputs`: int8 against fp32 on the same frames.
- `write_with_metadata`: short names and `ModelInfo` in metadata_props, written atomically.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lane_seg.artifact import ModelInfo
from lane_seg.errors import LaneSegError
from lane_seg.outputs import temp_path
from lane_seg.runtime.engines import Engine

# What stays float in this path is whatever onnxruntime cannot fuse: LayerNormalization (no
# int8 CPU kernel) and, in QDQ form, every op whose neighbours are float. Attention Softmax is
# NOT kept float here: onnxruntime fuses DequantizeLinear -> Softmax -> QuantizeLinear into
# QLinearSoftmax even when the Softmax node itself is excluded, so the counts below report it.
INT8_CONV_OPS = {"QLinearConv", "ConvInteger", "QLinearConvTranspose"}
FLOAT_CONV_OPS = {"Conv", "FusedConv", "ConvTranspose", "NhwcFusedConv"}
INT8_MATMUL_OPS = {"QLinearMatMul", "MatMulInteger", "QGemm", "MatMulIntegerToFloat"}
FLOAT_MATMUL_OPS = {"MatMul", "Gemm", "FusedMatMul"}


def compact_names(proto: Any) -> None:
    """Short node and tensor names (n12, t34); graph inputs and outputs keep theirs.

    The exporter's and quantizer's names ("/down.0/down.0.0/Conv_output_0_QuantizeLinear...")
    are ~35 kB in a 0.6 MB int8 U-Net and do nothing at inference. Applied to the int8 files
    (the fp32 file keeps the exporter's names, so a rebuilt one has the same sha256; its names
    are a fraction of a percent of its weights). Only for deployed files:
    onnxruntime's offline optimizers (quant_pre_process) derive new names by appending to old
    ones, which can collide with short names ("shared mode is not supported for weight"), so
    quantization always starts from the exporter's file.
    """
    g = proto.graph
    keep = {v.name for v in g.input} | {v.name for v in g.output}
    names: dict[str, str] = {}

    def short(name: str) -> str:
        if not name or name in keep:
            return name
        return names.setdefault(name, f"t{len(names)}")

    for init in g.initializer:
        init.name = short(init.name)
    for i, node in enumerate(g.node):
        node.name = f"n{i}"
        node.input[:] = [short(x) for x in node.input]
        node.output[:] = [short(x) for x in node.output]
    for vi in g.value_info:
        vi.name = short(vi.name)


def write_with_metadata(src: Path, dst: Path, info: ModelInfo) -> None:
    """Copy an ONNX file to `dst` (atomically) with `info` as its metadata_props."""
    import onnx

    from lane_seg.models.export import set_metadata

    proto = onnx.load(str(src))
    compact_names(proto)
    set_metadata(proto, info.to_metadata())
    proto.producer_name = "lane_seg"
    tmp = temp_path(dst)
    onnx.save(proto, str(tmp))
    os.replace(tmp, dst)


@dataclass
class OpCounts:
    int8_convs: int
    float_convs: int
    int8_matmuls: int
    float_matmuls: int
    ops: dict[str, int] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        s = f"{self.int8_convs}/{self.int8_convs + self.float_convs} conv int8"
        if self.int8_matmuls + self.float_matmuls:
            s += f", {self.int8_matmuls}/{self.int8_matmuls + self.float_matmuls} matmul int8"
        return s


def count_ops(path: str | Path) -> OpCounts:
    """Count convolution/matmul kinds in an ONNX graph (any domain)."""
    import onnx

    ops = Counter(n.op_type for n in onnx.load(str(path)).graph.node)
    return OpCounts(
        sum(ops[o] for o in INT8_CONV_OPS),
        sum(ops[o] for o in FLOAT_CONV_OPS),
        sum(ops[o] for o in INT8_MATMUL_OPS),
        sum(ops[o] for o in FLOAT_MATMUL_OPS),
        dict(ops),
    )


def int8_op_counts(path: str | Path) -> OpCounts:
    """What onnxruntime's CPU provider runs after its graph optimizations (the same session
    options as lane_seg.runtime.engines, with the optimized graph written out)."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        opt = Path(tmp) / "optimized.onnx"
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads, so.inter_op_num_threads = 1, 1
        so.log_severity_level = 3  # the NCHWc "hardware specific" notice is expected here
        so.optimized_model_filepath = str(opt)
        ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        return count_ops(opt)


def _const(graph: Any, name: str) -> np.ndarray | None:
    from onnx import numpy_helper

    for init in graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for node in graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            return numpy_helper.to_array(node.attribute[0].t)
    return None


@dataclass
class QdqCheck:
    quant_nodes: int
    dequant_nodes: int
    weight_dq: int
    per_channel_weights: int
    zero_points: set[int]
    zp_dtypes: set[str]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def check_qdq(path: str | Path, symmetric: bool) -> QdqCheck:
    """Structural checks of a QDQ file.

    Every Conv weight must come from a DequantizeLinear of an int8 initializer with one scale
    per output channel (axis 0). symmetric=True (TensorRT): every Q/DQ zero point is 0 and
    int8. symmetric=False (onnxruntime): activation zero points are uint8, weight ones 0.
    """
    import onnx

    g = onnx.load(str(path)).graph
    producers = {o: n for n in g.node for o in n.output}
    qn = [n for n in g.node if n.op_type == "QuantizeLinear"]
    dq = [n for n in g.node if n.op_type == "DequantizeLinear"]
    problems: list[str] = []
    zps: set[int] = set()
    dtypes: set[str] = set()
    for n in qn + dq:
        zp = _const(g, n.input[2]) if len(n.input) > 2 and n.input[2] else None
        if zp is None:
            dtypes.add("none")
            continue
        dtypes.add(str(zp.dtype))
        zps.update(int(v) for v in np.unique(zp))
    weight_dq = per_channel = 0
    for conv in (n for n in g.node if n.op_type == "Conv"):
        src = producers.get(conv.input[1])
        if src is None or src.op_type != "DequantizeLinear":
            problems.append(f"{conv.name}: weight is not dequantized from int8 (float conv)")
            continue
        weight_dq += 1
        w = _const(g, src.input[0])
        scale = _const(g, src.input[1])
        axis = next((a.i for a in src.attribute if a.name == "axis"), 1)
        if w is None or w.dtype != np.int8:
            problems.append(f"{conv.name}: weight initializer is not int8")
        elif scale is not None and scale.ndim == 1 and scale.size == w.shape[0] and axis == 0:
            per_channel += 1
        else:
            problems.append(f"{conv.name}: weight scale is not per output channel on axis 0")
    if symmetric:
        if zps - {0}:
            problems.append(f"non-zero zero points {sorted(zps - {0})[:5]} (TensorRT needs 0)")
        if dtypes - {"int8"}:
            problems.append(f"zero-point types {sorted(dtypes)} (TensorRT needs int8)")
    elif "uint8" not in dtypes:
        problems.append("no uint8 activation quantization found")
    return QdqCheck(len(qn), len(dq), weight_dq, per_channel, zps, dtypes, problems)


def compare_outputs(fp32: Engine, int8: Engine, frames: Iterable[np.ndarray]) -> dict[str, float]:
    """int8 vs fp32 on the same frames: logit error and agreement of the 0.5-probability masks."""
    max_abs = 0.0
    sum_abs = 0.0
    inter = union = n = count = 0
    for x in frames:
        a, b = fp32.infer(x), int8.infer(x)
        d = np.abs(a - b)
        max_abs = max(max_abs, float(d.max()))
        sum_abs += float(d.sum())
        count += d.size
        ma, mb = a > 0, b > 0  # logit 0 == probability 0.5
        inter += int(np.count_nonzero(ma & mb))
        union += int(np.count_nonzero(ma | mb))
        n += 1
    if n == 0:
        raise LaneSegError("no frames to compare int8 and fp32 outputs on")
    return {
        "frames": n,
        "max_abs_logit_diff": max_abs,
        "mean_abs_logit_diff": sum_abs / max(1, count),
        "mask_agreement_iou": 100.0 * inter / union if union else 100.0,
    }
