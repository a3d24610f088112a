"""Every use of torch.ao.quantization in lane_seg lives in this one module.

torch.ao.quantization (FX graph mode: prepare_fx / prepare_qat_fx / convert_fx) is deprecated
upstream in favour of torchao's pt2e flow. Keeping it behind this module means the rest of the
code (report, sensitivity, CLI) speaks only in plain terms - "prepare for PTQ", "calibrate",
"convert", "which ops are int8" - and a move to pt2e touches one file.

The recipe: conv-bn-relu fused before observing; weights int8 per-channel symmetric
(per output channel, zero-point 0); activations uint8 per-tensor affine; the activation observer
is selectable (min-max, moving-average, histogram). The backend follows the CPU: x86 (fbgemm +
oneDNN) on x86-64, with reduce_range (7-bit activations) on AVX2 CPUs without VNNI, where the
u8*s8 multiply-add instruction (vpmaddubsw) can saturate its int16 intermediate; qnnpack on ARM.

Layers kept in float, and why (the same set for every architecture, see FLOAT_KEPT):
- LayerNorm / layer_norm: normalises over channels with statistics computed per token; an int8
  input grid loses the small variances that matter, and fbgemm has no fused int8 kernel for it
  that is faster than dequantize + float.
- Softmax / softmax (SegFormer attention): its output spans 1e-4..1 within one row; uint8 with
  one scale turns most attention weights into exact zeros.
- matmul / bmm (attention q@k^T and attn@v): there is no static-int8 FX lowering for
  activation x activation matmul on x86; it runs as float between dequantize and quantize.
- GELU: no quantized kernel on x86; left float rather than approximated.
- ConvTranspose2d is quantized, but with per-TENSOR symmetric weights: torch.ao refuses
  per-channel weight observers for transposed convs ("not supported yet for ConvTranspose").
- Transformer blocks as a whole (SegFormer: Linear q/kv/proj/fc1/fc2 too) stay float in THIS
  path: torch 2.13's FX prepare passes quantized tensors through flatten/transpose/reshape into
  LayerNorm modules whose qconfig is None (it ignores the None and then crashes in
  native_batch_norm on a QuantizedCPU tensor). So for a model that contains any FLOAT_KEPT
  module, only its convolutions are quantized (`conv_only_scope`); every conv of SegFormer
  (patch embeddings, spatial reduction, depthwise Mix-FFN, decoder) runs int8. The onnxruntime
  path quantizes SegFormer's MatMul/Gemm too.
"""

from __future__ import annotations

import copy
import operator
import platform
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from lane_seg.errors import LaneSegError
from lane_seg.runtime.hwinfo import cpu_flags

with warnings.catch_warnings():
    # The deprecation notice is the reason this module exists; say it once in the docs, not on
    # every import.
    warnings.simplefilter("ignore", DeprecationWarning)
    from torch.ao.nn.intrinsic import qat as _nniqat
    from torch.ao.quantization import (
        HistogramObserver,
        MinMaxObserver,
        MovingAverageMinMaxObserver,
        MovingAveragePerChannelMinMaxObserver,
        PerChannelMinMaxObserver,
        QConfig,
        QConfigMapping,
        disable_observer,
    )
    from torch.ao.quantization.fake_quantize import FakeQuantize
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx, prepare_qat_fx

OBSERVERS = ("minmax", "moving-average", "histogram")
BACKENDS = ("x86", "fbgemm", "qnnpack")

