"""Engines, model metadata and the frame -> mask path, on tiny exported ONNX models."""

from __future__ import annotations

import numpy as np
import pytest

from lane_seg.errors import LaneSegError
from lane_seg.models.testing import (
    stripes_rgb,
    tiny_info,
    tiny_torch_model,
    write_onnx_with_metadata,
    write_tiny_onnx,
)
from lane_seg.runtime.engines import (
    candidate_engines,
    load_engine,
    openvino_available,
    read_onnx_info,
    time_engine,
)
from lane_seg.runtime.segmenter import Segmenter, overlay_bgr
from lane_seg.runtime.timing import Latency, time_calls


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    return {
        "random": write_tiny_onnx(d / "random.onnx", "random", tiny_info(64, 128)),
        "bright": write_tiny_onnx(d / "bright.onnx", "bright", tiny_info(64, 128)),
        "bright_bgr_letterbox": write_tiny_onnx(
            d / "bright_bgr.onnx",
            "bright",
            tiny_info(96, 96, color_order="bgr", resize="letterbox"),
        ),
        "dir": d,
    }


def test_metadata_round_trips_through_onnxruntime(models):
    info = read_onnx_info(models["bright_bgr_letterbox"])
    assert info == tiny_info(96, 96, color_order="bgr", resize="letterbox")


def test_onnxruntime_matches_torch_reference(models):
    import torch

    info = tiny_info(64, 128)
    ref = tiny_torch_model("random", info)  # same seed -> same weights as the exported file
    x = np.random.default_rng(3).standard_normal((2, 3, 64, 128), dtype=np.float32)
    eng = load_engine(models["random"], "onnxruntime-cpu", threads=1)
    out = eng.infer(x)
    with torch.inference_mode():
        want = ref(torch.from_numpy(x)).numpy()
    assert out.shape == (2, 1, 64, 128)
    np.testing.assert_allclose(out, want, atol=1e-4)
    assert eng.device == "CPUExecutionProvider"


@pytest.mark.skipif(not openvino_available(), reason="openvino wheel not installed")
def test_openvino_matches_onnxruntime(models):
    x = np.random.default_rng(4).standard_normal((1, 3, 64, 128), dtype=np.float32)
    ov = load_engine(models["random"], "openvino", threads=1).infer(x)
    ort = load_engine(models["random"], "onnxruntime-cpu", threads=1).infer(x)
    np.testing.assert_allclose(ov, ort, atol=1e-4)  # f32 precision hint: no silent bf16


def test_auto_times_every_candidate_and_keeps_the_fastest(models):
    eng = load_engine(models["random"], "auto", threads=1)
    assert set(eng.auto_timings) == set(candidate_engines(models["random"]))
    assert eng.name == min(eng.auto_timings, key=eng.auto_timings.get)
    assert all(t > 0 for t in eng.auto_timings.values())


def test_time_calls_warms_up_untimed_then_times_inputs_in_turn():
    seen: list[int] = []
    times = time_calls(seen.append, [0, 1, 2], runs=4, warmup=2, start=1)
    assert seen == [0, 1, 1, 2, 0, 1]  # two warm-up calls, then four from index 1 on
    assert len(times) == 4 and all(t >= 0 for t in times)
    lat = Latency.of([1.0, 2.0, 3.0, 4.0])
    assert (lat.p50_ms, lat.mean_ms, lat.fps, lat.runs) == (2.5, 2.5, 400.0, 4)


def test_time_engine_times_the_engine_itself(models):
    eng = load_engine(models["random"], "onnxruntime-cpu")
    calls = []
    eng.infer = lambda x: calls.append(x.shape)  # what is timed is engine.infer on its input
    assert len(time_engine(eng, runs=3, warmup=1)) == 3
    assert calls == [(1, 3, 64, 128)] * 4


