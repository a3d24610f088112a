"""`lane-seg bench --isa avx2`: the engines' AVX2 code paths on a CPU that has more, an emulation
of the AVX2 class at this CPU's clock, caches and memory (README.md, "The fast model for slower
CPUs": the AVX2 code path on this CPU, and what the emulation does not capture).

OpenVINO's CPU plugin picks its kernels at run time, oneDNN's (convolutions, pooling) up to
ONEDNN_MAX_CPU_ISA and the plugin's own (FakeQuantize, Interpolate, Reduce) up to OV_CPU_MAX_ISA.
Each library reads its variable once, when it first asks, so the run goes to a child process that
gets both before it imports openvino. The cap AVX2 excludes AVX-512 and AVX-VNNI: int8 runs
through vpmaddubsw. The executed graph names every kernel (rt_info 'primitiveType'); a run in
which one is still AVX-512, AMX or VNNI is refused. onnxruntime (MLAS picks its kernels from
CPUID) and PyTorch (FBGEMM's int8 dispatches on its own) have no verified cap: their rows are
skipped with that reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from typing import Any

from lane_seg.errors import LaneSegError

CAPS = {"avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "OV_CPU_MAX_ISA": "AVX2"}}
CAPPED_ENGINES = ("ov-fp32", "ov-int8")
_ABOVE_AVX2 = ("avx512", "amx", "vnni")
_NO_CAP = {
    "torch": "PyTorch has no verified cap (FBGEMM's int8 kernels dispatch on their own)",
    "ort": "onnxruntime's MLAS picks its kernels from CPUID, with no switch to cap them",
}


def cap_variables() -> dict[str, str]:
    """The ISA caps set in this process's environment, whatever their value."""
    names = {k for caps in CAPS.values() for k in caps}
    return {k: os.environ[k] for k in sorted(names) if k in os.environ}


def capped_here(isa: str) -> bool:
    """True in the child process: every variable of the cap is set to its value."""
    return all(os.environ.get(k) == v for k, v in CAPS[isa].items())


def check_environment(isa: str | None) -> None:
    """Without --isa, a cap left in the environment would label emulated rows as this CPU's."""
    if isa is None and (found := cap_variables()):
        shown = ", ".join(f"{k}={v}" for k, v in found.items())
        raise LaneSegError(f"{shown} is set: pass --isa avx2 for a capped run, or unset it")


def run_capped(isa: str, argv: list[str]) -> int:
    """`lane-seg ARGV` in a child process with the cap in its environment; its exit status."""
    env = {**os.environ, **CAPS[isa]}
    return subprocess.run([sys.executable, "-m", "lane_seg.cli", *argv], env=env).returncode


def skip_reason(engine_key: str, isa: str) -> str:
    """Why an engine's row is not run under the cap."""
    if "cuda" in engine_key or "trt" in engine_key:
        return f"not run with --isa {isa}: a GPU row"
    return f"not run with --isa {isa}: {_NO_CAP[engine_key.split('-')[0]]}"


def kernels(compiled: Any) -> dict[str, int]:
    """'layerType primitiveType' -> count over an OpenVINO compiled model's executed graph."""
    seen: Counter[str] = Counter()
    for op in compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        kernel = info["primitiveType"].astype(str) if "primitiveType" in info else "unknown"
        if not kernel.startswith("unknown"):  # constants, inputs, outputs: no kernel
            seen[f"{info['layerType'].astype(str)} {kernel}"] += 1
    return dict(sorted(seen.items()))


def check_kernels(row: str, isa: str, found: dict[str, int]) -> None:
    """Refuse a capped row where a kernel above the cap ran."""
    above = sorted(k for k in found if any(tag in k.lower() for tag in _ABOVE_AVX2))
    if above:
        raise LaneSegError(
            f"--isa {isa}: {row} still ran {', '.join(above)}; this OpenVINO does not honour "
            f"{' and '.join(CAPS[isa])}, so no {isa.upper()} figure can be taken here"
        )


def label(cpu_line: str, isa: str) -> str:
    """The hardware line of a capped run: an emulation, never the class itself."""
    return (
        f"ISA capped to {isa.upper()} on {cpu_line} (emulates the {isa.upper()} class: same clock)"
    )
