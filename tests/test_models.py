"""Models: registry, shapes, complexity counting, checkpoints and ONNX parity for all four."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lane_seg.artifact import ModelInfo
from lane_seg.errors import LaneSegError
from lane_seg.models import build_model, check_input_size, count_macs, count_params, model_names
from lane_seg.models.checkpoint import load_checkpoint, load_model, save_checkpoint
from lane_seg.models.export import export_onnx, onnx_parity, read_metadata
from lane_seg.preprocess import PreprocessConfig

# Small variants keep the tests fast; the architecture code paths are the same as the defaults.
SMALL = {
    "unet": {"base": 4, "depth": 3},
    "enet": {"widths": [8, 16, 32]},
    "deeplabv3plus": {"width": 0.25, "aspp_channels": 16, "decoder_channels": 16},
    "segformer": {"dims": [8, 16, 24, 32], "heads": [1, 1, 2, 2], "decoder_dim": 16},
}


def test_registry_has_the_four():
    assert model_names() == ["unet", "enet", "deeplabv3plus", "segformer"]


@pytest.mark.parametrize("name", list(SMALL))
def test_output_is_logits_at_input_size(name):
    model = build_model(name, **SMALL[name]).eval()
    with torch.inference_mode():
        y = model(torch.randn(2, 3, 64, 128))
    assert y.shape == (2, 1, 64, 128)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", model_names())
def test_default_models_build_with_expected_size(name):
    model = build_model(name)
    assert 1e5 < count_params(model) < 1e7  # "light" real-time models


def test_unet_variants():
    for opts in ({"batch_norm": False}, {"decoder": "transpose"}, {"depth": 2, "base": 4}):
        model = build_model("unet", **{"base": 4, "depth": 3, **opts}).eval()
        assert model(torch.zeros(1, 3, 32, 64)).shape == (1, 1, 32, 64)
    no_bn = build_model("unet", base=4, depth=3, batch_norm=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in no_bn.modules())
    transpose = build_model("unet", base=4, depth=3, decoder="transpose")
    assert any(isinstance(m, nn.ConvTranspose2d) for m in transpose.modules())


def test_deeplab_finer_head_options():
    """separable_decoder: the decoder's 3x3 convs depthwise-separable, far fewer MACs;
    refine_channels: a stride-2 stage on the stem's features before the logits. Without them
    the module names (and so saved checkpoints) are as before."""
    small = SMALL["deeplabv3plus"]
    plain = build_model("deeplabv3plus", **small)
    assert "decoder.2.weight" in plain.state_dict()  # the logits conv, where old files have it
    separable = build_model("deeplabv3plus", **small, separable_decoder=True)
    assert count_macs(separable, 64, 128) < 0.8 * count_macs(plain, 64, 128)
    refined = build_model("deeplabv3plus", **small, separable_decoder=True, refine_channels=8)
    stride2 = []
    refined.refine.register_forward_hook(lambda m, i, o: stride2.append(o.shape[-2:]))
    with torch.inference_mode():
        assert refined.eval()(torch.randn(1, 3, 64, 128)).shape == (1, 1, 64, 128)
    assert stride2 == [(32, 64)]  # the logits come from the stride-2 grid


def test_no_max_unpool_anywhere():
    for name in model_names():
        assert not any(isinstance(m, nn.MaxUnpool2d) for m in build_model(name).modules())


def test_bad_name_and_options_are_clear_errors():
    with pytest.raises(LaneSegError, match="unknown model"):
        build_model("resnet9000")
    with pytest.raises(LaneSegError, match="bad options"):
        build_model("unet", widht=3)
    with pytest.raises(LaneSegError, match="bad options"):
        build_model("unet", decoder="unpool")


def test_input_multiple_checked():
    model = build_model("unet", base=4, depth=4)
    check_input_size(model, 256, 512)
    with pytest.raises(LaneSegError, match="multiple of 16"):
        check_input_size(model, 250, 512)


def test_mac_counter_hand_computed():
    conv = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 1))
    # 3x3 conv: 8*10*20 outputs x 3*9 MACs; 1x1: 2*10*20 outputs x 8 MACs
    assert count_macs(conv, 10, 20) == 8 * 200 * 27 + 2 * 200 * 8
    dw = nn.Conv2d(3, 3, 3, padding=1, groups=3)
    assert count_macs(dw, 4, 4) == 3 * 16 * 9
    up = nn.ConvTranspose2d(3, 4, 2, stride=2)
    assert count_macs(up, 4, 4) == 3 * 16 * 4 * 4  # per input pixel: cout * k*k


def test_mac_counter_counts_attention_matmul():
    from lane_seg.models.segformer import EfficientAttention

    attn = EfficientAttention(dim=8, heads=2, sr_ratio=2)
    tokens = torch.zeros(1, 16 * 16, 8)
    macs = []
    hooks = [
        m.register_forward_hook(lambda m, i, o: macs.append(o.numel() * i[0].shape[-1]))
        for m in (attn.qk, attn.av)
    ]
    attn(tokens, 16, 16)
    for h in hooks:
        h.remove()
    # q @ k^T: 2 heads x 256 queries x 64 keys, 4 MACs each; attn @ v: 2 x 256 x 4 outputs x 64
    assert macs == [2 * 256 * 64 * 4, 2 * 256 * 4 * 64]
    model = build_model("segformer", **SMALL["segformer"])
    assert count_macs(model, 64, 128) == count_macs(model, 64, 128)  # hooks removed after use


def _info(name: str, h: int = 64, w: int = 128) -> ModelInfo:
    return ModelInfo(arch=name, model_config=SMALL[name], preprocess=PreprocessConfig(h, w))


def test_checkpoint_round_trip(tmp_path):
    model = build_model("unet", **SMALL["unet"])
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, model, _info("unet"), epoch=3)
    assert load_checkpoint(path)["epoch"] == 3
    loaded, info = load_model(path)
    assert info.arch == "unet" and info.model_config == SMALL["unet"]
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_ema_weights_are_the_state_dict(tmp_path):
    from lane_seg.models.checkpoint import model_from_checkpoint

    ema = build_model("unet", **SMALL["unet"])
    raw = build_model("unet", **SMALL["unet"])
    path = tmp_path / "ema.pt"
    save_checkpoint(path, ema, _info("unet"), train_state_dict=raw.state_dict(), eval_weights="ema")
    ckpt = load_checkpoint(path)
    for key in ("state_dict", "ema_state_dict"):  # the second: an alias some callers use
        model, _ = model_from_checkpoint(ckpt, key)
        for a, b in zip(model.state_dict().values(), ema.state_dict().values(), strict=True):
            assert torch.equal(a, b)


def test_checkpoint_errors(tmp_path):
    with pytest.raises(LaneSegError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "foreign.pt")
    with pytest.raises(LaneSegError, match="not a lane_seg checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(LaneSegError, match="cannot read .* truncated, corrupt or not a PyTorch"):
        load_checkpoint(tmp_path / "junk.pt")


@pytest.mark.parametrize("name", list(SMALL))
def test_onnx_parity_and_metadata(name, tmp_path):
    torch.manual_seed(0)
    model = build_model(name, **SMALL[name]).eval()
    _randomize_bn(model)
    info = _info(name)
    path = export_onnx(model, info, tmp_path / f"{name}.onnx")
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 128)).astype(np.float32)
    ok, diff = onnx_parity(model, path, x)
    assert ok, f"{name}: max |onnx - torch| = {diff}"
    meta = read_metadata(path)
    assert ModelInfo.from_metadata(meta).arch == name
    assert ModelInfo.from_metadata(meta).model_config == SMALL[name]
    import onnx

    assert onnx.load(str(path)).opset_import[0].version >= 17


def _randomize_bn(model: nn.Module) -> None:
    """Non-trivial BN statistics so eval-mode export exercises the folded affine."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
