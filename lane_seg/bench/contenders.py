"""The contenders of `lane-seg bench`: every engine it compares, built and loaded.

PyTorch fp32 eager (the .pt checkpoint), torch.ao int8 (static PTQ of the same checkpoint via
lane_seg.training.quant.torch_ao), onnxruntime fp32 and int8 QDQ (the given .onnx files, or ones
written by lane_seg.training.quant.exporter, the one exporter), OpenVINO fp32 and int8 on the
same .onnx files when the openvino wheel is installed. Frames and calibration frames come from
lane_seg.bench.frames.

GPU rows, each skipped with its reason where the machine or the wheels lack it: PyTorch on CUDA
(fp32, fp16), onnxruntime's CUDA provider (fp32, int8 QDQ) and its TensorRT provider on the int8
QDQ file (TensorRT builds an explicitly quantized engine from the Q/DQ nodes, as on a Jetson).
Their times include the copies to and from the GPU, as the node's would.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lane_seg.bench import ENGINE_KEYS
from lane_seg.bench.frames import REAL_FRAMES, calibration_set
from lane_seg.bench.isa import CAPPED_ENGINES, skip_reason
from lane_seg.bench.measure import Runner, timed_load
from lane_seg.errors import LaneSegError
from lane_seg.runtime.engines import (
    Engine,
    OnnxRuntimeEngine,
    OpenVinoEngine,
    TorchEngine,
    openvino_available,
    read_onnx_info,
)
from lane_seg.training.quant import torch_ao as quant_torch
from lane_seg.training.quant.calibration import CALIB_SIZE, CalibrationSet
from lane_seg.training.quant.exporter import export_model

# onnxruntime GPU rows: key -> (row, engine variant, precision, provider, how to get it).
_CUDA_WHEEL = "install onnxruntime-gpu with the CUDA and cuDNN it was built for"
ORT_GPU_ROWS = {
    "ort-cuda-fp32": ("onnxruntime CUDA fp32", "onnxruntime-cuda", "fp32", "CUDA", _CUDA_WHEEL),
    "ort-cuda-int8": ("onnxruntime CUDA int8 QDQ", "onnxruntime-cuda", "int8", "CUDA", _CUDA_WHEEL),
    "ort-trt-int8": (
        "TensorRT int8 (onnxruntime)",
        "onnxruntime-tensorrt",
        "int8",
        "Tensorrt",
        "install onnxruntime-gpu and TensorRT (on a Jetson: JetPack's onnxruntime-gpu)",
    ),
}

# ---------------------------------------------------------------- the engines


def _with_device(engine: Engine) -> tuple[Engine, str]:
    return engine, engine.device


def _no_cuda() -> str:
    """Why PyTorch cannot run on a GPU here ("" when it can)."""
    if torch.cuda.is_available():
        return ""
    if torch.version.cuda is None:
        return f"this torch ({torch.__version__}) is a CPU build"
    return f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no CUDA device"


def ort_providers() -> set[str]:
    import onnxruntime as ort

    return set(ort.get_available_providers())


def torch_int8_model(model: Any, calib: list[np.ndarray]) -> tuple[Any, str]:
    backend = quant_torch.detect_backend()
    example = torch.from_numpy(calib[0])
    q = quant_torch.ptq(model, example, (torch.from_numpy(c) for c in calib), backend=backend)
    return q, f"torch.ao {backend.engine}" + (" reduce_range" if backend.reduce_range else "")


def ensure_onnx(
    model: Any,
    info: Any,
    onnx_fp32: Path | None,
    onnx_int8: Path | None,
    out: Path,
    calib: Callable[[], CalibrationSet],
) -> tuple[Path, Path, list[str]]:
    """The given .onnx files, or ones the exporter writes into `out` from the checkpoint."""
    if onnx_fp32 is not None and onnx_int8 is not None:
        return onnx_fp32, onnx_int8, []
    need_int8 = onnx_int8 is None
    exported = export_model(
        model,
        out / ("model_fp32.onnx" if onnx_fp32 is None else "exported_fp32.onnx"),
        out / "model_int8.onnx" if need_int8 else None,
        calib() if need_int8 else None,
        info=info,
    )
    notes = []
    if onnx_fp32 is None:
        onnx_fp32 = exported.fp32
        notes.append(f"fp32 ONNX exported to {onnx_fp32}")
    if onnx_int8 is None:
        onnx_int8 = exported.int8
        parity = exported.int8_parity.get("int8")
        notes.append(f"int8 QDQ ONNX quantized to {onnx_int8}" + _parity_note(parity))
    return onnx_fp32, onnx_int8, notes


def _parity_note(parity: dict | None) -> str:
    if not parity:
        return ""
    return (
        f" (against fp32 on {parity['frames']} held-out frames: mask agreement "
        f"{parity['mask_agreement_iou']:.1f} % IoU, max |logit diff| "
        f"{parity['max_abs_logit_diff']:.3f})"
    )


# ---------------------------------------------------------------- the whole run


@dataclass
class BenchConfig:
    checkpoint: Path
    onnx_fp32: Path | None = None
    onnx_int8: Path | None = None
    data: Path | None = None
    split: str = "val"
    eval_limit: int | None = 50
    calib_size: int = CALIB_SIZE
    real_dir: Path | None = REAL_FRAMES
    frames: int = 8
    rounds: int = 5
    iters: int = 20
    warmup: int = 5
    threads: int = 0
    engines: tuple[str, ...] = ENGINE_KEYS
    out: Path = Path("runs/bench")
    isa: str | None = None  # "avx2": the engines' AVX2 code paths (lane_seg.bench.isa)


def check_inputs(cfg: BenchConfig) -> None:
    for label, p in (
        ("checkpoint", cfg.checkpoint),
        ("fp32 ONNX", cfg.onnx_fp32),
        ("int8 ONNX", cfg.onnx_int8),
    ):
        if p is not None and not Path(p).is_file():
            raise LaneSegError(f"{label} not found: {p}; pass an existing file")
    if cfg.checkpoint.suffix != ".pt":
        raise LaneSegError(
            f"--model must be a .pt checkpoint (got {cfg.checkpoint.name}); "
            "pass the ONNX files with --onnx-fp32/--onnx-int8"
        )
    if cfg.data is not None and not cfg.data.is_dir():
        raise LaneSegError(f"--data {cfg.data} is not a dataset directory")
    if min(cfg.rounds, cfg.iters, cfg.frames) < 1:
        raise LaneSegError("--rounds, --iters and --frames must be at least 1")
    if cfg.isa is not None and not set(cfg.engines) & set(CAPPED_ENGINES):
        raise LaneSegError(f"--isa {cfg.isa} runs only {', '.join(CAPPED_ENGINES)}: pass one")


def check_pair(cfg: BenchConfig, info: Any) -> None:
    """The ONNX files must be the checkpoint's model: same input size, crop and normalisation
    (docs/architecture.md, contract 2), or rows would time different models side by side."""
    for flag, p in (("--onnx-fp32", cfg.onnx_fp32), ("--onnx-int8", cfg.onnx_int8)):
        pre = None if p is None else read_onnx_info(p).preprocess
        if pre is not None and pre != info.preprocess:
            raise LaneSegError(
                f"{flag} {p}: its preprocessing ({pre}) is not the checkpoint's "
                f"({info.preprocess}); pass the checkpoint it was exported from"
            )


def build_runners(
    cfg: BenchConfig, model: Any, info: Any, x: np.ndarray
) -> tuple[list[Runner], list[dict], dict]:
    """Load every engine (timing the load and its memory); skipped ones come back with a reason."""
    runners: list[Runner] = []
    skipped: list[dict] = []
    extra: dict = {"notes": []}
    cache: dict = {}

    def calib() -> CalibrationSet:
        if "calib" not in cache:
            cache["calib"] = calibration_set(cfg.data, cfg.calib_size)
            cache["inputs"] = list(cache["calib"].inputs(info.preprocess))
            extra["calibration"] = cache["calib"].identity()
        return cache["calib"]

    def add(
        name: str,
        runtime: str,
        precision: str,
        file: Path,
        make: Callable,
        note: str = "",
        gpu: bool = False,
    ) -> None:
        (engine, provider), load_s, peak = timed_load(make, x)
        runners.append(
            Runner(name, runtime, precision, file, provider, engine, load_s, peak, note, gpu)
        )

    want = set(cfg.engines)
    if cfg.isa is not None:
        for key in sorted(want - set(CAPPED_ENGINES)):
            skipped.append({"name": key, "reason": skip_reason(key, cfg.isa)})
        want &= set(CAPPED_ENGINES)
    if "torch-fp32" in want:
        add(
            "PyTorch fp32 eager",
            "torch",
            "fp32",
            cfg.checkpoint,
            lambda: (TorchEngine(model, info, cfg.checkpoint), "torch-cpu"),
        )
    if "torch-int8" in want:

        def make_q() -> tuple[TorchEngine, str]:
            q, provider = torch_int8_model(model, cache["inputs"])
            cache["q"] = q
            return TorchEngine(q, replace(info, precision="int8")), provider

        calib()  # loaded (or rendered) outside the engine's load time and memory
        qpath = cfg.out / "torch_int8_state_dict.pt"
        add(
            "torch.ao int8 (PTQ)",
            "torch",
            "int8",
            qpath,
            make_q,
            "static PTQ in this run (load = prepare + calibrate + convert); "
            "file = its saved state_dict",
        )
        torch.save(cache["q"].state_dict(), qpath)
    _torch_cuda_rows(want, add, skipped, model, info, cfg.checkpoint)
    onnx_fp32, onnx_int8 = cfg.onnx_fp32, cfg.onnx_int8
    if want & {"ort-fp32", "ort-int8", "ov-fp32", "ov-int8", *ORT_GPU_ROWS}:
        onnx_fp32, onnx_int8, notes = ensure_onnx(model, info, onnx_fp32, onnx_int8, cfg.out, calib)
        extra["notes"] += notes
    for key, path, precision in (("ort-fp32", onnx_fp32, "fp32"), ("ort-int8", onnx_int8, "int8")):
        if key in want:
            label = "onnxruntime " + ("fp32" if precision == "fp32" else "int8 QDQ")
            add(
                label,
                "onnxruntime",
                precision,
                path,
                lambda p=path: _with_device(OnnxRuntimeEngine(p, cfg.threads, "onnxruntime-cpu")),
            )
    _ort_gpu_rows(want, add, skipped, onnx_fp32, onnx_int8, cfg.threads)
    for key, path, precision in (("ov-fp32", onnx_fp32, "fp32"), ("ov-int8", onnx_int8, "int8")):
        if key not in want:
            continue
        label = f"OpenVINO {precision}"
        if not openvino_available():
            skipped.append(
                {
                    "name": label,
                    "reason": "the openvino wheel is not installed (pip install openvino)",
                }
            )
            continue
        add(
            label,
            "openvino",
            precision,
            path,
            lambda p=path: _with_device(OpenVinoEngine(p, cfg.threads)),
        )
    return runners, skipped, extra


def _torch_cuda_rows(
    want: set[str], add: Callable, skipped: list[dict], model: Any, info: Any, checkpoint: Path
) -> None:
    """PyTorch on the GPU, fp32 and fp16, each on its own copy of the model."""
    for key, half in (("torch-cuda-fp32", False), ("torch-cuda-fp16", True)):
        if key not in want:
            continue
        label = f"PyTorch CUDA {'fp16' if half else 'fp32'}"
        if reason := _no_cuda():
            skipped.append({"name": label, "reason": reason})
            continue
        add(
            label,
            "torch",
            "fp16" if half else "fp32",
            checkpoint,
            lambda h=half: _with_device(
                TorchEngine(copy.deepcopy(model), info, checkpoint, device="cuda", half=h)
            ),
            gpu=True,
        )


def _ort_gpu_rows(
    want: set[str],
    add: Callable,
    skipped: list[dict],
    onnx_fp32: Path,
    onnx_int8: Path,
    threads: int,
) -> None:
    """onnxruntime's CUDA and TensorRT providers on the ONNX files, where it has them."""
    for key, (label, variant, precision, ep, fix) in ORT_GPU_ROWS.items():
        if key not in want:
            continue
        provider = f"{ep}ExecutionProvider"
        if provider not in ort_providers():
            skipped.append({"name": label, "reason": f"this onnxruntime has no {provider}; {fix}"})
            continue
        path = onnx_fp32 if precision == "fp32" else onnx_int8
        add(
            label,
            "onnxruntime",
            precision,
            path,
            lambda p=path, v=variant: _with_device(OnnxRuntimeEngine(p, threads, v)),
            gpu=True,
        )
