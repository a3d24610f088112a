"""`lane-seg bench`: one model on every runtime a user would pick, side by side, in one process.

All rows see the same frames at batch 1 (lane_seg.bench.contenders builds them;
lane_seg.bench.measure times them in interleaved rounds and reads peak memory). This module
turns the timings into rows: p50/p95/p99, fps, size on disk, lane IoU through the same path as
`lane-seg eval`, GMACs per frame and achieved GMAC/s next to the CPU's estimated peak, and
speed-up against PyTorch fp32 eager measured in the same run; the load average before and after
is recorded.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lane_seg.bench import isa
from lane_seg.bench.contenders import BenchConfig, build_runners, check_inputs, check_pair
from lane_seg.bench.frames import REAL_FRAMES, load_frames
from lane_seg.bench.measure import PeakRss, Runner, time_rounds
from lane_seg.models.checkpoint import load_model
from lane_seg.models.complexity import complexity
from lane_seg.preprocess import to_input
from lane_seg.runtime.hwinfo import CpuInfo
from lane_seg.runtime.timing import percentile
from lane_seg.training.eval.score import EvalFrames, score, scored_samples

__all__ = ["REAL_FRAMES", "BenchConfig", "run_bench"]


@dataclass
class Row:
    name: str
    runtime: str
    precision: str
    provider: str
    gpu: bool
    file: str
    size_bytes: int
    load_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    fps: float
    timed_runs: int
    load_peak_mb: float
    infer_peak_mb: float
    gmacs: float
    achieved_gmacs_per_s: float
    peak_gmacs_per_s: float
    peak_fraction: float
    speedup_vs_torch_fp32: float | None  # None when the PyTorch fp32 row was not run
    lane_iou: float | None
    dice: float | None
    note: str


def cores_used(cpu: Any, threads: int) -> int:
    """Cores the runtimes may use: all of them unless --threads caps it."""
    return min(threads, cpu.cores) if threads > 0 else cpu.cores


def make_rows(
    runners: list[Runner], gmacs: float, cpu: Any, accs: dict, threads: int = 0
) -> list[Row]:
    """Rows from pooled timings; the peak is the CPU's for the cores the runtimes were given."""
    share = cores_used(cpu, threads) / cpu.cores
    base = next((r for r in runners if r.name.startswith("PyTorch fp32")), None)
    base_p50 = percentile(base.times_ms, 50) if base else None
    rows = []
    for r in runners:
        p50 = percentile(r.times_ms, 50)
        mean = float(np.mean(r.times_ms))
        achieved = gmacs / (p50 / 1e3)
        peak = 0.0 if r.gpu else cpu.peak_gmacs(r.precision) * share
        iou, dice = accs.get(r.name, (None, None))
        rows.append(
            Row(
                name=r.name,
                runtime=r.runtime,
                precision=r.precision,
                provider=r.provider,
                gpu=r.gpu,
                file=str(r.file),
                size_bytes=Path(r.file).stat().st_size,
                load_s=r.load_s,
                p50_ms=p50,
                p95_ms=percentile(r.times_ms, 95),
                p99_ms=percentile(r.times_ms, 99),
                mean_ms=mean,
                fps=1e3 / mean,
                timed_runs=len(r.times_ms),
                load_peak_mb=r.load_peak_mb,
                infer_peak_mb=r.infer_peak_mb,
                gmacs=gmacs,
                achieved_gmacs_per_s=achieved,
                peak_gmacs_per_s=peak,
                peak_fraction=achieved / peak if peak > 0 else float("nan"),
                speedup_vs_torch_fp32=None if base_p50 is None else base_p50 / p50,
                lane_iou=iou,
                dice=dice,
                note=r.note,
            )
        )
    return rows


