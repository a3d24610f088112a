"""torch.ao PTQ and QAT (through lane_seg.training.quant.torch_ao) on small models."""

from __future__ import annotations

import pytest
import torch
from quant_helpers import stripe_batch, trained_tiny
from torch import nn
from torch.utils.data import TensorDataset

from lane_seg.errors import LaneSegError
from lane_seg.training.quant import torch_ao as qt
from lane_seg.training.quant.qat import FinetuneConfig, finetune
from lane_seg.training.quant.sensitivity import layer_sensitivity, mixed_precision

VNNI = "processor : 0\nflags : fpu sse avx2 avx512f avx512_vnni\n"
AVX2 = "processor : 0\nflags : fpu sse avx avx2 fma\n"


def test_backend_follows_cpu_flags():
    assert qt.detect_backend(VNNI, "x86_64") == qt.CpuBackend(
        "x86", False, qt.detect_backend(VNNI, "x86_64").reason
    )
    assert qt.detect_backend("flags : avx2 avx_vnni\n", "x86_64").reduce_range is False
    avx2 = qt.detect_backend(AVX2, "x86_64")
    assert avx2.engine == "x86" and avx2.reduce_range
    assert "without VNNI" in avx2.reason
    assert qt.detect_backend("", "aarch64").engine == "qnnpack"


def test_qconfig_is_per_channel_symmetric_int8_weights_uint8_activations():
    qc = qt.make_qconfig("minmax", qt.detect_backend(AVX2, "x86_64"))
    w, a = qc.weight(), qc.activation()
    assert w.qscheme == torch.per_channel_symmetric and w.dtype == torch.qint8
    assert a.qscheme == torch.per_tensor_affine and a.dtype == torch.quint8
    assert a.reduce_range  # AVX2 without VNNI
    with pytest.raises(LaneSegError):
        qt.make_qconfig("nonsense")


def _tiny(transpose: bool = False) -> nn.Module:
    return trained_tiny(transpose)


@pytest.mark.parametrize("observer", qt.OBSERVERS)
def test_ptq_runs_int8_kernels_and_stays_close(observer):
    model = _tiny()
    x = stripe_batch(2, seed=9)
    calib = [stripe_batch(2, seed=s) for s in range(10, 16)]
    q = qt.ptq(model, x[:1], calib, observer)
    ops = qt.quantized_ops(q)
    assert ops["torch.ao.nn.intrinsic.quantized.ConvReLU2d"] == 4  # conv-bn-relu fused
    assert ops["torch.ao.nn.quantized.Conv2d"] == 1  # the head
    assert not any(isinstance(m, nn.BatchNorm2d) for m in q.modules())
    assert qt.float_compute_layers(q) == []
    with torch.inference_mode():
        ref, got = model(x), q(x)
    rng = float(ref.max() - ref.min())
    assert float((ref - got).abs().max()) < 0.1 * rng
    agree = ((ref > 0) == (got > 0)).float().mean()
    assert agree > 0.98


def test_transposed_conv_is_quantized_per_tensor():
    model = _tiny(transpose=True)
    x = stripe_batch(1, seed=3)
    q = qt.ptq(model, x, [stripe_batch(2, seed=s) for s in range(4)], "minmax")
    up = q.get_submodule("up")
    assert type(up).__module__.startswith("torch.ao.nn.quantized")
    w_up = up.weight()  # symmetric is stored as affine with zero point 0
    assert w_up.qscheme() == torch.per_tensor_affine and w_up.q_zero_point() == 0
    w = q.get_submodule("enc1.0").weight()
    assert w.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric)
    assert w.q_per_channel_scales().numel() == 8 and w.q_per_channel_axis() == 0
    assert int(w.q_per_channel_zero_points().abs().sum()) == 0


def test_qat_fine_tunes_freezes_and_converts_to_int8():
    model = _tiny()
    x = stripe_batch(16, seed=1)
    y = (x[:, :1] > 1.0).float()
    prepared = qt.prepare_qat(model, x[:1])
    assert any("FakeQuantize" in type(m).__name__ for m in prepared.modules())
    bce = nn.BCEWithLogitsLoss()
    cfg = FinetuneConfig(
        epochs=2, lr=1e-3, batch_size=4, freeze_bn_after=1, freeze_observers_after=1.5
    )
    log = finetune(prepared, TensorDataset(x, y), bce, cfg, qt.freeze_bn_stats, qt.freeze_observers)
    assert log.steps == 8 and log.bn_frozen_at == 4 and log.observers_frozen_at == 6
    fused = [m for m in prepared.modules() if type(m).__name__ == "ConvBnReLU2d"]
    assert fused and all(m.freeze_bn for m in fused)
    q = qt.convert(prepared)
    assert qt.quantized_ops(q)["torch.ao.nn.intrinsic.quantized.ConvReLU2d"] == 4
    with torch.inference_mode():
        fake, real = prepared.eval()(x), q(x)
    assert float((fake - real).abs().max()) < 0.05 * float(fake.max() - fake.min())


def test_transformer_models_keep_attention_and_norms_float():
    from lane_seg.models import build_model

    torch.manual_seed(0)
    model = build_model(
        "segformer", dims=(8, 16, 16, 16), heads=(1, 1, 1, 1), depths=(1, 1, 1, 1), decoder_dim=16
    ).eval()
    x = torch.randn(1, 3, 64, 64)
    q = qt.ptq(model, x, [torch.randn(1, 3, 64, 64) for _ in range(2)], "minmax")
    assert any(type(m) is nn.LayerNorm for m in q.modules())
    assert qt.quantized_ops(q)["torch.ao.nn.quantized.Conv2d"] > 0
    reasons = qt.float_kept_reasons(model)
    assert "LayerNorm" in reasons and "softmax" in " ".join(reasons).lower()
    with torch.inference_mode():
        assert torch.isfinite(q(x)).all()


def test_sensitivity_and_mixed_precision_budget():
    model = _tiny()
    x = stripe_batch(4, seed=5)
    calib = [stripe_batch(2, seed=s) for s in range(3)]
    ref = model(x).detach() > 0

    def score(m):
        with torch.inference_mode():
            p = m(x) > 0
        return 100.0 * float((p & ref).sum()) / max(1.0, float((p | ref).sum()))

    layers = qt.weight_layer_names(model)
    ranking = layer_sensitivity(model, x[:1], calib, score, 100.0, "minmax")
    assert sorted(r.layer for r in ranking) == sorted(layers)
    assert ranking[0].drop >= ranking[-1].drop
    loose = mixed_precision(model, x[:1], calib, score, 100.0, ranking, 100.0, "minmax")
    assert loose.float_layers == [] and loose.within_budget
    top2 = ranking[:2]  # an impossible budget: every ranked layer goes float, still over it
    strict = mixed_precision(model, x[:1], calib, score, 100.0, top2, -1.0, "minmax")
    assert not strict.within_budget and strict.float_layers == [r.layer for r in top2]
    assert [k for k, _ in strict.tried] == [0, 1, 2]
    assert qt.float_compute_layers(strict.model)  # those layers really run in float
