"""int8 QDQ ONNX via onnxruntime: structure, what really runs in int8, metadata, real frames."""

from __future__ import annotations

import numpy as np
import pytest
from quant_helpers import stripe_batch, trained_tiny

from lane_seg.artifact import ModelInfo
from lane_seg.data.dataset import read_image
from lane_seg.models.export import read_metadata
from lane_seg.preprocess import PreprocessConfig, to_input
from lane_seg.runtime.engines import load_engine
from lane_seg.training.quant import onnx_int8 as oq
from lane_seg.training.quant.calibration import frames_calibration
from lane_seg.training.quant.exporter import FrameReader, Int8Layout, export_model

CFG = PreprocessConfig(height=32, width=64)
N_CONVS = 5


def as_rgb(x) -> np.ndarray:
    """The RGB frame whose preprocessed input is (about) the normalised tensor `x` (3xHxW)."""
    mean, std = np.asarray(CFG.mean), np.asarray(CFG.std)
    rgb = (x.numpy().transpose(1, 2, 0) * std + mean) * 255.0
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp("onnx")
    info = ModelInfo(arch="tinyseg", preprocess=CFG, train_data="stripes")
    pool = [(f"f{i}", as_rgb(x)) for i, x in enumerate(stripe_batch(12, seed=21))]
    calib = frames_calibration(pool, "stripes", size=8)
    trt = d / "int8-trt.onnx"
    done = export_model(
        trained_tiny(), d / "fp32.onnx", d / "int8.onnx", calib, info=info, trt_out=trt
    )
    files = {"fp32": done.fp32, "int8": done.int8, "int8-trt": done.int8_trt}
    return {**files, "info": info, "done": done, "calib": calib}


def test_the_exporter_reports_parity_and_the_calibration(exported):
    done, calib = exported["done"], exported["calib"]
    assert done.ok and done.fp32_parity["inputs"] == 2
    assert done.calibration == {**calib.identity(), "method": "minmax"}
    for precision in ("int8", "int8-trt"):
        parity = done.int8_parity[precision]
        assert parity["frames"] == 4  # the pool's 12 frames less the 8 that calibrate
        assert parity["mask_agreement_iou"] > 80, precision
    assert done.int8_ops.int8_convs == N_CONVS
    meta = ModelInfo.from_metadata(read_metadata(done.int8))
    assert meta.calibration == done.calibration
    trt = ModelInfo.from_metadata(read_metadata(done.int8_trt))
    assert trt.calibration == {**done.calibration, "symmetric": True}


def test_ort_int8_is_per_channel_with_uint8_activations(exported):
    check = oq.check_qdq(exported["int8"], symmetric=False)
    assert check.ok, check.problems
    assert check.weight_dq == N_CONVS and check.per_channel_weights == N_CONVS
    assert "uint8" in check.zp_dtypes and "int8" in check.zp_dtypes
    # an asymmetric file is NOT TensorRT-ready, and the check says so
    assert not oq.check_qdq(exported["int8"], symmetric=True).ok


def test_trt_variant_is_symmetric_explicit_qdq(exported):
    check = oq.check_qdq(exported["int8-trt"], symmetric=True)
    assert check.ok, check.problems
    assert check.zero_points == {0} and check.zp_dtypes == {"int8"}
    assert check.per_channel_weights == N_CONVS


def test_fp32_file_fails_the_structure_check(exported):
    check = oq.check_qdq(exported["fp32"], symmetric=False)
    assert not check.ok and check.weight_dq == 0


def test_convs_really_run_in_int8_in_onnxruntime(exported):
    ops = oq.int8_op_counts(exported["int8"])
    assert ops.int8_convs == N_CONVS and ops.float_convs == 0
    assert oq.int8_op_counts(exported["fp32"]).int8_convs == 0
    assert oq.count_ops(exported["fp32"]).float_convs == N_CONVS


def test_metadata_travels_in_every_file(exported):
    for name in ("fp32", "int8", "int8-trt"):
        info = ModelInfo.from_metadata(read_metadata(exported[name]))
        assert info.arch == "tinyseg" and info.precision == name
        assert info.preprocess == CFG


def _ort(path):
    return load_engine(path, "onnxruntime-cpu", threads=1)


def test_int8_matches_fp32_on_frames(exported):
    s32, s8 = _ort(exported["fp32"]), _ort(exported["int8"])
    x = [x[None].numpy() for x in stripe_batch(4, seed=77)]
    cmp = oq.compare_outputs(s32, s8, x)
    logits = s32.infer(x[0])
    assert cmp["frames"] == 4
    assert cmp["max_abs_logit_diff"] < 0.1 * float(logits.max() - logits.min())
    assert cmp["mask_agreement_iou"] > 90


def test_int8_vs_fp32_on_real_frames(exported, real_data):
    paths = sorted((real_data / "tusimple_lanenet" / "image").glob("*"))[:3]
    assert paths
    frames = [to_input(read_image(p), CFG) for p in paths]
    cmp = oq.compare_outputs(_ort(exported["fp32"]), _ort(exported["int8"]), frames)
    assert cmp["frames"] == len(paths)
    assert np.isfinite(cmp["max_abs_logit_diff"]) and cmp["mean_abs_logit_diff"] < 1.0


def test_compact_names_keep_io_and_results(exported, tmp_path):
    import onnx

    out = tmp_path / "c.onnx"  # the exporter's fp32 file still has its long names
    oq.write_with_metadata(exported["fp32"], out, exported["info"])
    onnx.checker.check_model(str(out))
    assert out.stat().st_size < exported["fp32"].stat().st_size
    g = onnx.load(str(out)).graph
    assert [v.name for v in g.input] == ["image"] and [v.name for v in g.output] == ["logits"]
    assert all(len(n.name) <= 5 for n in g.node)
    x = stripe_batch(1, seed=5).numpy()
    a, b = _ort(exported["fp32"]).infer(x), _ort(out).infer(x)
    assert np.array_equal(a, b)


def test_reader_rewinds_and_refuses_empty():
    r = FrameReader([np.zeros((1, 3, 2, 2), np.float32)] * 2)
    assert r.get_next() is not None and r.get_next() is not None and r.get_next() is None
    r.rewind()
    assert r.get_next() is not None
    with pytest.raises(Exception, match="no calibration frames"):
        FrameReader([])


def test_the_layout_reaches_the_file(exported, tmp_path):
    """The study's layouts (studies/int8_variants.py) are really written as asked."""
    calib, info, model = exported["calib"], exported["info"], trained_tiny()

    def write(name: str, layout: Int8Layout):
        fp32, int8 = tmp_path / f"{name}_fp32.onnx", tmp_path / f"{name}.onnx"
        return export_model(model, fp32, int8, calib, info=info, layout=layout, check=False).int8

    qop = write("qop", Int8Layout(operators=True))
    assert oq.count_ops(qop).ops.get("QLinearConv") == N_CONVS
    check = oq.check_qdq(write("tensor", Int8Layout(per_channel=False)), symmetric=False)
    assert check.weight_dq == N_CONVS and check.per_channel_weights == 0
