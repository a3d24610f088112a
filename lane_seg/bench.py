"""One model on every runtime a user would pick, side by side, measured in one process run.

Rows: PyTorch fp32 eager (the .pt checkpoint), torch.ao int8 (static PTQ of the same checkpoint,
lane_seg.training.quant_torch), onnxruntime fp32 and int8 QDQ (the .onnx files, exported and
quantized here when not given), OpenVINO fp32 and int8 (the same .onnx files, when the openvino
wheel is installed). All rows see the same frames at batch 1.

Why the timing is interleaved: the machine is shared, so its load drifts over a run. Timing
engine A for a minute and then engine B would charge the drift to one of them. Instead every
round times every engine (in a rotated order), and the percentiles pool all rounds; the load
average before and after is recorded.

Peak memory: native runtimes allocate outside Python's allocator, so tracemalloc sees nothing.
We read the kernel's resident-set high-water mark (VmHWM in /proc/self/status) and reset it
between measurements by writing "5" to /proc/self/clear_refs (Linux >= 4.0). Per row we report
the peak RSS growth while loading the engine and running its first inference ("load"), and the
peak RSS above the pre-run RSS during its timed inferences ("infer"). Where clear_refs is not
writable the high-water mark cannot be reset and the figures say so ("method").
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lane_seg.errors import LaneSegError
from lane_seg.preprocess import to_input

REPO = Path(__file__).resolve().parents[1]
REAL_FRAMES = Path(
    os.environ.get("LANE_SEG_REAL_DATA", REPO.parent / "shared" / "data" / "real")
) / ("tusimple_lanenet/image")
FRAME_HW = (256, 512)
SIM_FRAME_SEED = 8128  # simulator seed for timing frames when no real ones are present
SIM_CALIB_SEED = 4242  # a different seed for calibration frames when no --data is given

Predict = Callable[[np.ndarray], np.ndarray]


# ---------------------------------------------------------------- memory


def _status_kb(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_hwm() -> bool:
    """Reset VmHWM to the current RSS; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class PeakRss:
    """Peak resident-set growth (MiB) over a block of code."""

    def __init__(self) -> None:
        self.reset_ok = _reset_hwm()
        self.start_kb = _status_kb("VmRSS") or 0

    @property
    def method(self) -> str:
        if self.reset_ok:
            return "VmHWM (reset via /proc/self/clear_refs) minus VmRSS before"
        return "VmHWM minus VmRSS before (HWM not resettable: upper bound of process peak)"

    def growth_mb(self) -> float:
        hwm = _status_kb("VmHWM")
        if hwm is None:
            return float("nan")
        return max(0, hwm - self.start_kb) / 1024.0


# ---------------------------------------------------------------- frames


def load_frames(real_dir: Path | None, count: int = 8) -> tuple[list[np.ndarray], str]:
    """`count` RGB frames at 256x512: real road frames when present, else simulator frames."""
    import cv2

    files: list[Path] = []
    if real_dir is not None and real_dir.is_dir():
        files = sorted(p for p in real_dir.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    frames = []
    for f in files[:count]:
        bgr = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if bgr is None:
            continue
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        frames.append(cv2.resize(rgb, FRAME_HW[::-1], interpolation=cv2.INTER_AREA))
    if frames:
        return frames, f"real: {len(frames)} frames from {real_dir}"
    return sim_frames(SIM_FRAME_SEED, count), f"simulator: {count} frames, seed {SIM_FRAME_SEED}"


def sim_frames(seed: int, count: int) -> list[np.ndarray]:
    from lane_seg.sim.collect import render_frame
    from lane_seg.sim.scene import SimConfig

    cfg = SimConfig(height=FRAME_HW[0], width=FRAME_HW[1])
    return [render_frame(seed, i, cfg)[0] for i in range(count)]


# ---------------------------------------------------------------- rows


@dataclass
class Runner:
    """One engine under test; `predict` maps float32 1x3xHxW to logits."""

    name: str
    runtime: str
    precision: str
    file: Path
    provider: str
    predict: Predict
    load_s: float
    load_peak_mb: float
    note: str = ""
    times_ms: list[float] = field(default_factory=list)
    infer_peak_mb: float = 0.0


@dataclass
class Row:
    name: str
    runtime: str
    precision: str
    provider: str
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
    speedup_vs_torch_fp32: float
    lane_iou: float | None
    dice: float | None
    note: str


def _pct(a: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(a), q))


def _timed_load(make: Callable[[], tuple[Predict, str]], x: np.ndarray) -> tuple[Any, float, float]:
    """(predict, provider), load seconds, peak RSS growth over load + one inference."""
    mem = PeakRss()
    t0 = time.perf_counter()
    predict, provider = make()
    predict(x)
    return (predict, provider), time.perf_counter() - t0, mem.growth_mb()


