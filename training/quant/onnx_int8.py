"""int8 ONNX through onnxruntime's static quantizer, the TensorRT-ready variant, and checks of
what actually runs in int8.

- `quantize_qdq`: QuantFormat.QDQ, uint8 activations (per tensor, affine), int8 weights per
  output channel (symmetric), calibration method min-max / entropy / percentile, frames fed
  by `FrameReader` through lane_seg.preprocess.to_input from the training split only.
- `trt=True`: the explicit-quantization form TensorRT wants: int8 activations AND weights, all
  zero points 0 (ActivationSymmetric, WeightSymmetric), per-channel weight scales on axis 0,
  one dedicated Q/DQ pair per consumer, float biases (QuantizeBias off). `check_qdq`
  validates that structure here.
- `int8_op_counts`: loads the file in onnxruntime with full graph optimization, writes the
  optimized graph (SessionOptions.optimized_model_filepath) and counts which convolutions
  became QLinearConv / ConvInteger and which stayed float Conv. A QDQ file only says which
  tensors MAY be int8; this says what the CPU provider actually runs.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from lane_seg.artifact import INPUT_NAME, ModelInfo
from lane_seg.errors import LaneSegError
from lane_seg.outputs import temp_path
from lane_seg.runtime.engines import Engine

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
# What stays float in this path is whatever onnxruntime cannot fuse: LayerNormalization (no
# int8 CPU kernel) and, in QDQ form, every op whose neighbours are float. Attention Softmax is
# NOT kept float here: onnxruntime fuses DequantizeLinear -> Softmax -> QuantizeLinear into
# QLinearSoftmax even when the Softmax node itself is excluded, so the counts below report it.
INT8_CONV_OPS = {"QLinearConv", "ConvInteger", "QLinearConvTranspose"}
FLOAT_CONV_OPS = {"Conv", "FusedConv", "ConvTranspose", "NhwcFusedConv"}
INT8_MATMUL_OPS = {"QLinearMatMul", "MatMulInteger", "QGemm", "MatMulIntegerToFloat"}
FLOAT_MATMUL_OPS = {"MatMul", "Gemm", "FusedMatMul"}


def _ort_quant() -> Any:
    """onnxruntime.quantization, imported when first needed."""
    from onnxruntime import quantization

    return quantization


class FrameReader:
    """CalibrationDataReader over preprocessed frames (float32 1x3xHxW), rewindable."""

    def __init__(self, frames: Iterable[np.ndarray]) -> None:
        self.frames = [np.ascontiguousarray(f, dtype=np.float32) for f in frames]
        if not self.frames:
            raise LaneSegError("no calibration frames for onnxruntime quantization")
        self._i = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._i >= len(self.frames):
            return None
        self._i += 1
        return {INPUT_NAME: self.frames[self._i - 1]}

    def rewind(self) -> None:
        self._i = 0

    def __len__(self) -> int:
        return len(self.frames)


def _as_reader(frames: FrameReader) -> Any:
    """Wrap in a real CalibrationDataReader subclass (the quantizer checks the type)."""
    base = _ort_quant().CalibrationDataReader

    class _Reader(base):
        def get_next(self) -> dict[str, np.ndarray] | None:
            return frames.get_next()

        def rewind(self) -> None:
            frames.rewind()

    return _Reader()


def quantize_qdq(
    fp32_path: str | Path,
    out_path: str | Path,
    frames: FrameReader,
    info: ModelInfo,
    method: str = "minmax",
    trt: bool = False,
    nodes_to_exclude: list[str] | None = None,
) -> Path:
    """Static int8 QDQ quantization of an fp32 ONNX file; metadata copied and updated."""
    q = _ort_quant()
    methods = {
        "minmax": q.CalibrationMethod.MinMax,
        "entropy": q.CalibrationMethod.Entropy,
        "percentile": q.CalibrationMethod.Percentile,
    }
    if method not in methods:
        raise LaneSegError(f"calibration method must be one of {CALIBRATION_METHODS}")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    extra = {"WeightSymmetric": True}
    if trt:
        # Biases stay float: TensorRT fuses them itself and has no int32 DequantizeLinear path.
        extra.update(ActivationSymmetric=True, DedicatedQDQPair=True, QuantizeBias=False)
    if method == "percentile":
        extra["CalibPercentile"] = 99.999
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        q.quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        frames.rewind()
        q.quantize_static(
            str(pre),
            str(Path(tmp) / "q.onnx"),
            _as_reader(frames),
            quant_format=q.QuantFormat.QDQ,
            per_channel=True,
            activation_type=q.QuantType.QInt8 if trt else q.QuantType.QUInt8,
            weight_type=q.QuantType.QInt8,
            calibrate_method=methods[method],
            nodes_to_exclude=nodes_to_exclude or [],
            extra_options=extra,
        )
        write_with_metadata(Path(tmp) / "q.onnx", out_path, info)
    return out_path


def quantize_int8(
    fp32_path: str | Path,
    out_path: str | Path,
    inputs: Iterable[np.ndarray],
    info: ModelInfo,
    calibration: dict[str, Any],
    method: str = "minmax",
) -> Path:
    """The deployable int8 QDQ file: metadata says int8 and names the calibration frames."""
    qinfo = replace(info, precision="int8", calibration=calibration)
    return quantize_qdq(fp32_path, out_path, FrameReader(inputs), qinfo, method)


def compact_names(proto: Any) -> None:
    """Short node and tensor names (n12, t34); graph inputs and outputs keep theirs.

    The exporter's and quantizer's names ("/down.0/down.0.0/Conv_output_0_QuantizeLinear...")
    are ~35 kB in a 0.6 MB int8 U-Net and do nothing at inference. Applied to every file we
    write (fp32 too), so size ratios compare like with like. Only for deployed files:
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
