"""What machine a measurement ran on, and the arithmetic peak it could reach.

Benchmarks print the hardware line next to every figure, and compare achieved GMAC/s with the
vector units' peak so a reader sees how close to the limit a model runs. The peaks are
estimates from the instruction set: they assume every core issues two vector multiply-add
instructions per cycle at the nominal clock (the common case for AVX2 and AVX-512 server cores).
"""

from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path


def cpu_flags(cpuinfo: str) -> set[str]:
    """The `flags` (x86) or `Features` (ARM) of the first processor in /proc/cpuinfo text."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def _read_cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


@dataclass(frozen=True)
class CpuInfo:
    model: str
    cores: int
    ghz: float
    flags: frozenset[str]

    @classmethod
    def detect(cls, cpuinfo: str | None = None) -> CpuInfo:
        text = _read_cpuinfo() if cpuinfo is None else cpuinfo
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in text.splitlines()
                if line.startswith("model name")
            ),
            platform.processor() or "unknown CPU",
        )
        ghz = 0.0
        if m := re.search(r"@\s*([\d.]+)\s*GHz", model):
            ghz = float(m.group(1))
        elif m := re.search(r"^cpu MHz\s*:\s*([\d.]+)", text, re.M):
            ghz = float(m.group(1)) / 1000.0
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return cls(model, cores or 1, ghz, frozenset(cpu_flags(text)))

    @property
    def vnni(self) -> bool:
        return bool(self.flags & {"avx512_vnni", "avx_vnni"})

    @property
    def fp32_isa(self) -> str:
        return (
            "AVX-512" if "avx512f" in self.flags else ("AVX2+FMA" if "fma" in self.flags else "SSE")
        )

    @property
    def int8_isa(self) -> str:
        if "avx512_vnni" in self.flags:
            return "AVX-512 VNNI (vpdpbusd)"
        if "avx_vnni" in self.flags:
            return "AVX-VNNI (vpdpbusd)"
        return "AVX2 (vpmaddubsw)" if "avx2" in self.flags else "SSE"

    def peak_gmacs(self, precision: str) -> float:
        """Peak multiply-accumulates per second (GMAC/s) for fp32 or int8 on all cores.

        fp32: two FMA units, 16 lanes (AVX-512) or 8 (AVX2). int8 with VNNI: vpdpbusd does
        4 MACs per 32-bit lane. int8 without VNNI: vpmaddubsw + vpmaddwd + vpaddd do the work of
        one vpdpbusd in three instructions, so about two thirds fewer MACs per cycle.
        """
        lanes = 16 if "avx512f" in self.flags else 8
        if precision == "fp32":
            per_cycle = 2 * lanes
        elif self.vnni:
            per_cycle = 2 * lanes * 4
        else:
            per_cycle = 2 * 8 * 4 // 3  # AVX2 without VNNI: ~21 MAC/cycle
        return self.cores * self.ghz * per_cycle

    def avx2_class(self) -> CpuInfo:
        """This machine's cores and clock with AVX2+FMA only (no AVX-512, no VNNI): the slow x86
        class, whose int8 peak bounds what any engine can do there."""
        return CpuInfo(
            f"AVX2 class of {self.model}", self.cores, self.ghz, frozenset({"avx2", "fma"})
        )

    def line(self) -> str:
        """One line naming the hardware, for every report."""
        extra = ", AMX" if "amx_int8" in self.flags else ""
        return (
            f"{self.model}, {self.cores} cores @ {self.ghz:.2f} GHz, {self.fp32_isa}, "
            f"int8 via {self.int8_isa}{extra}"
        )
