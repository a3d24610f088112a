"""`lane-seg bench` on a tiny U-Net: every row present with sane fields, in one fast run."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import onnxruntime
import pytest
import torch
from lane_data import make_line_dataset

from lane_seg.artifact import ModelInfo
from lane_seg.cli.main import main
from lane_seg.cli.readme import markers
from lane_seg.models import build_model
from lane_seg.models.checkpoint import save_checkpoint
from lane_seg.preprocess import PreprocessConfig
from lane_seg.runtime.engines import openvino_available

ROWS = {"PyTorch fp32 eager", "torch.ao int8 (PTQ)", "onnxruntime fp32", "onnxruntime int8 QDQ"}
GPU_ROWS = {
    "PyTorch CUDA fp32",
    "PyTorch CUDA fp16",
    "onnxruntime CUDA fp32",
    "onnxruntime CUDA int8 QDQ",
    "TensorRT int8 (onnxruntime)",
}


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    data = make_line_dataset(root / "ds", n_train=4, n_val=3)
    torch.manual_seed(0)
    ckpt = root / "m.pt"
    info = ModelInfo("unet", {"base": 4, "depth": 2}, PreprocessConfig(32, 64))
    save_checkpoint(ckpt, build_model("unet", base=4, depth=2), info)
    out = root / "out"
    frames = root / "no_frames"  # absent: simulator frames are used
    argv = ["bench", "--model", str(ckpt), "--data", str(data), "--out", str(out)]
    argv += ["--rounds", "2", "--iters", "3", "--warmup", "1", "--calib-size", "2"]
    argv += ["--frames-dir", str(frames), "--threads", "1", "--readme", str(root / "README.md")]
    start, end = markers("bench")
    (root / "README.md").write_text(f"# Title\n\n{start}\nold table\n{end}\nafter\n")
    # In its own interpreter: the engines' native thread pools (OpenVINO, torch.ao) would
    # otherwise stay in the test process, where a later test's SIGTERM crashed them.
    run = subprocess.run(
        [sys.executable, "-m", "lane_seg.cli", *argv],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads((out / "bench.json").read_text()), out


def test_every_row_with_sane_fields(bench):
    report, out = bench
    rows = {r["name"]: r for r in report["rows"]}
    skipped = {s["name"]: s["reason"] for s in report["skipped"]}
    want = ROWS | (GPU_ROWS - set(skipped))
    if openvino_available():
        want |= {"OpenVINO fp32", "OpenVINO int8"}
    else:
        assert {"OpenVINO fp32", "OpenVINO int8"} <= set(skipped)
    assert set(rows) == want
    assert set(rows) | set(skipped) >= GPU_ROWS  # every GPU row ran or says why not
    for r in rows.values():
        assert 0 < r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"], r["name"]
        assert r["timed_runs"] == 2 * 3
        assert r["fps"] > 0 and r["provider"]
        assert r["size_bytes"] == Path(r["file"]).stat().st_size > 0
        assert r["gmacs"] > 0 and r["achieved_gmacs_per_s"] > 0
        assert r["gpu"] == (r["name"] in GPU_ROWS)
    assert rows["PyTorch fp32 eager"]["speedup_vs_torch_fp32"] == 1.0
    assert report["cores_used"] == 1  # --threads 1: % of peak is of one core's peak
    for r in (r for r in rows.values() if not r["gpu"]):
        assert r["peak_fraction"] > 0
        assert r["peak_gmacs_per_s"] == pytest.approx(
            report["peak_gmacs_per_s"][r["precision"]] / report["cores"]
        )
    assert rows["onnxruntime fp32"]["provider"] == "CPUExecutionProvider"
    assert rows["torch.ao int8 (PTQ)"]["provider"].startswith("torch.ao")
    assert report["frames"].startswith("simulator")
    assert report["calibration"]["split"] == "train"
    assert len(report["load_average_before"]) == 3
    for name in ("bench.md", "bench.png", "model_fp32.onnx", "model_int8.onnx"):
        assert (out / name).is_file()
    md = (out / "bench.md").read_text()
    assert all(f"| {name} |" in md for name in want)
    assert (out / "bench.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here: its rows run")
def test_gpu_rows_say_what_this_machine_lacks(bench):
    report, out = bench
    skipped = {s["name"]: s["reason"] for s in report["skipped"]}
    assert "CUDA" in skipped["PyTorch CUDA fp32"] or "CPU build" in skipped["PyTorch CUDA fp32"]
    providers = set(onnxruntime.get_available_providers())
    if "TensorrtExecutionProvider" not in providers:
        assert "TensorrtExecutionProvider" in skipped["TensorRT int8 (onnxruntime)"]
    if "CUDAExecutionProvider" not in providers:
        assert "onnxruntime-gpu" in skipped["onnxruntime CUDA int8 QDQ"]
    assert "GPU" not in report["hardware"]
    assert "| TensorRT int8 (onnxruntime) | skipped: " in (out / "bench.md").read_text()


def test_lane_iou_is_what_lane_seg_eval_reports_on_the_same_frames(bench, tmp_path):
    """The bench scores each engine through the scoring loop of `lane-seg eval`: the same model
    on the same frames gives the same lane IoU (the int8 rows: their own files)."""
    report, out = bench
    rows = {r["name"]: r for r in report["rows"]}
    data = Path(report["accuracy_set"].split(" split ")[0])
    for name, model in (
        ("PyTorch fp32 eager", rows["PyTorch fp32 eager"]["file"]),
        ("onnxruntime fp32", out / "model_fp32.onnx"),
        ("onnxruntime int8 QDQ", out / "model_int8.onnx"),
    ):
        argv = ["eval", "--model", str(model), "--data", str(data), "--split", "val"]
        assert main([*argv, "--out", str(tmp_path / name), "--no-progress", "--gallery", "0"]) == 0
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        assert summary["images"] == 3
        assert rows[name]["lane_iou"] == pytest.approx(100 * summary["lane_iou"], abs=1e-9), name
    assert rows["torch.ao int8 (PTQ)"]["lane_iou"] == pytest.approx(
        rows["PyTorch fp32 eager"]["lane_iou"], abs=5.0
    )  # quantized in this run, no file to evaluate: close to its fp32 model


def test_readme_section_is_regenerated_with_its_command(bench):
    _, out = bench
    text = (out.parent / "README.md").read_text()
    assert text.startswith("# Title") and text.endswith(f"{markers('bench')[1]}\nafter\n")
    assert "old table" not in text and "| PyTorch fp32 eager |" in text
    assert "Regenerate with `lane-seg bench --model " in text and "--rounds 2" in text


def test_readme_without_markers_fails_before_the_run(tmp_path, capsys):
    ckpt = tmp_path / "m.pt"
    ckpt.write_bytes(b"x")  # never loaded: the README is checked first
    (tmp_path / "README.md").write_text("# no markers\n")
    argv = ["bench", "--model", str(ckpt), "--readme", str(tmp_path / "README.md")]
    assert main(argv) == 2
    assert "no bench section" in capsys.readouterr().err


def test_missing_model_is_a_cli_error(tmp_path, capsys):
    assert main(["bench", "--model", str(tmp_path / "nope.pt"), "--out", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err


def test_bad_engine_list_is_a_cli_error(tmp_path, capsys):
    ckpt = tmp_path / "m.pt"
    ckpt.write_bytes(b"x")
    assert main(["bench", "--model", str(ckpt), "--engines", "tensorflow"]) == 2
    assert "choose from" in capsys.readouterr().err


def test_onnx_of_another_model_is_a_cli_error(tmp_path, capsys):
    """An ONNX file whose preprocessing is not the checkpoint's (another size or crop) would
    time two different models as one: refused in one line before anything runs."""
    from lane_seg.training.quant.exporter import export_model

    ckpt, other = tmp_path / "m.pt", tmp_path / "other.pt"
    for path, height in ((ckpt, 32), (other, 48)):
        info = ModelInfo("unet", {"base": 4, "depth": 2}, PreprocessConfig(height, 64))
        save_checkpoint(path, build_model("unet", base=4, depth=2), info)
    export_model(other, tmp_path / "other_fp32.onnx")
    out = tmp_path / "o"
    argv = ["bench", "--model", str(ckpt), "--onnx-fp32", str(tmp_path / "other_fp32.onnx")]
    assert main([*argv, "--out", str(out)]) == 2
    assert "is not the checkpoint's" in capsys.readouterr().err
    assert not (out / "bench.json").exists()


def test_bad_node_sizes_are_a_cli_error(tmp_path, capsys):
    ckpt = tmp_path / "m.pt"
    info = ModelInfo("unet", {"base": 4, "depth": 2}, PreprocessConfig(32, 64))
    save_checkpoint(ckpt, build_model("unet", base=4, depth=2), info)
    argv = ["bench", "--model", str(ckpt), "--out", str(tmp_path / "o"), "--node"]
    assert main([*argv, "--node-sizes", "1280by720"]) == 2
    assert "--node-sizes '1280by720': expected WIDTHxHEIGHT" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.ros
def test_node_row_over_real_ros2(tmp_path, monkeypatch):
    """--node adds the node's publish -> mask latency, measured through
    lane_seg.bench.node_end_to_end, without and with its lane step."""
    pytest.importorskip("rclpy")
    monkeypatch.delenv("FASTDDS_DEFAULT_PROFILES_FILE", raising=False)
    ckpt = tmp_path / "m.pt"
    info = ModelInfo("unet", {"base": 4, "depth": 2}, PreprocessConfig(32, 64))
    save_checkpoint(ckpt, build_model("unet", base=4, depth=2), info)
    out = tmp_path / "out"
    argv = ["bench", "--model", str(ckpt), "--out", str(out), "--node", "--calib-size", "2"]
    argv += ["--engines", "ort-fp32,ort-int8", "--rounds", "1", "--iters", "2", "--warmup", "1"]
    argv += ["--frames-dir", str(tmp_path / "none"), "--node-sizes", "96x48"]
    assert main(argv) == 0
    report = json.loads((out / "bench.json").read_text())
    (size,) = report["node"]["sizes"]
    assert (size["width"], size["height"]) == (96, 48)  # the camera frame fed, not the model's
    assert size["latency_frames"] > 0
    assert 0 < size["latency_ms_p50"] <= size["latency_ms_p99"]
    assert report["node"]["model"].endswith("model_int8.onnx")
    assert "Node end to end" in (out / "bench.md").read_text()
    assert report["node"]["dds"].startswith("Fast DDS default transports")  # no profile set
    # The same node with its lane step, in the same run.
    assert size["lane_step_ms_p50"] > 0 and size["lanes_node_lane_step_ms_p50"] > 0
    assert size["lane_step_cpu_ms_p50"] > 0
    assert 0 < size["lanes_latency_ms_p50"] <= size["lanes_latency_ms_p99"]
    assert "The lane step (lane_seg.lanes) in the same run" in (out / "bench.md").read_text()


def test_peak_rss_sees_a_native_allocation():
    import numpy as np

    from lane_seg.bench.measure import PeakRss

    mem = PeakRss()
    block = np.ones(64 * 1024 * 1024 // 8)  # 64 MiB, touched
    assert block.sum() > 0
    del block
    if mem.reset_ok:
        assert mem.growth_mb() >= 48
    else:
        assert "not resettable" in mem.method


def test_rounds_record_the_memory_an_engine_allocates_while_timed():
    import numpy as np

    from lane_seg.bench.measure import PeakRss, Runner, time_rounds

    def allocate(x):
        block = np.ones(64 * 1024 * 1024 // 8)  # 64 MiB, touched, freed again
        return block.sum()

    def runner(name, infer) -> Runner:
        return Runner(name, "x", "fp32", Path("f"), "cpu", types.SimpleNamespace(infer=infer), 0, 0)

    hungry, lean = runner("hungry", allocate), runner("lean", len)
    time_rounds([hungry, lean], [np.zeros(4)], rounds=1, iters=2, warmup=1)
    if not PeakRss().reset_ok:
        pytest.skip("/proc/self/clear_refs is not writable here: the peak cannot be reset")
    assert hungry.infer_peak_mb >= 48 and lean.infer_peak_mb < 16


def test_rounds_interleave_every_engine_in_rotated_order():
    import numpy as np

    from lane_seg.bench.measure import Runner, time_rounds

    calls: list[str] = []

    def runner(name: str) -> Runner:
        engine = types.SimpleNamespace(infer=lambda x: calls.append(name))
        return Runner(name, "x", "fp32", Path("f"), "cpu", engine, 0.0, 0.0)

    rs = [runner("a"), runner("b"), runner("c")]
    time_rounds(rs, [np.zeros(1)], rounds=3, iters=2, warmup=1)
    timed = calls[3:]  # after one warm-up call each
    assert timed == list("aabbcc" + "bbccaa" + "ccaabb")
    assert all(len(r.times_ms) == 6 for r in rs)
