"""`lane-seg bench --isa avx2`: the run moves to a child process with the ISA caps in its
environment, checks every OpenVINO kernel against the cap and labels the figures as an
emulation (lane_seg.bench.isa). Not timing: what runs where, and what the report says."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lane_seg.artifact import ModelInfo
from lane_seg.bench.isa import cap_environment, check_kernels
from lane_seg.cli.main import main
from lane_seg.errors import LaneSegError
from lane_seg.models import build_model
from lane_seg.models.checkpoint import save_checkpoint
from lane_seg.preprocess import PreprocessConfig
from lane_seg.runtime.engines import openvino_available
from lane_seg.runtime.hwinfo import CpuInfo


def _checkpoint(root):
    ckpt = root / "m.pt"
    info = ModelInfo("unet", {"base": 4, "depth": 2}, PreprocessConfig(32, 64))
    save_checkpoint(ckpt, build_model("unet", base=4, depth=2), info)
    return ckpt


@pytest.mark.skipif(not openvino_available(), reason="needs the openvino wheel")
def test_capped_run_gets_the_caps_and_is_labelled_an_emulation(tmp_path):
    out = tmp_path / "out"
    argv = ["bench", "--model", str(_checkpoint(tmp_path)), "--out", str(out), "--isa", "avx2"]
    argv += ["--engines", "ov-int8,ort-int8", "--rounds", "1", "--iters", "2", "--warmup", "1"]
    argv += ["--calib-size", "2", "--threads", "1", "--frames-dir", str(tmp_path / "none")]
    cap = cap_environment("avx2")
    env = {k: v for k, v in os.environ.items() if k not in cap}  # the parent has none
    run = subprocess.run(
        [sys.executable, "-m", "lane_seg.cli", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads((out / "bench.json").read_text())
    assert report["isa_cap"]["environment"] == cap  # as the child saw it
    # numpy's and OpenCV's dispatch above AVX2 checked off in the child (the node's pre/post)
    assert set(report["isa_cap"]["libraries"]) == {"numpy off", "OpenCV off"}
    label = f"ISA capped to AVX2 on {CpuInfo.detect().line()} (emulates the AVX2 class: same clock)"
    assert report["hardware"] == label
    assert label in (out / "bench.md").read_text()
    assert [r["name"] for r in report["rows"]] == ["OpenVINO int8"]
    (skipped,) = report["skipped"]
    assert skipped["name"] == "ort-int8" and "MLAS" in skipped["reason"]
    kernels = report["isa_cap"]["kernels"]["OpenVINO int8"]
    assert any(k.startswith("Convolution ") for k in kernels)
    assert not [k for k in kernels if "avx512" in k or "amx" in k or "vnni" in k]
    # '% of peak' is of the AVX2 class's peak at this CPU's clock
    assert report["peak_gmacs_per_s"]["int8"] == CpuInfo.detect().avx2_class().peak_gmacs("int8")
    assert "--isa avx2" in report["command"]


def test_a_kernel_above_the_cap_refuses_the_row():
    check_kernels("OpenVINO int8", "avx2", {"Convolution jit_avx2_I8": 3, "Reorder jit_uni_I8": 1})
    with pytest.raises(LaneSegError, match="still ran Convolution brgconv_avx512_I8"):
        check_kernels("OpenVINO int8", "avx2", {"Convolution brgconv_avx512_I8": 3})


def test_a_cap_left_in_the_environment_is_refused_without_isa(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert main(["bench", "--model", str(tmp_path / "m.pt"), "--out", str(tmp_path / "o")]) == 2
    assert "ONEDNN_MAX_CPU_ISA=AVX2 is set: pass --isa avx2" in capsys.readouterr().err


def test_isa_without_a_capped_engine_is_refused_before_the_child(tmp_path, capsys):
    argv = ["bench", "--model", str(_checkpoint(tmp_path)), "--out", str(tmp_path / "o")]
    assert main([*argv, "--isa", "avx2", "--engines", "ort-int8"]) == 2
    assert "--isa avx2 runs only ov-fp32, ov-int8" in capsys.readouterr().err


_CHECK = "from lane_seg.bench.isa import check_libraries; print(check_libraries('avx2'))"


def test_numpy_and_opencv_dispatch_is_capped_in_the_child_and_checked():
    """The node's resize, normalisation and lane step run numpy and OpenCV kernels: in the child
    their targets above AVX2 are off; where this CPU has such targets, a process without the
    cap is refused by the same check (so the check can fail)."""
    cap = cap_environment("avx2")
    bare = {k: v for k, v in os.environ.items() if k not in cap}

    def check(env):
        cmd = [sys.executable, "-c", _CHECK]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)

    capped = check({**bare, **cap})
    assert capped.returncode == 0, capped.stderr[-2000:]
    if cap["NPY_DISABLE_CPU_FEATURES"] or cap["OPENCV_CPU_DISABLE"]:  # AVX-512 here
        uncapped = check(bare)
        assert uncapped.returncode != 0 and "still dispatched" in uncapped.stderr


def test_isa_node_runs_only_on_the_capped_engine(tmp_path, capsys):
    argv = ["bench", "--model", str(_checkpoint(tmp_path)), "--out", str(tmp_path / "o")]
    argv += ["--isa", "avx2", "--node", "--node-engine", "onnxruntime-cpu"]
    assert main(argv) == 2
    assert "runs the node on openvino" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.ros
@pytest.mark.skipif(not openvino_available(), reason="needs the openvino wheel")
def test_capped_node_runs_openvino_under_the_cap(tmp_path):
    """--isa avx2 --node: the node inherits the cap, runs the capped engine on the OpenVINO int8
    row's file, and its figures carry the emulation's hardware line."""
    pytest.importorskip("rclpy")
    out = tmp_path / "out"
    argv = ["bench", "--model", str(_checkpoint(tmp_path)), "--out", str(out), "--isa", "avx2"]
    argv += ["--engines", "ov-int8", "--rounds", "1", "--iters", "2", "--warmup", "1", "--node"]
    argv += ["--calib-size", "2", "--threads", "1", "--frames-dir", str(tmp_path / "none")]
    argv += ["--node-sizes", "96x48"]
    env = {k: v for k, v in os.environ.items() if k not in cap_environment("avx2")}
    env.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
    cmd = [sys.executable, "-m", "lane_seg.cli", *argv]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads((out / "bench.json").read_text())
    node = report["node"]
    assert node["cpu"] == report["hardware"] and node["cpu"].startswith("ISA capped to AVX2")
    assert node["engine"].startswith("openvino") and node["model"].endswith("_int8.onnx")
    (size,) = node["sizes"]
    assert 0 < size["lanes_latency_ms_p50"] <= size["lanes_latency_ms_p99"]