def time_rounds(
    runners: list[Runner], inputs: list[np.ndarray], rounds: int, iters: int, warmup: int
) -> None:
    """Warm every engine, then `rounds` rounds in which every engine runs `iters` timed calls."""
    for r in runners:
        for i in range(warmup):
            r.predict(inputs[i % len(inputs)])
    for k in range(rounds):
        order = runners[k % len(runners) :] + runners[: k % len(runners)]
        for r in order:
            mem = PeakRss()
            for i in range(iters):
                x = inputs[(k * iters + i) % len(inputs)]
                t0 = time.perf_counter()
                r.predict(x)
                r.times_ms.append((time.perf_counter() - t0) * 1e3)
            r.infer_peak_mb = max(r.infer_peak_mb, mem.growth_mb())


# ---------------------------------------------------------------- the engines


def _torch_predict(model: Any) -> Predict:
    import torch

    model.eval()

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(x)).float().numpy()

    return predict


def _engine_predict(engine: Any) -> tuple[Predict, str]:
    return engine.infer, engine.device


def calibration_inputs(data: Path | None, size: int, cfg: Any) -> tuple[list[np.ndarray], dict]:
    """Calibration frames: the train split of --data, else simulator frames (another seed)."""
    if data is not None:
        from lane_seg.training.quant_data import select_calibration

        calib = select_calibration(data, size)
        return list(calib.inputs(cfg)), calib.identity()
    frames = sim_frames(SIM_CALIB_SEED, size)
    return [to_input(f, cfg) for f in frames], {
        "dataset": "built-in simulator (render_frame)",
        "seed": SIM_CALIB_SEED,
        "count": size,
    }


def torch_int8_model(model: Any, calib: list[np.ndarray]) -> tuple[Any, str]:
    import torch

    from lane_seg.training import quant_torch

    backend = quant_torch.detect_backend()
    example = torch.from_numpy(calib[0])
    q = quant_torch.ptq(model, example, (torch.from_numpy(c) for c in calib), backend=backend)
    return q, f"torch.ao {backend.engine}" + (" reduce_range" if backend.reduce_range else "")


def ensure_onnx(
    model: Any, info: Any, onnx_fp32: Path | None, onnx_int8: Path | None, out: Path, calib: Any
) -> tuple[Path, Path, list[str]]:
    """The given .onnx files, or ones exported / quantized into `out` from the checkpoint."""
    notes = []
    if onnx_fp32 is None:
        from lane_seg.models.export import export_onnx

        onnx_fp32 = export_onnx(model, info, out / "model_fp32.onnx")
        notes.append(f"fp32 ONNX exported to {onnx_fp32}")
    if onnx_int8 is None:
        from dataclasses import replace

        from lane_seg.training.onnx_quant import FrameReader, quantize_qdq

        inputs, ident = calib()
        qinfo = replace(info, precision="int8", calibration=ident)
        onnx_int8 = quantize_qdq(onnx_fp32, out / "model_int8.onnx", FrameReader(inputs), qinfo)
        notes.append(f"int8 QDQ ONNX quantized to {onnx_int8}")
    return onnx_fp32, onnx_int8, notes


# ---------------------------------------------------------------- the whole run


@dataclass
class BenchConfig:
    checkpoint: Path
    onnx_fp32: Path | None = None
    onnx_int8: Path | None = None
    data: Path | None = None
    split: str = "val"
    eval_limit: int | None = 50
    calib_size: int = 16
    real_dir: Path | None = REAL_FRAMES
    frames: int = 8
    rounds: int = 5
    iters: int = 20
    warmup: int = 5
    threads: int = 0
    engines: tuple[str, ...] = (
        "torch-fp32",
        "torch-int8",
        "ort-fp32",
        "ort-int8",
        "ov-fp32",
        "ov-int8",
    )
    out: Path = Path("runs/bench")


def _check_inputs(cfg: BenchConfig) -> None:
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


