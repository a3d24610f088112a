"""The low-bit study: fake-quant QAT below int8 and the real, bit-packed size of the result.

Plain torch (no torch.ao): weights go through a parametrization that fake-quantizes them on
every forward (straight-through estimator in the backward pass), and the input of every weight
layer goes through an activation fake-quantizer, so a fine-tuned model carries exactly the
arithmetic a W<b>A<b> kernel would do. BatchNorm is folded into the convolutions first
(`fold_batchnorm`), so the quantized weights ARE the deployed weights.

Formats (`parse_spec`):
  W8A8, W4A8, W4A4      integer: weights per output channel symmetric (b bits, zero-point 0,
                        one fp32 scale per channel); activations per tensor affine, b bits, with
                        a running min/max (frozen after a configurable point)
  Qm.n/Qp.q             fixed point: weights Qm.n, activations Qp.q; 1 sign + m integer + n
                        fraction bits; step 2^-n, range [-2^m, 2^m - 2^-n], no scale stored
  ternary, binary       weights {-a, 0, +a} (2 bits, TWN threshold 0.7 mean|w|) or {-a, +a}
                        (1 bit, a = mean|w|), one fp32 `a` per output channel; activations A8

Size: `pack_model` bit-packs every weight tensor's integer codes at the stated width with
numpy (`pack_codes`), stores scales and the remaining float parameters (biases, norms) as
float32, writes them with `numpy.savez`, and the size reported is that file's size on disk.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from torch.nn.utils import parametrize

from lane_seg.errors import LaneSegError

WEIGHT_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.ConvTranspose2d)
DEFAULT_SPECS = ("W8A8", "W4A8", "W4A4", "Q1.6/Q4.3", "ternary", "binary")


@dataclass(frozen=True)
class LowBitSpec:
    """One point of the study. weight: int | fixed | ternary | binary; activations int | fixed."""

    name: str
    weight: str
    w_bits: int
    a_bits: int
    w_frac: int = 0  # fixed point: fraction bits (step 2^-frac)
    a_kind: str = "int"
    a_frac: int = 0


_INT = re.compile(r"^W(\d+)A(\d+)$", re.IGNORECASE)
_FIXED = re.compile(r"^Q(\d+)\.(\d+)/Q(\d+)\.(\d+)$", re.IGNORECASE)


def parse_spec(text: str) -> LowBitSpec:
    """'W4A8', 'Q1.6/Q4.3' (weights/activations), 'ternary', 'binary'."""
    t = text.strip()
    if m := _INT.match(t):
        wb, ab = int(m[1]), int(m[2])
        if not (2 <= wb <= 16 and 2 <= ab <= 16):
            raise LaneSegError(f"{t}: bit widths must be 2..16")
        return LowBitSpec(t.upper(), "int", wb, ab)
    if m := _FIXED.match(t):
        wi, wf, ai, af = (int(m[i]) for i in range(1, 5))
        wb, ab = 1 + wi + wf, 1 + ai + af
        if wb > 16 or ab > 16:
            raise LaneSegError(f"{t}: at most 16 bits (1 sign + m + n)")
        return LowBitSpec(t.upper(), "fixed", wb, ab, wf, "fixed", af)
    if t.lower() == "ternary":
        return LowBitSpec("ternary", "ternary", 2, 8)
    if t.lower() == "binary":
        return LowBitSpec("binary", "binary", 1, 8)
    raise LaneSegError(
        f"unknown low-bit format {text!r}; use e.g. W8A8, W4A8, W4A4, Q1.6/Q4.3, ternary, binary"
    )


def _channel_axis(module: nn.Module) -> int:
    return 1 if isinstance(module, nn.ConvTranspose2d) else 0


def _per_channel(x: torch.Tensor, axis: int) -> torch.Tensor:
    """[C, rest] view of `x` with channel `axis` first."""
    return x.transpose(0, axis).reshape(x.shape[axis], -1)


def _bcast(v: torch.Tensor, like: torch.Tensor, axis: int) -> torch.Tensor:
    shape = [1] * like.dim()
    shape[axis] = -1
    return v.reshape(shape)


def quantize_weight(
    w: torch.Tensor, spec: LowBitSpec, axis: int = 0
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Integer codes and per-channel scales (None for fixed point, whose step is 2^-n).

    The dequantized weight is codes * scale (broadcast on `axis`), or codes * 2^-n.
    """
    w = w.detach()
    flat = _per_channel(w, axis)
    if spec.weight == "int":
        qmax = 2 ** (spec.w_bits - 1) - 1
        scale = flat.abs().amax(dim=1).clamp_min(1e-12) / qmax
        codes = torch.clamp(torch.round(w / _bcast(scale, w, axis)), -qmax, qmax)
        return codes, scale
    if spec.weight == "fixed":
        step = 2.0**-spec.w_frac
        lo, hi = -(2 ** (spec.w_bits - 1)), 2 ** (spec.w_bits - 1) - 1
        return torch.clamp(torch.round(w / step), lo, hi), None
    if spec.weight == "ternary":
        delta = 0.7 * flat.abs().mean(dim=1)
        mask = flat.abs() > delta[:, None]
        alpha = (flat.abs() * mask).sum(1) / mask.sum(1).clamp_min(1)
        codes = torch.sign(w) * (w.abs() > _bcast(delta, w, axis))
        return codes, alpha.clamp_min(1e-12)
    if spec.weight == "binary":
        alpha = flat.abs().mean(dim=1).clamp_min(1e-12)
        codes = torch.where(w >= 0, 1.0, -1.0)
        return codes, alpha
    raise ValueError(spec.weight)


