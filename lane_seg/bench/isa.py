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

The node (`--node`) runs on OpenVINO under the same cap, and its pre- and post-processing (resize,
normalisation, the lane step) through numpy and OpenCV, which pick their own kernels at run time
too: their AVX-512 and VNNI dispatch targets are switched off (NPY_DISABLE_CPU_FEATURES,
OPENCV_CPU_DISABLE, named from each library's own list of targets) and checked in the child;
numpy's OpenBLAS is told it runs on Haswell (OPENBLAS_CORETYPE, not checked).
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
_ENGINE_CAPS = {k for caps in CAPS.values() for k in caps}
_ABOVE_AVX2 = ("avx512", "amx", "vnni")
_LIBRARY_CAPS = ("NPY_DISABLE_CPU_FEATURES", "OPENCV_CPU_DISABLE", "OPENBLAS_CORETYPE")
# OpenCV's dispatch targets above AVX2 -> their cv::checkHardwareSupport ids (opencv cvdef.h)
_CV_IDS = {
    "AVX512-SKX": 256,
    "AVX512-COMMON": 257,
    "AVX512-KNL": 258,
    "AVX512-KNM": 259,
    "AVX512-CNL": 260,
    "AVX512-CLX": 261,
    "AVX512-ICL": 262,
    "AVX_VNNI": 28,
}
_NO_CAP = {
    "torch": "PyTorch has no verified cap (FBGEMM's int8 kernels dispatch on their own)",
    "ort": "onnxruntime's MLAS picks its kernels from CPUID, with no switch to cap them",
}


def _above(name: str) -> bool:
    return any(tag in name.lower().replace("x86_v4", "avx512") for tag in _ABOVE_AVX2)


def _numpy_cpu() -> tuple[dict[str, bool], list[str]]:
    """numpy's CPU features as it sees them (after NPY_DISABLE_CPU_FEATURES) and its dispatch
    targets."""
    try:
        from numpy._core import _multiarray_umath as umath  # numpy 2
    except ImportError:  # numpy 1.x
        from numpy.core import _multiarray_umath as umath
    return umath.__cpu_features__, list(umath.__cpu_dispatch__)


def _numpy_targets() -> list[str]:
    """numpy's run-time dispatch targets above AVX2 on this build (X86_V4, AVX512_ICL, ...)."""
    return [t for t in _numpy_cpu()[1] if _above(t)]


def _opencv_targets() -> list[str]:
    """OpenCV's dispatch targets above AVX2 ('*AVX512-SKX' in its CPU features line, with a '?'
    after it where it is not available or switched off)."""
    import cv2

    line = cv2.getCPUFeaturesLine().split()
    return [t[1:].rstrip("?") for t in line if t.startswith("*") and _above(t)]


def cap_environment(isa: str) -> dict[str, str]:
    """Every variable of the cap: the engines' (CAPS) and numpy's and OpenCV's targets (numpy's
    only where this CPU has them: numpy refuses to switch off what it does not find)."""
    features = _numpy_cpu()[0]
    return {
        **CAPS[isa],
        "NPY_DISABLE_CPU_FEATURES": " ".join(t for t in _numpy_targets() if features.get(t)),
        "OPENCV_CPU_DISABLE": ",".join(_opencv_targets()),
        "OPENBLAS_CORETYPE": "Haswell",  # numpy's OpenBLAS (the lane fits): its AVX2 kernels
    }


def cap_variables() -> dict[str, str]:
    """The ISA caps set in this process's environment, whatever their value."""
    names = _ENGINE_CAPS | set(_LIBRARY_CAPS)
    return {k: os.environ[k] for k in sorted(names) if k in os.environ}


def capped_here(isa: str) -> bool:
    """True in the child process: every variable of the cap is set to its value."""
    return all(os.environ.get(k) == v for k, v in CAPS[isa].items())


def check_libraries(isa: str) -> dict[str, list[str]]:
    """In the capped child: numpy's and OpenCV's dispatch targets above the cap, each checked
    off; refused where one is still on (a library that ignores its variable)."""
    import cv2

    features = _numpy_cpu()[0]
    on = [f"numpy {t}" for t in _numpy_targets() if features.get(t)]
    cv_targets = _opencv_targets()
    # a target with no known id cannot be checked, so it counts as on (id 1, MMX: always on)
    on += [f"OpenCV {t}" for t in cv_targets if cv2.checkHardwareSupport(_CV_IDS.get(t, 1))]
    if on:
        raise LaneSegError(
            f"--isa {isa}: {', '.join(on)} still dispatched; no {isa.upper()} figure of the "
            "pre- and post-processing can be taken here"
        )
    return {"numpy off": _numpy_targets(), "OpenCV off": cv_targets}


def check_environment(isa: str | None) -> None:
    """Without --isa, an engine's cap left in the environment would label emulated rows as
    this CPU's (numpy's, OpenCV's and OpenBLAS's variables have uses of their own)."""
    found = {k: v for k, v in cap_variables().items() if k in _ENGINE_CAPS}
    if isa is None and found:
        shown = ", ".join(f"{k}={v}" for k, v in found.items())
        raise LaneSegError(f"{shown} is set: pass --isa avx2 for a capped run, or unset it")


def run_capped(isa: str, argv: list[str]) -> int:
    """`lane-seg ARGV` in a child process with the cap in its environment; its exit status."""
    env = {**os.environ, **cap_environment(isa)}
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
    above = sorted(k for k in found if _above(k))
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