@pytest.mark.parametrize("model", ["bright", "bright_bgr_letterbox"])
@pytest.mark.parametrize("size", [(64, 128), (120, 200), (720, 1280)])
def test_mask_marks_the_bright_stripes_at_input_resolution(models, model, size):
    """The bright model calls lane exactly the pixels brighter than half scale, through any
    resize mode and colour order: the pre/postprocessing undoes what it did."""
    img = stripes_rgb(*size, period=max(16, size[1] // 8))
    seg = Segmenter.load(str(models[model]), "onnxruntime-cpu")
    mask = seg.segment(img)
    assert mask.shape == size and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {0, 255}
    want = np.where(img.mean(axis=2) > 127.5, 255, 0)
    assert (mask == want).mean() > 0.95  # only stripe edges may move through the resize


def test_threshold_changes_the_mask(models):
    """Grey 120 is logit 40*(120/255-0.5) = -1.18, p = 0.23: lane at threshold 0.1, not at 0.5."""
    seg = Segmenter.load(str(models["bright"]), "onnxruntime-cpu")
    img = np.full((64, 128, 3), 120, np.uint8)
    assert (seg.segment(img, threshold=0.1) == 255).all()
    assert (seg.segment(img) == 0).all()  # the model's own threshold, 0.5
    seg.threshold = 0.2
    assert (seg.segment(img) == 255).all()


def test_overlay_tints_only_the_mask():
    img = np.full((10, 20, 3), 100, np.uint8)
    mask = np.zeros((10, 20), np.uint8)
    mask[:, :5] = 255
    out = overlay_bgr(img, mask, alpha=1.0)
    assert (out[:, 5:] == 100).all()
    assert tuple(out[0, 0]) == (0, 255, 0)  # the lane colour (green) in BGR order


def test_segment_refuses_a_non_rgb_frame(models):
    seg = Segmenter.load(str(models["random"]), "onnxruntime-cpu")
    with pytest.raises(ValueError, match="HxWx3"):
        seg.segment(np.zeros((10, 10), np.uint8))


# ------------------------------------------------------------------ bad models


def test_missing_model_is_one_clear_error(tmp_path):
    with pytest.raises(LaneSegError, match="model file not found"):
        load_engine(tmp_path / "nope.onnx")


def test_empty_and_corrupt_models_are_clear_errors(tmp_path):
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(LaneSegError, match="empty"):
        load_engine(tmp_path / "empty.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"this is not protobuf" * 10)
    with pytest.raises(LaneSegError, match="not a loadable ONNX model"):
        load_engine(tmp_path / "junk.onnx")


def test_model_without_lane_seg_metadata_is_refused(tmp_path):
    from lane_seg.models.testing import export_onnx_bytes

    info = tiny_info()
    data = export_onnx_bytes(tiny_torch_model("random", info), info)
    path = write_onnx_with_metadata(data, {}, tmp_path / "bare.onnx")
    with pytest.raises(LaneSegError, match="no lane_seg metadata"):
        load_engine(path, "onnxruntime-cpu")


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("input_height", "-5", "input_height -5 is outside 1..2048"),
        ("input_width", "0", "input_width 0 is outside 1..2048"),
        ("input_height", "100000", "input_height 100000 is outside 1..2048"),
        ("input_height", "abc", "malformed lane_seg metadata"),
        ("input_height", "32", "metadata says input 128x32, its graph takes 128x64 \\(WxH\\)"),
    ],
)
@pytest.mark.parametrize("engine", ["auto", "onnxruntime-cpu", "openvino"])
def test_input_size_in_metadata_is_checked_at_load(tmp_path, key, value, message, engine):
    """Refused before any engine is built or timed (auto once sized an input from it)."""
    from lane_seg.models.testing import export_onnx_bytes

    if engine == "openvino" and not openvino_available():
        pytest.skip("openvino not installed")
    info = tiny_info(64, 128)
    meta = info.to_metadata() | {key: value}
    data = export_onnx_bytes(tiny_torch_model("random", info), info)
    path = write_onnx_with_metadata(data, meta, tmp_path / "m.onnx")
    with pytest.raises(LaneSegError, match=message):
        load_engine(path, engine)


BAD_NUMBERS = [  # metadata numbers that gave empty masks with exit 0, or masks of noise
    ("threshold", "7", "field threshold = 7 is not a probability between 0 and 1"),
    ("threshold", "nan", "field threshold = nan is not a probability between 0 and 1"),
    ("threshold", "0", "field threshold = 0 is not a probability between 0 and 1"),
    ("std", "0,0,0", "field std = 0,0,0: must be three positive finite numbers"),
    ("std", "0.2,-1,0.2", "field std = 0.2,-1,0.2: must be three positive finite numbers"),
    ("mean", "0.5,inf,0.5", "field mean = 0.5,inf,0.5: must be three finite numbers"),
]


@pytest.mark.parametrize("key, value, message", BAD_NUMBERS)
def test_metadata_numbers_are_checked_where_the_model_is_read(tmp_path, key, value, message):
    """Refused in one line naming the model file and the field, for ONNX and checkpoints."""
    import torch

    from lane_seg.models import build_model
    from lane_seg.models.testing import export_onnx_bytes

    info = tiny_info(64, 128)
    meta = info.to_metadata() | {key: value}
    data = export_onnx_bytes(tiny_torch_model("random", info), info)
    onnx_path = write_onnx_with_metadata(data, meta, tmp_path / "m.onnx")
    with pytest.raises(LaneSegError) as err:
        load_engine(onnx_path, "onnxruntime-cpu")
    assert str(err.value).startswith(f"{onnx_path}: metadata {message}")
    info.arch, info.model_config = "unet", {"base": 4, "depth": 2}
    state = build_model("unet", base=4, depth=2).state_dict()
    ckpt = {"format": "lane_seg.ckpt/1", "info": info.to_metadata() | {key: value}}
    torch.save(ckpt | {"state_dict": state}, tmp_path / "m.pt")
    with pytest.raises(LaneSegError) as err:
        load_engine(tmp_path / "m.pt")
    assert str(err.value).startswith(f"{tmp_path / 'm.pt'}: metadata {message}")


def test_checkpoint_input_size_must_fit_the_models_stride(tmp_path):
    import torch

    from lane_seg.models import build_model

    info = tiny_info(60, 128)  # a 4-level U-Net needs multiples of 16
    info.arch, info.model_config = "unet", {}
    state = build_model("unet").state_dict()
    ckpt = {"format": "lane_seg.ckpt/1", "info": info.to_metadata(), "state_dict": state}
    torch.save(ckpt, tmp_path / "m.pt")
    with pytest.raises(LaneSegError, match=r"input size 128x60 \(WxH\) is not a multiple of 16"):
        load_engine(tmp_path / "m.pt")


def test_model_with_wrong_io_names_is_refused(tmp_path):
    import onnx

    path = write_tiny_onnx(tmp_path / "m.onnx")
    proto = onnx.load(str(path))
    proto.graph.input[0].name = "input"
    for node in proto.graph.node:
        node.input[:] = ["input" if n == "image" else n for n in node.input]
    onnx.save(proto, str(path))
    with pytest.raises(LaneSegError, match="input 'image'"):
        load_engine(path, "onnxruntime-cpu")


def test_bad_engine_names_and_threads(models, tmp_path):
    with pytest.raises(LaneSegError, match="unknown engine"):
        load_engine(models["random"], "tflite")
    with pytest.raises(LaneSegError, match="threads"):
        load_engine(models["random"], threads=-1)
    with pytest.raises(LaneSegError, match="runs .pt checkpoints"):
        load_engine(models["random"], "torch")
    (tmp_path / "m.tflite").write_bytes(b"x")
    with pytest.raises(LaneSegError, match=".onnx or .pt"):
        load_engine(tmp_path / "m.tflite")


def test_gpu_providers_absent_give_a_clear_error(models):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA; the error path is for CPU-only installs")
    with pytest.raises(LaneSegError, match="CUDAExecutionProvider"):
        load_engine(models["random"], "onnxruntime-cuda")


# ------------------------------------------------------------------ torch checkpoints


def test_checkpoint_that_is_not_lane_seg_is_refused(tmp_path):
    import torch

    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(LaneSegError, match="not a lane_seg checkpoint"):
        load_engine(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(LaneSegError, match="cannot read checkpoint .*junk.pt"):
        load_engine(tmp_path / "junk.pt")


class _Payload:
    """Unpickling this would run os.mkdir: what a malicious checkpoint does."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os

        return (os.mkdir, (self.marker,))


def test_a_checkpoint_with_code_is_refused_in_one_line_without_bad_advice(tmp_path):
    import torch

    marker = tmp_path / "pwned"
    torch.save({"format": "lane_seg.ckpt/1", "x": _Payload(marker)}, tmp_path / "evil.pt")
    with pytest.raises(LaneSegError) as err:
        load_engine(tmp_path / "evil.pt")
    text = str(err.value)
    assert not marker.exists()
    assert "\n" not in text and "weights_only" not in text
    assert text.startswith(f"refusing checkpoint {tmp_path / 'evil.pt'}: it holds Python objects (")


def test_torch_engine_matches_its_onnx_export_and_the_model_in_memory(tmp_path):
    """A .pt checkpoint (lane_seg.ckpt/1) runs on the torch engine and gives the same logits as
    the same weights exported to ONNX, and as the module itself wrapped in memory."""
    import torch

    from lane_seg.models import build_model
    from lane_seg.models.testing import export_onnx_bytes
    from lane_seg.runtime.engines import TorchEngine

    info = tiny_info(64, 128)
    info.arch, info.model_config = "unet", {}
    model = build_model(info.arch, **info.model_config).eval()
    ckpt = {
        "format": "lane_seg.ckpt/1",
        "info": info.to_metadata(),
        "state_dict": model.state_dict(),
    }
    torch.save(ckpt, tmp_path / "m.pt")
    onnx_path = write_onnx_with_metadata(
        export_onnx_bytes(model, info), info.to_metadata(), tmp_path / "m.onnx"
    )
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 128), dtype=np.float32)
    eng = load_engine(tmp_path / "m.pt", "auto")
    assert eng.name == "torch" and eng.info == info
    np.testing.assert_allclose(
        eng.infer(x), load_engine(onnx_path, "onnxruntime-cpu").infer(x), atol=1e-3
    )
    np.testing.assert_array_equal(eng.infer(x), TorchEngine(model, info).infer(x))


def _tiny_torch_model():
    import torch

    from lane_seg.models import build_model

    torch.manual_seed(0)
    info = tiny_info(32, 64)
    info.arch, info.model_config = "unet", {"base": 4, "depth": 2}
    return build_model(info.arch, **info.model_config).eval(), info


def test_torch_engine_in_half_precision_returns_float32_logits_close_to_fp32():
    """fp16 (the GPU rows of `lane-seg bench`): the batch is cast in and the logits back out."""
    import copy

    from lane_seg.runtime.engines import TorchEngine

    model, info = _tiny_torch_model()
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 64), dtype=np.float32)
    full = TorchEngine(model, info).infer(x)
    half = TorchEngine(copy.deepcopy(model), info, half=True)
    out = half.infer(x)
    assert out.dtype == np.float32 and out.shape == full.shape
    np.testing.assert_allclose(out, full, atol=0.05 * np.abs(full).max())
    assert half.device == "cpu"


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="no CUDA device here")
def test_torch_engine_on_cuda_matches_the_cpu():
    import copy

    from lane_seg.runtime.engines import TorchEngine

    model, info = _tiny_torch_model()
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 64), dtype=np.float32)
    gpu = TorchEngine(copy.deepcopy(model), info, device="cuda")
    assert gpu.device.startswith("cuda")
    np.testing.assert_allclose(gpu.infer(x), TorchEngine(model, info).infer(x), atol=1e-3)