def build_runners(
    cfg: BenchConfig, model: Any, info: Any, x: np.ndarray
) -> tuple[list[Runner], list[dict], dict]:
    """Load every engine (timing the load and its memory); skipped ones come back with a reason."""
    from lane_seg.engines import OnnxRuntimeEngine, OpenVinoEngine, openvino_available

    runners: list[Runner] = []
    skipped: list[dict] = []
    extra: dict = {"notes": []}
    cache: dict = {}

    def calib() -> tuple[list[np.ndarray], dict]:
        if "calib" not in cache:
            cache["calib"] = calibration_inputs(cfg.data, cfg.calib_size, info.preprocess)
            extra["calibration"] = cache["calib"][1]
        return cache["calib"]

    def add(
        name: str, runtime: str, precision: str, file: Path, make: Callable, note: str = ""
    ) -> None:
        (predict, provider), load_s, peak = _timed_load(make, x)
        runners.append(
            Runner(name, runtime, precision, file, provider, predict, load_s, peak, note)
        )

    want = set(cfg.engines)
    if "torch-fp32" in want:
        add(
            "PyTorch fp32 eager",
            "torch",
            "fp32",
            cfg.checkpoint,
            lambda: (_torch_predict(model), "torch-cpu"),
        )
    if "torch-int8" in want:
        import torch

        def make_q() -> tuple[Predict, str]:
            q, provider = torch_int8_model(model, calib()[0])
            cache["q"] = q
            return _torch_predict(q), provider

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
    onnx_fp32, onnx_int8 = cfg.onnx_fp32, cfg.onnx_int8
    if want & {"ort-fp32", "ort-int8", "ov-fp32", "ov-int8"}:
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
                lambda p=path: _engine_predict(
                    OnnxRuntimeEngine(p, cfg.threads, "onnxruntime-cpu")
                ),
            )
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
            lambda p=path: _engine_predict(OpenVinoEngine(p, cfg.threads)),
        )
    return runners, skipped, extra


def accuracy(runner: Runner, frames: Any, info: Any) -> tuple[float, float]:
    from lane_seg.training.quant_eval import evaluate

    acc = evaluate(runner.predict, frames, info.preprocess, info.threshold)
    return acc.lane_iou, acc.dice


def make_rows(runners: list[Runner], gmacs: float, cpu: Any, accs: dict) -> list[Row]:
    base = next((r for r in runners if r.name.startswith("PyTorch fp32")), None)
    base_p50 = _pct(base.times_ms, 50) if base else float("nan")
    rows = []
    for r in runners:
        p50 = _pct(r.times_ms, 50)
        mean = float(np.mean(r.times_ms))
        achieved = gmacs / (p50 / 1e3)
        peak = cpu.peak_gmacs(r.precision)
        iou, dice = accs.get(r.name, (None, None))
        rows.append(
            Row(
                name=r.name,
                runtime=r.runtime,
                precision=r.precision,
                provider=r.provider,
                file=str(r.file),
                size_bytes=Path(r.file).stat().st_size,
                load_s=r.load_s,
                p50_ms=p50,
                p95_ms=_pct(r.times_ms, 95),
                p99_ms=_pct(r.times_ms, 99),
                mean_ms=mean,
                fps=1e3 / mean,
                timed_runs=len(r.times_ms),
                load_peak_mb=r.load_peak_mb,
                infer_peak_mb=r.infer_peak_mb,
                gmacs=gmacs,
                achieved_gmacs_per_s=achieved,
                peak_gmacs_per_s=peak,
                peak_fraction=achieved / peak if peak > 0 else float("nan"),
                speedup_vs_torch_fp32=base_p50 / p50,
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
    import torch

    from lane_seg.hwinfo import CpuInfo
    from lane_seg.models.checkpoint import load_model
    from lane_seg.models.complexity import complexity

    _check_inputs(cfg)
    cfg.out.mkdir(parents=True, exist_ok=True)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    load_before = os.getloadavg()
    cpu = CpuInfo.detect()
    model, info = load_model(cfg.checkpoint)
    model.eval()
    pre = info.preprocess
    cx = complexity(model, pre.height, pre.width)
    frames, frames_desc = load_frames(cfg.real_dir, cfg.frames)
    inputs = [to_input(f, pre) for f in frames]
    log(
        f"{cpu.line()}\nframes: {frames_desc}; model input {pre.height}x{pre.width}; "
        f"{cx.gmacs:.3f} GMACs/frame"
    )
    runners, skipped, extra = build_runners(cfg, model, info, inputs[0])
    for s in skipped:
        log(f"skipped {s['name']}: {s['reason']}")
    log(
        f"timing {len(runners)} engines: {cfg.rounds} interleaved rounds x {cfg.iters} runs "
        f"after {cfg.warmup} warm-up runs each"
    )
    time_rounds(runners, inputs, cfg.rounds, cfg.iters, cfg.warmup)
    load_after = os.getloadavg()
    accs: dict = {}
    eval_desc = None
    if cfg.data is not None:
        from lane_seg.training.quant_data import eval_samples
        from lane_seg.training.quant_eval import EvalFrames

        ev = EvalFrames.load(eval_samples(cfg.data, cfg.split, cfg.eval_limit), pre)
        eval_desc = f"{cfg.data} split {cfg.split}, {len(ev.inputs)} frames"
        log(f"scoring lane IoU on {eval_desc}")
        for r in runners:
            accs[r.name] = accuracy(r, ev, info)
    rows = make_rows(runners, cx.gmacs, cpu, accs)
    return {
        "hardware": cpu.line(),
        "cores": cpu.cores,
        "peak_gmacs_per_s": {"fp32": cpu.peak_gmacs("fp32"), "int8": cpu.peak_gmacs("int8")},
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
