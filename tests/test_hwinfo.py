import pytest

from lane_seg.runtime.hwinfo import CpuInfo

EPYC = """processor\t: 0
model name\t: AMD EPYC 7B12
cpu MHz\t\t: 2250.000
flags\t\t: fpu sse sse2 avx fma avx2
"""


def test_epyc_without_vnni():
    cpu = CpuInfo.detect(EPYC)
    assert cpu.model == "AMD EPYC 7B12" and cpu.ghz == pytest.approx(2.25)
    assert not cpu.vnni and cpu.int8_isa.startswith("AVX2")
    per_core = cpu.peak_gmacs("fp32") / cpu.cores
    assert per_core == pytest.approx(2.25 * 16)  # two 8-lane FMA units
    assert cpu.peak_gmacs("int8") / cpu.cores == pytest.approx(2.25 * 21)
    assert "AMD EPYC 7B12" in cpu.line() and "AVX2+FMA" in cpu.line()


def test_vnni_doubles_int8_lanes_times_four():
    cpu = CpuInfo.detect(EPYC.replace("avx2", "avx2 avx512f avx512_vnni"))
    assert cpu.vnni
    assert cpu.peak_gmacs("int8") == pytest.approx(4 * cpu.peak_gmacs("fp32"))