# Layer types left in float; the reason is printed in the report (see the module docstring).
FLOAT_KEPT: dict[Any, str] = {
    nn.LayerNorm: "LayerNorm: per-token statistics lose precision on an int8 grid",
    F.layer_norm: "layer_norm: per-token statistics lose precision on an int8 grid",
    nn.Softmax: "Softmax: attention weights 1e-4..1 collapse to 0 with one uint8 scale",
    F.softmax: "softmax: attention weights 1e-4..1 collapse to 0 with one uint8 scale",
    torch.softmax: "softmax: attention weights 1e-4..1 collapse to 0 with one uint8 scale",
    "softmax": "softmax: attention weights 1e-4..1 collapse to 0 with one uint8 scale",
    torch.matmul: "matmul (attention): no static int8 activation x activation kernel on x86",
    operator.matmul: "matmul (attention): no static int8 activation x activation kernel on x86",
    torch.bmm: "bmm (attention): no static int8 activation x activation kernel on x86",
    nn.GELU: "GELU: no quantized kernel on x86",
    F.gelu: "gelu: no quantized kernel on x86",
}
TRANSFORMER_LINEAR_REASON = (
    "Linear inside transformer blocks: torch 2.13 FX prepare lets quantized tensors reach the "
    "float LayerNorms through flatten/transpose, so only convs are quantized in such models "
    "(the onnxruntime int8 path quantizes these MatMuls)"
)
# Module types whose weights can only be observed per tensor.
PER_TENSOR_WEIGHT_TYPES = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
WEIGHT_LAYER_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, *PER_TENSOR_WEIGHT_TYPES)


@dataclass(frozen=True)
class CpuBackend:
    """Which torch quantized engine to use on this CPU, and whether to reduce the range."""

    engine: str
    reduce_range: bool
    reason: str


def detect_backend(cpuinfo: str | None = None, machine: str | None = None) -> CpuBackend:
    """x86 with VNNI: x86, full range. x86 AVX2 without VNNI: x86 + reduce_range. ARM: qnnpack.

    VNNI (avx512_vnni or avx_vnni) multiplies u8*s8 and accumulates straight into int32; without
    it fbgemm uses vpmaddubsw, whose int16 pair-sum saturates for full-range uint8 activations,
    hence 7-bit activations there.
    """
    machine = (machine or platform.machine()).lower()
    if machine in ("aarch64", "arm64") or machine.startswith("arm"):
        return CpuBackend("qnnpack", False, f"{machine}: ARM CPU, qnnpack")
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    flags = cpu_flags(cpuinfo)
    vnni = sorted(flags & {"avx512_vnni", "avx_vnni"})
    if vnni:
        return CpuBackend("x86", False, f"{machine}: VNNI ({', '.join(vnni)}), full 8-bit range")
    if "avx2" in flags or not flags:
        what = "AVX2 without VNNI" if flags else "CPU flags unknown"
        return CpuBackend("x86", True, f"{machine}: {what}, reduce_range (7-bit activations)")
    return CpuBackend("x86", True, f"{machine}: no AVX2, reduce_range (7-bit activations)")


def set_engine(backend: CpuBackend) -> None:
    engines = torch.backends.quantized.supported_engines
    if backend.engine not in engines:
        raise LaneSegError(
            f"quantized engine {backend.engine!r} is not in this torch build ({engines}); "
            "pick another with --backend"
        )
    torch.backends.quantized.engine = backend.engine


def _activation_observer(observer: str, reduce_range: bool) -> Any:
    kinds = {
        "minmax": MinMaxObserver,
        "moving-average": MovingAverageMinMaxObserver,
        "histogram": HistogramObserver,
    }
    if observer not in kinds:
        raise LaneSegError(f"observer must be one of {OBSERVERS}, got {observer!r}")
    return kinds[observer].with_args(
        dtype=torch.quint8, qscheme=torch.per_tensor_affine, reduce_range=reduce_range
    )


def make_qconfig(
    observer: str = "histogram",
    backend: CpuBackend | None = None,
    qat: bool = False,
    per_channel: bool = True,
) -> QConfig:
    """uint8 affine activations; int8 symmetric weights (per channel unless told otherwise).

    For QAT the same observers sit inside FakeQuantize modules; the histogram observer is too
    slow per training step, so QAT uses moving-average whatever `observer` says.
    """
    backend = backend or detect_backend()
    rr = backend.reduce_range
    if per_channel:
        w_obs = PerChannelMinMaxObserver if not qat else MovingAveragePerChannelMinMaxObserver
        w_args = {"qscheme": torch.per_channel_symmetric, "ch_axis": 0}
    else:
        w_obs = MinMaxObserver if not qat else MovingAverageMinMaxObserver
        w_args = {"qscheme": torch.per_tensor_symmetric}
    w_args.update(dtype=torch.qint8, quant_min=-127, quant_max=127)
    if not qat:
        return QConfig(
            activation=_activation_observer(observer, rr), weight=w_obs.with_args(**w_args)
        )
    qmax = 127 if rr else 255
    act = FakeQuantize.with_args(
        observer=MovingAverageMinMaxObserver,
        quant_min=0,
        quant_max=qmax,
        dtype=torch.quint8,
        qscheme=torch.per_tensor_affine,
    )
    weight = FakeQuantize.with_args(observer=w_obs, **w_args)
    return QConfig(activation=act, weight=weight)