def dequantize_weight(
    codes: torch.Tensor, scale: torch.Tensor | None, spec: LowBitSpec, axis: int = 0
) -> torch.Tensor:
    if scale is None:
        return codes * 2.0**-spec.w_frac
    return codes * _bcast(scale, codes, axis)


class WeightFakeQuant(nn.Module):
    """Parametrization: weight -> dequantize(quantize(weight)), gradient passed straight."""

    def __init__(self, spec: LowBitSpec, axis: int) -> None:
        super().__init__()
        self.spec, self.axis = spec, axis

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        codes, scale = quantize_weight(w, self.spec, self.axis)
        wq = dequantize_weight(codes, scale, self.spec, self.axis)
        return w + (wq - w).detach()


class ActFakeQuant(nn.Module):
    """Per-tensor activation fake-quant. int: affine with a running (EMA) min/max that stops
    moving when `observing` is False; fixed: step 2^-n, signed range, nothing observed."""

    def __init__(self, spec: LowBitSpec, momentum: float = 0.01) -> None:
        super().__init__()
        self.spec, self.momentum = spec, momentum
        self.observing = True
        self.register_buffer("lo", torch.tensor(0.0))
        self.register_buffer("hi", torch.tensor(0.0))
        self.register_buffer("seen", torch.tensor(0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.spec.a_kind == "fixed":
            step = 2.0**-self.spec.a_frac
            lim = 2 ** (self.spec.a_bits - 1)
            xq = torch.clamp(torch.round(x / step), -lim, lim - 1) * step
            return x + (xq - x).detach()
        if self.observing:
            lo, hi = x.detach().amin().clamp(max=0), x.detach().amax().clamp(min=0)
            if int(self.seen) == 0:
                self.lo.copy_(lo)
                self.hi.copy_(hi)
            else:
                self.lo.lerp_(lo, self.momentum)
                self.hi.lerp_(hi, self.momentum)
            self.seen += 1
        levels = 2**self.spec.a_bits - 1
        scale = ((self.hi - self.lo) / levels).clamp_min(1e-8)
        zp = torch.round(-self.lo / scale)
        q = torch.clamp(torch.round(x / scale) + zp, 0, levels)
        xq = (q - zp) * scale
        return x + (xq - x).detach()


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Conv + BatchNorm (eval statistics) -> one conv, through torch.fx; a traced copy.

    Uses torch.fx.experimental.optimization.fuse (not torch.ao), which folds every
    Conv{1,2,3}d followed directly by its BatchNorm.
    """
    from torch.fx.experimental.optimization import fuse

    try:
        return fuse(model.eval(), inplace=False)
    except Exception as exc:  # noqa: BLE001 - tracing errors come in many types
        raise LaneSegError(f"cannot fold BatchNorm in {type(model).__name__}: {exc}") from exc


def apply_fake_quant(model: nn.Module, spec: LowBitSpec) -> nn.Module:
    """Add weight and input fake-quant to every Conv/Linear layer, in place; returns `model`."""
    count = 0
    for module in list(model.modules()):
        if not isinstance(module, WEIGHT_TYPES) or parametrize.is_parametrized(module):
            continue
        parametrize.register_parametrization(
            module, "weight", WeightFakeQuant(spec, _channel_axis(module))
        )
        module.input_fq = ActFakeQuant(spec)
        module.register_forward_pre_hook(lambda mod, args: (mod.input_fq(args[0]), *args[1:]))
        count += 1
    if count == 0:
        raise LaneSegError(f"{type(model).__name__} has no Conv/Linear layer to quantize")
    return model


def set_observing(model: nn.Module, on: bool) -> None:
    """Freeze (False) or resume (True) the activation ranges."""
    for m in model.modules():
        if isinstance(m, ActFakeQuant):
            m.observing = on


# ---------------------------------------------------------------- bit packing and real size


def pack_codes(codes: np.ndarray, bits: int) -> np.ndarray:
    """Signed integer codes (each in the `bits`-bit two's-complement range) -> packed uint8.

    Codes are offset to unsigned (c + 2^(bits-1)), written as `bits` bits each, most
    significant first, and np.packbits fills bytes; ceil(n * bits / 8) bytes for n codes.
    """
    c = np.asarray(codes).astype(np.int64).ravel()
    off = 2 ** (bits - 1)
    u = c + off
    if u.size and (u.min() < 0 or u.max() >= 2**bits):
        raise ValueError(f"codes outside the {bits}-bit range")
    shifts = np.arange(bits - 1, -1, -1, dtype=np.int64)
    bitplanes = ((u[:, None] >> shifts) & 1).astype(np.uint8)
    return np.packbits(bitplanes.ravel())


def unpack_codes(packed: np.ndarray, bits: int, count: int) -> np.ndarray:
    """Inverse of pack_codes: the first `count` codes as int64."""
    b = np.unpackbits(np.asarray(packed, dtype=np.uint8))[: count * bits].reshape(count, bits)
    weights = 2 ** np.arange(bits - 1, -1, -1, dtype=np.int64)
    return (b.astype(np.int64) @ weights) - 2 ** (bits - 1)


def packed_bytes(count: int, bits: int) -> int:
    return math.ceil(count * bits / 8)


def _code_bits(spec: LowBitSpec) -> int:
    """Ternary codes {-1,0,1} need 2 bits; binary {-1,+1} is stored as 1 bit (0 -> -1)."""
    return spec.w_bits


@dataclass
class PackedSize:
    path: Path
    file_bytes: int
    weight_params: int
    packed_weight_bytes: int
    scale_bytes: int
    float_bytes: int

    @property
    def bits_per_weight(self) -> float:
        return 8.0 * (self.packed_weight_bytes + self.scale_bytes) / max(1, self.weight_params)


def pack_model(model: nn.Module, spec: LowBitSpec, path: str | Path) -> PackedSize:
    """Write the deployable low-bit weights of a fake-quant model and measure the file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    weight_params = packed_w = scale_b = float_b = 0
    packed_names: set[str] = set()
    for name, module in model.named_modules():
        if not (isinstance(module, WEIGHT_TYPES) and parametrize.is_parametrized(module)):
            continue
        w = module.parametrizations.weight.original.detach()
        axis = _channel_axis(module)
        codes, scale = quantize_weight(w, spec, axis)
        c = codes.cpu().numpy().astype(np.int64)
        if spec.weight == "binary":
            c = (c > 0).astype(np.int64) - 1  # {-1,+1} -> {-1, 0} fits 1-bit two's complement
        packed = pack_codes(c, _code_bits(spec))
        arrays[f"{name}.weight.packed"] = packed
        arrays[f"{name}.weight.shape"] = np.asarray(w.shape, dtype=np.int32)
        weight_params += w.numel()
        packed_w += packed.nbytes
        if scale is not None:
            s = scale.cpu().numpy().astype(np.float32)
            arrays[f"{name}.weight.scale"] = s
            scale_b += s.nbytes
        packed_names.add(f"{name}.parametrizations.weight.original")
    for pname, p in model.state_dict().items():
        if pname in packed_names or not p.is_floating_point():
            continue
        if ".input_fq." in pname or pname.startswith("input_fq."):
            v = p.cpu().numpy().astype(np.float32).reshape(-1)
            arrays[pname] = v  # activation ranges: needed to run the model
            float_b += v.nbytes
            continue
        v = p.detach().cpu().numpy().astype(np.float32)
        arrays[pname] = v
        float_b += v.nbytes
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return PackedSize(path, path.stat().st_size, weight_params, packed_w, scale_b, float_b)
