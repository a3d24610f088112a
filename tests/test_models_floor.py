"""`lane-seg models`: a road-crop input size is timed, and each model's GMACs come with its int8
floors (estimates from GMACs: this CPU's int8 peak and the AVX2 class's, never measured)."""

from __future__ import annotations

import json

import pytest

from lane_seg.cli.main import main
from lane_seg.runtime.hwinfo import CpuInfo

VNNI_EPYC = """processor\t: 0
model name\t: AMD EPYC 7B12
cpu MHz\t\t: 2450.000
flags\t\t: fpu sse sse2 avx fma avx2 avx512f avx512_vnni
"""


def test_the_avx2_class_keeps_cores_and_clock_and_drops_vnni():
    cpu = CpuInfo.detect(VNNI_EPYC)
    slow = cpu.avx2_class()
    assert (slow.cores, slow.ghz) == (cpu.cores, cpu.ghz)
    assert not slow.vnni and slow.int8_isa.startswith("AVX2")
    assert slow.peak_gmacs("int8") / slow.cores == pytest.approx(2.45 * 21)  # 103 on 2 cores
    assert slow.peak_gmacs("int8") < cpu.peak_gmacs("int8") / 6


def test_a_road_crop_size_is_timed_with_its_floors(capsys):
    argv = ["models", "--size", "128x48", "--crop-top", "0.375", "--latency", "--runs", "2"]
    assert main([*argv, "--json", "--config", "training/configs/unet_full.yaml"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["size"] == [48, 128] and out["crop_top"] == 0.375
    assert out["hardware"] == CpuInfo.detect().line()
    (row,) = out["models"]
    assert row["int8_onnxruntime-cpu_ms_p50"] > 0
    for key, peak in out["int8_peak_gmacs_per_s"].items():
        assert row[f"int8_floor_ms_{key}"] == pytest.approx(1e3 * row["gmacs"] / peak, abs=0.01)
    assert row["int8_floor_ms_avx2"] > row["int8_floor_ms_here"]


def test_the_table_says_the_floors_are_estimates(capsys):
    assert main(["models", "--size", "128x64", "--crop-top", "0.25"]) == 0
    out = capsys.readouterr().out
    assert "the frame's top 0.25 cut first" in out
    assert "int8_floor_ms_avx2" in out and "estimates from GMACs, not measured" in out
    assert main(["models", "--size", "128x64", "--crop-top", "0.95"]) == 2
    assert "--crop-top: crop_top must be in [0, 0.9]" in capsys.readouterr().err