def make_qconfig_mapping(  # noqa: PLR0913
    model: nn.Module,
    observer: str = "histogram",
    backend: CpuBackend | None = None,
    qat: bool = False,
    float_layers: Iterable[str] = (),
    only_layers: Iterable[str] | None = None,
) -> QConfigMapping:
    """Global int8 qconfig, FLOAT_KEPT types in float, plus per-layer overrides.

    float_layers: module names kept in float (mixed precision).
    only_layers: when given, ONLY these module names are quantized (per-layer sensitivity).
    """
    qc = make_qconfig(observer, backend, qat)
    qc_t = make_qconfig(observer, backend, qat, per_channel=False)
    mapping = QConfigMapping()
    if only_layers is None:
        mapping.set_global(qc)
        for t in PER_TENSOR_WEIGHT_TYPES:
            mapping.set_object_type(t, qc_t)
        for t in FLOAT_KEPT:
            mapping.set_object_type(t, None)
        # By name too: torch 2.13's FX prepare still quantizes some LayerNorm modules whose
        # input comes from a quantized shape op when only the object type says None.
        for name, mod in model.named_modules():
            if type(mod) in FLOAT_KEPT:
                mapping.set_module_name(name, None)
        for name in float_layers:
            mapping.set_module_name(name, None)
    else:
        mapping.set_global(None)
        only = set(only_layers)
        for name, mod in model.named_modules():
            if name in only:
                per_tensor = isinstance(mod, PER_TENSOR_WEIGHT_TYPES)
                mapping.set_module_name(name, qc_t if per_tensor else qc)
    return mapping


def conv_only_scope(model: nn.Module, float_layers: Iterable[str] = ()) -> list[str] | None:
    """For models with transformer parts (any FLOAT_KEPT module): the conv layers to quantize.

    None for pure CNNs (everything quantized by the global qconfig).
    """
    if not any(type(m) in FLOAT_KEPT for m in model.modules()):
        return None
    skip = set(float_layers)
    convs = (nn.Conv1d, nn.Conv2d, nn.Conv3d, *PER_TENSOR_WEIGHT_TYPES)
    return [n for n, m in model.named_modules() if isinstance(m, convs) and n not in skip]


def _trace_error(model: nn.Module, exc: Exception) -> LaneSegError:
    return LaneSegError(
        f"{type(model).__name__} cannot be traced by torch.fx for quantization ({exc}); "
        "keep data-dependent control flow out of forward() or quantize it with the ONNX path"
    )


def _prepare(
    model: nn.Module,
    example: torch.Tensor,
    observer: str,
    backend: CpuBackend | None,
    float_layers: Iterable[str],
    only_layers: Iterable[str] | None,
    qat: bool,
) -> nn.Module:
    """Shared by PTQ (eval copy, observers) and QAT (train copy, fake-quant): backend, qconfig
    mapping, FX prepare, and one clear error when the model cannot be traced."""
    backend = backend or detect_backend()
    set_engine(backend)
    if only_layers is None:
        only_layers = conv_only_scope(model, float_layers)
    mapping = make_qconfig_mapping(model, observer, backend, qat, float_layers, only_layers)
    m = copy.deepcopy(model)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if qat:
                return prepare_qat_fx(m.train(), mapping, (example,))
            return prepare_fx(m.eval(), mapping, (example,))
    except (torch.fx.proxy.TraceError, TypeError, RuntimeError) as exc:
        raise _trace_error(model, exc) from exc


