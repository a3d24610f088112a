"""The one exporter: a checkpoint or module -> fp32 ONNX -> int8 QDQ calibrated on a
`CalibrationSet` -> metadata -> parity checks (docs/architecture.md, contract 2).

Every command that writes a model file goes through `export_model`: `lane-seg export`, `bench`
(when it is not handed the ONNX files), `models --latency` and `baselines --latency`, and
`quantize`. Only this module calls onnxruntime's quantizer (tests/test_architecture.py), and
the frames always come from `lane_seg.training.quant.calibration` (one rule for all).

The int8 file (onnxruntime, OpenVINO): QuantFormat.QDQ, uint8 activations per tensor (affine),
int8 weights per output channel (symmetric), activation ranges by min-max (or entropy,
percentile). The TensorRT-ready variant (`trt_out`): int8 activations AND weights, all zero
points 0, one Q/DQ pair per consumer, float biases (TensorRT fuses them itself).

Parity: the fp32 file against PyTorch on random inputs (lane_seg.models.export's tolerances:
a failure means the export is wrong), and each int8 file against the fp32 file on frames of the
calibration pool that calibration did not see (logit error and agreement of the masks: what
quantization costs, reported, not judged).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from lane_seg.artifact import INPUT_NAME, ModelInfo
from lane_seg.errors import LaneSegError
from lane_seg.models.checkpoint import load_model
from lane_seg.models.export import DEFAULT_OPSET, export_onnx, onnx_parity
from lane_seg.runtime.engines import OnnxRuntimeEngine
from lane_seg.training.quant.calibration import CalibrationSet
from lane_seg.training.quant.onnx_int8 import (
    OpCounts,
    compare_outputs,
    int8_op_counts,
    write_with_metadata,
)

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
PARITY_INPUTS = 2  # random inputs for fp32 vs PyTorch
PARITY_FRAMES = 8  # held-out frames for int8 vs fp32


@dataclass(frozen=True)
class Int8Layout:
    """How the onnxruntime int8 file is laid out. The defaults are what ships; the other
    settings exist to measure them (studies/int8_variants.py, README.md's speed section)."""

    operators: bool = False  # QuantFormat.QOperator (QLinearConv nodes) instead of QDQ
    per_channel: bool = True  # one weight scale per output channel
    reduce_range: bool = False  # 7-bit weights (room for AVX2's 16-bit vpmaddubsw sums)
    activations: str = "uint8"  # or "int8"

    def __post_init__(self) -> None:
        if self.activations not in ("uint8", "int8"):
            raise ValueError("activations must be 'uint8' or 'int8'")


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


def _ort_quant() -> Any:
    """onnxruntime.quantization, imported when first needed."""
    from onnxruntime import quantization

    return quantization


def _as_reader(frames: FrameReader) -> Any:
    """Wrap in a real CalibrationDataReader subclass (the quantizer checks the type)."""
    base = _ort_quant().CalibrationDataReader

    class _Reader(base):
        def get_next(self) -> dict[str, np.ndarray] | None:
            return frames.get_next()

        def rewind(self) -> None:
            frames.rewind()

    return _Reader()


def _quantize(
    fp32_path: Path,
    out_path: Path,
    frames: FrameReader,
    info: ModelInfo,
    method: str,
    layout: Int8Layout | None,
) -> Path:
    """Static int8 quantization of the exporter's fp32 file, `info` as its metadata; `layout`
    None: the TensorRT-ready symmetric variant."""
    q = _ort_quant()
    methods = {
        "minmax": q.CalibrationMethod.MinMax,
        "entropy": q.CalibrationMethod.Entropy,
        "percentile": q.CalibrationMethod.Percentile,
    }
    trt = layout is None
    layout = layout or Int8Layout(activations="int8")
    extra: dict[str, Any] = {"WeightSymmetric": True}
    if trt:
        # Biases stay float: TensorRT fuses them itself and has no int32 DequantizeLinear path.
        extra.update(ActivationSymmetric=True, DedicatedQDQPair=True, QuantizeBias=False)
    if method == "percentile":
        extra["CalibPercentile"] = 99.999
    act = q.QuantType.QInt8 if layout.activations == "int8" else q.QuantType.QUInt8
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # quant_pre_process reads the exporter's own names: its optimizers derive new names by
        # appending to old ones, which can collide with compacted ones (onnx_int8.compact_names).
        pre = Path(tmp) / "pre.onnx"
        q.quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        frames.rewind()
        q.quantize_static(
            str(pre),
            str(Path(tmp) / "q.onnx"),
            _as_reader(frames),
            quant_format=q.QuantFormat.QOperator if layout.operators else q.QuantFormat.QDQ,
            per_channel=layout.per_channel,
            reduce_range=layout.reduce_range,
            activation_type=act,
            weight_type=q.QuantType.QInt8,
            calibrate_method=methods[method],
            extra_options=extra,
        )
        write_with_metadata(Path(tmp) / "q.onnx", out_path, info)
    return out_path


@dataclass
class Exported:
    """The files `export_model` wrote, their metadata and what the parity checks found."""

    info: ModelInfo  # the fp32 file's
    fp32: Path
    int8: Path | None = None
    int8_trt: Path | None = None
    calibration: dict[str, Any] = field(default_factory=dict)  # as in the int8 metadata
    fp32_parity: dict[str, Any] = field(default_factory=dict)  # vs PyTorch
    int8_parity: dict[str, dict[str, float]] = field(default_factory=dict)  # per int8 file
    int8_ops: OpCounts | None = None  # what onnxruntime runs of the int8 file

    @property
    def ok(self) -> bool:
        """False when the fp32 file disagrees with PyTorch (an export bug, not quantization)."""
        return self.fp32_parity.get("ok", True)


def export_model(
    model: nn.Module | str | Path,
    fp32_out: str | Path,
    int8_out: str | Path | None = None,
    calibration: CalibrationSet | None = None,
    *,
    info: ModelInfo | None = None,
    method: str = "minmax",
    trt_out: str | Path | None = None,
    opset: int = DEFAULT_OPSET,
    check: bool = True,
    threads: int = 1,
    layout: Int8Layout = Int8Layout(),
) -> Exported:
    """Write the fp32 ONNX, and with `int8_out` / `trt_out` its int8 files calibrated on
    `calibration`; `model` is a checkpoint path or a module with its `info`; `layout` is the
    int8_out file's (the TensorRT file has its own)."""
    if isinstance(model, str | Path):
        model, info = load_model(model)
    if info is None:
        raise ValueError("export_model needs the ModelInfo of an in-memory module")
    if (int8_out or trt_out) and calibration is None:
        raise LaneSegError("an int8 file needs calibration frames (a dataset's train split)")
    if method not in CALIBRATION_METHODS:
        raise LaneSegError(f"calibration method must be one of {CALIBRATION_METHODS}")
    model = model.eval()
    fp32 = export_onnx(model, info, fp32_out, opset=opset)
    out = Exported(info, fp32)
    if check:
        out.fp32_parity = _fp32_parity(model, fp32, info)
    if calibration is None:
        return out
    out.calibration = {**calibration.identity(), "method": method}
    frames = FrameReader(calibration.inputs(info.preprocess))
    held_out = calibration.held_out_inputs(info.preprocess, PARITY_FRAMES) if check else []
    for path, trt in ((int8_out, False), (trt_out, True)):
        if path is None:
            continue
        precision = "int8-trt" if trt else "int8"
        calib = {**out.calibration, "symmetric": True} if trt else out.calibration
        qinfo = replace(info, precision=precision, calibration=calib)
        written = _quantize(fp32, Path(path), frames, qinfo, method, None if trt else layout)
        if trt:
            out.int8_trt = written
        else:
            out.int8, out.int8_ops = written, int8_op_counts(written)
        if held_out:
            out.int8_parity[precision] = _int8_parity(fp32, written, held_out, threads)
    return out


def _fp32_parity(model: nn.Module, path: Path, info: ModelInfo) -> dict[str, Any]:
    pre = info.preprocess
    x = np.random.default_rng(0).standard_normal((PARITY_INPUTS, 3, pre.height, pre.width))
    ok, diff = onnx_parity(model, path, x.astype(np.float32))
    return {"inputs": PARITY_INPUTS, "max_abs_diff": diff, "ok": ok}


def _int8_parity(
    fp32: Path, int8: Path, frames: list[np.ndarray], threads: int
) -> dict[str, float]:
    a = OnnxRuntimeEngine(fp32, threads, "onnxruntime-cpu")
    b = OnnxRuntimeEngine(int8, threads, "onnxruntime-cpu")
    return compare_outputs(a, b, frames)
