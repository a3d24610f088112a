"""Low-bit fake quantization and the bit-packed size."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from quant_helpers import stripe_batch, trained_tiny
from torch import nn

from lane_seg.errors import LaneSegError
from lane_seg.training.quant import lowbit as lb


def test_pack_codes_known_bytes_and_roundtrip():
    # 4 bits: -8 -> 0b0000, 7 -> 0b1111, 0 -> 0b1000, -1 -> 0b0111
    assert lb.pack_codes(np.array([-8, 7, 0, -1]), 4).tolist() == [0x0F, 0x87]
    # 2 bits (ternary): 1 -> 0b11, -1 -> 0b01, 0 -> 0b10; padded with zeros
    assert lb.pack_codes(np.array([1, -1, 0]), 2).tolist() == [0b11011000]
    # 1 bit: -1 -> 0, 0 -> 1
    assert lb.pack_codes(np.array([-1, 0, 0, -1, 0, 0, 0, 0, -1]), 1).tolist() == [
        0b01101111,
        0b00000000,
    ]
    rng = np.random.default_rng(0)
    for bits in (1, 2, 3, 4, 5, 8):
        codes = rng.integers(-(2 ** (bits - 1)), 2 ** (bits - 1), size=1001)
        packed = lb.pack_codes(codes, bits)
        assert packed.nbytes == math.ceil(1001 * bits / 8) == lb.packed_bytes(1001, bits)
        assert np.array_equal(lb.unpack_codes(packed, bits, 1001), codes)
    with pytest.raises(ValueError):
        lb.pack_codes(np.array([8]), 4)


def test_weight_quantizers_on_a_known_tensor():
    w = torch.tensor([[1.0, -0.6, 0.25, 0.0], [0.1, 0.2, -0.4, 0.05]])
    codes, scale = lb.quantize_weight(w, lb.parse_spec("W4A8"))
    assert torch.allclose(scale, torch.tensor([1 / 7, 0.4 / 7]))
    assert codes[0].tolist() == [7, -4, 2, 0] and codes.abs().max() <= 7
    t_codes, alpha = lb.quantize_weight(w, lb.parse_spec("ternary"))
    assert set(t_codes.unique().tolist()) <= {-1.0, 0.0, 1.0}
    assert t_codes[0].tolist() == [1, -1, 0, 0]  # threshold 0.7 * mean|w| = 0.32
    b_codes, b_alpha = lb.quantize_weight(w, lb.parse_spec("binary"))
    assert set(b_codes.unique().tolist()) == {-1.0, 1.0}
    assert torch.allclose(b_alpha, w.abs().mean(1))
    fx = lb.parse_spec("Q1.6/Q4.3")
    assert (fx.w_bits, fx.a_bits, fx.w_frac, fx.a_frac) == (8, 8, 6, 3)
    f_codes, none = lb.quantize_weight(w, fx)
    assert none is None and f_codes[0, 0] == 64  # 1.0 / 2^-6
    with pytest.raises(LaneSegError):
        lb.parse_spec("W99A8")
    with pytest.raises(LaneSegError):
        lb.parse_spec("int3")


def test_packed_file_size_of_a_known_conv(tmp_path):
    conv = nn.Conv2d(4, 8, 3, bias=True)  # 288 weights, 8 biases
    model = nn.Sequential(conv)
    spec = lb.parse_spec("W4A8")
    lb.apply_fake_quant(model, spec)
    size = lb.pack_model(model, spec, tmp_path / "w4.npz")
    assert size.weight_params == 288
    assert size.packed_weight_bytes == 144  # 288 * 4 bits
    assert size.scale_bytes == 8 * 4  # one fp32 scale per output channel
    assert size.float_bytes == 8 * 4 + 2 * 4  # bias + activation range (lo, hi)
    assert size.file_bytes == (tmp_path / "w4.npz").stat().st_size
    stored = np.load(tmp_path / "w4.npz")
    codes = lb.unpack_codes(stored["0.weight.packed"], 4, 288).reshape(8, 4, 3, 3)
    want, _ = lb.quantize_weight(conv.parametrizations.weight.original, spec)
    assert np.array_equal(codes, want.numpy())
    b = lb.parse_spec("binary")
    model_b = lb.apply_fake_quant(nn.Sequential(nn.Conv2d(4, 8, 3, bias=False)), b)
    assert lb.pack_model(model_b, b, tmp_path / "b.npz").packed_weight_bytes == 36


def test_fold_and_fake_quant_track_fp32_and_pass_gradients():
    model = trained_tiny()
    x = stripe_batch(4, seed=7)
    with torch.no_grad():
        ref = model(x)
        folded = lb.fold_batchnorm(model)
        assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
        assert torch.allclose(folded(x), ref, atol=1e-4)
    q = lb.apply_fake_quant(folded, lb.parse_spec("W8A8"))
    with torch.no_grad():
        q(x)  # observe ranges
    lb.set_observing(q, False)
    out = q(x)
    assert float((out - ref).abs().max()) < 0.1 * float(ref.max() - ref.min())
    out.sum().backward()
    grads = [p.grad for p in q.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    w4 = lb.apply_fake_quant(lb.fold_batchnorm(model), lb.parse_spec("W4A4"))
    with torch.no_grad():
        err4 = float((w4(x) - ref).abs().mean())
    assert err4 > float((out - ref).abs().mean())  # fewer bits, more error