def prepare_ptq(
    model: nn.Module,
    example: torch.Tensor,
    observer: str = "histogram",
    backend: CpuBackend | None = None,
    float_layers: Iterable[str] = (),
    only_layers: Iterable[str] | None = None,
) -> nn.Module:
    """Copy of `model` in eval mode with conv-bn(-relu) fused and observers inserted."""
    return _prepare(model, example, observer, backend, float_layers, only_layers, qat=False)


@torch.no_grad()
def calibrate(prepared: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Run calibration batches through the observers; returns the number of frames seen."""
    prepared.eval()
    n = 0
    for x in batches:
        prepared(x)
        n += int(x.shape[0])
    if n == 0:
        raise LaneSegError("calibration saw no frames; give a --calib dataset with a train split")
    return n


def convert(prepared: nn.Module) -> nn.Module:
    """Observed (or QAT) model -> int8 model running quantized kernels on the chosen engine."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = convert_fx(copy.deepcopy(prepared).eval())
    return out.eval()


def ptq(
    model: nn.Module,
    example: torch.Tensor,
    batches: Iterable[torch.Tensor],
    observer: str = "histogram",
    backend: CpuBackend | None = None,
    float_layers: Iterable[str] = (),
    only_layers: Iterable[str] | None = None,
) -> nn.Module:
    """Static post-training quantization in one call: prepare, calibrate, convert."""
    prepared = prepare_ptq(model, example, observer, backend, float_layers, only_layers)
    calibrate(prepared, batches)
    return convert(prepared)


def prepare_qat(
    model: nn.Module,
    example: torch.Tensor,
    backend: CpuBackend | None = None,
    float_layers: Iterable[str] = (),
) -> nn.Module:
    """Copy of a (converged fp32) model in train mode with fused conv-bn and fake-quant."""
    return _prepare(model, example, "moving-average", backend, float_layers, None, qat=True)


def freeze_bn_stats(qat_model: nn.Module) -> None:
    """Stop updating BN running statistics in the fused QAT conv-bn modules."""
    qat_model.apply(_nniqat.freeze_bn_stats)


def freeze_observers(qat_model: nn.Module) -> None:
    """Stop moving the quantization ranges; fake-quant keeps using the frozen ones."""
    qat_model.apply(disable_observer)


def quantized_ops(model: nn.Module) -> Counter[str]:
    """What a converted model actually runs in int8: quantized module types and graph ops."""
    counts: Counter[str] = Counter()
    for mod in model.modules():
        mod_path = type(mod).__module__
        if ".quantized" in mod_path and "reference" not in mod_path:
            counts[f"{mod_path.split('.modules')[0]}.{type(mod).__name__}"] += 1
    graph = getattr(model, "graph", None)
    if graph is not None:
        for node in graph.nodes:
            if node.op == "call_function":
                name = str(node.target)
                if "quantized" in name:
                    counts[name] += 1
    return counts


def float_compute_layers(model: nn.Module) -> list[str]:
    """Names of weight layers that still run in float after convert (mixed precision, kept)."""
    return [
        name
        for name, mod in model.named_modules()
        if type(mod) in WEIGHT_LAYER_TYPES or type(mod) in (nn.LayerNorm,)
    ]


def weight_layer_names(model: nn.Module) -> list[str]:
    """Quantizable layers, in definition order: convs, transposed convs, linears."""
    return [name for name, mod in model.named_modules() if isinstance(mod, WEIGHT_LAYER_TYPES)]


def float_kept_reasons(model: nn.Module) -> dict[str, str]:
    """For this model: which layer types stay float, and why (only those it contains)."""
    found: dict[str, str] = {}
    for mod in model.modules():
        if type(mod) in FLOAT_KEPT:
            found[type(mod).__name__] = FLOAT_KEPT[type(mod)]
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception:  # noqa: BLE001 - best effort: untraceable models fail later, clearly
        return found
    for node in graph.nodes:
        if node.op in ("call_function", "call_method") and node.target in FLOAT_KEPT:
            found[getattr(node.target, "__name__", str(node.target))] = FLOAT_KEPT[node.target]
    if conv_only_scope(model) is not None and any(
        isinstance(m, nn.Linear) for m in model.modules()
    ):
        found["Linear"] = TRANSFORMER_LINEAR_REASON
    return found