def run_bench(
    cfg: BenchConfig, node: dict | None = None, log: Callable[[str], None] = print
) -> dict:
    """Everything in one process; returns the report (also written by `write_report`)."""
    check_inputs(cfg)
    model, info = load_model(cfg.checkpoint)  # a bad checkpoint: refused before any output
    check_pair(cfg, info)
    cfg.out.mkdir(parents=True, exist_ok=True)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    load_before = os.getloadavg()
    cpu = CpuInfo.detect()
    hardware = cpu.line() if cfg.isa is None else isa.label(cpu.line(), cfg.isa)
    if cfg.isa is not None:
        cpu = cpu.avx2_class()  # its peaks: this CPU's cores and clock, AVX2 only
    model.eval()
    pre = info.preprocess
    cx = complexity(model, pre.height, pre.width)
    frames, frames_desc = load_frames(cfg.real_dir, cfg.frames)
    inputs = [to_input(f, pre) for f in frames]
    log(
        f"{hardware}\nframes: {frames_desc}; model input {pre.width}x{pre.height}; "
        f"{cx.gmacs:.3f} GMACs/frame"
    )
    runners, skipped, extra = build_runners(cfg, model, info, inputs[0])
    for s in skipped:
        log(f"skipped {s['name']}: {s['reason']}")
    cap = None if cfg.isa is None else _check_cap(runners, cfg.isa)
    if cap is not None:
        extra["notes"].append(
            f"{cap['isa']} code paths on this CPU ("
            + ", ".join(f"{k}={v}" for k, v in cap["environment"].items())
            + "): every kernel in the executed graphs of the rows above is checked, none is "
            "AVX-512, AMX or VNNI (bench.json isa_cap.kernels), and numpy's and OpenCV's "
            "dispatch above AVX2 is off (isa_cap.libraries). An emulation of that class at "
            "this CPU's clock, caches and memory, not a measurement on such a CPU."
        )
    log(
        f"timing {len(runners)} engines: {cfg.rounds} interleaved rounds x {cfg.iters} runs "
        f"after {cfg.warmup} warm-up runs each"
    )
    time_rounds(runners, inputs, cfg.rounds, cfg.iters, cfg.warmup)
    load_after = os.getloadavg()
    accs: dict = {}
    eval_desc = None
    if cfg.data is not None:
        ev = EvalFrames.load(scored_samples(cfg.data, cfg.split, cfg.eval_limit), pre)
        eval_desc = f"{cfg.data} split {cfg.split}, {len(ev.inputs)} frames"
        log(f"scoring lane IoU on {eval_desc}")
        for r in runners:
            acc = score(r.engine, ev)  # the scoring loop of `lane-seg eval`
            accs[r.name] = (acc.lane_iou, acc.dice)
    rows = make_rows(runners, cx.gmacs, cpu, accs, cfg.threads)
    gpu = torch.cuda.get_device_name(0) if any(r.gpu for r in runners) else None
    return {
        "hardware": hardware + (f"; GPU: {gpu}" if gpu else ""),
        "isa_cap": cap,
        "gpu": gpu,
        "cores": cpu.cores,
        "peak_gmacs_per_s": {"fp32": cpu.peak_gmacs("fp32"), "int8": cpu.peak_gmacs("int8")},
        "cores_used": cores_used(cpu, cfg.threads),
        "model": {
            "checkpoint": str(cfg.checkpoint),
            "arch": info.arch,
            "config": info.model_config,
            "params": cx.params,
            "gmacs": cx.gmacs,
            "input": [pre.height, pre.width],
        },
        "frames": frames_desc,
        "timing": {
            "rounds": cfg.rounds,
            "iters_per_round": cfg.iters,
            "warmup": cfg.warmup,
            "batch": 1,
            "threads": cfg.threads or "runtime default",
            "interleaved": True,
            "fps": "1000 / mean latency, batch 1, sequential",
        },
        "memory_method": PeakRss().method,
        "load_average_before": list(load_before),
        "load_average_after": list(load_after),
        "accuracy_set": eval_desc,
        "calibration": extra.get("calibration"),
        "notes": extra["notes"],
        "rows": [asdict(r) for r in rows],
        "skipped": skipped,
        "node": node,
    }


def _check_cap(runners: list[Runner], isa_name: str) -> dict:
    """The cap as this process sees it and each capped row's kernels; refused where one is above
    the cap (lane_seg.bench.isa)."""
    found = {}
    for r in runners:
        found[r.name] = isa.kernels(r.engine.compiled)
        isa.check_kernels(r.name, isa_name, found[r.name])
    return {
        "isa": isa_name.upper(),
        "environment": isa.cap_variables(),
        "kernels": found,
        "libraries": isa.check_libraries(isa_name),
    }
