"""`lane-seg adapt`: a model adapted to one camera from that camera's unlabelled frames.

Frames in (`(key, clip, RGB)` from the frame readers the command picks), and under OUT:

  adapted.pt                 the checkpoint with re-estimated BatchNorm statistics (adabn)
  adapted_fp32.onnx          the adapted model, exported by the one exporter
  adapted_int8.onnx          its int8 file, calibrated on the camera's frames (calibration) or
                             on a dataset's train split
  source_fp32.onnx           the starting model as it was, for the figures before
  adapt_card.json, ADAPT.md  the card section: the starting model and its sha256, each method
                             applied, the frames (count and sha256 of each), the label-free
                             figures (`figures`) before and after, the outputs, the time, the CPU

Methods (each a rung that can be switched off, to be measured on its own):
- `adabn`: BatchNorm statistics re-estimated on the frames, mixed with the source's by
  `alpha` (`batchnorm`); needs a checkpoint of a model with BatchNorm.
- `selftrain`: the (adapted) model's own confident lines on the frames become labels and a
  short fine-tune on them, mixed with a simulator dataset, follows (`selftrain`); needs a
  model of the lines convention. Not in the default: it trains for minutes.
- `distill`: a short fine-tune toward the (adapted) model's own probabilities on the frames,
  averaged with those of the mirrored frames, mixed with a simulator dataset's labelled frames
  (`distill`); any model, needs the simulator dataset. Not in the default: it trains for minutes.
- `calibration`: the int8 file's activation ranges from the camera's frames instead of
  simulator frames (`lane_seg.training.quant.calibration`, the same rule as every export).

Resumable: `adapt_state.json` names the inputs (model sha256, frames sha256, settings); each
stage's file is written atomically and a re-run with the same inputs skips the stages whose
files are there, so a killed run loses at most the stage it was in. A re-run with other inputs
into the same OUT is refused rather than mixing two adaptations.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from lane_seg.artifact import ModelInfo
from lane_seg.data.dataset import atomic_write, sha256_file
from lane_seg.errors import LaneSegError
from lane_seg.models.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from lane_seg.preprocess import resize_image, to_input, uncropped
from lane_seg.runtime.hwinfo import CpuInfo
from lane_seg.runtime.segmenter import Segmenter
from lane_seg.training.adapt import distill, selftrain
from lane_seg.training.adapt.batchnorm import adapt_batchnorm, batchnorm_layers
from lane_seg.training.adapt.figures import LineFigures, line_figures
from lane_seg.training.quant.calibration import (
    CALIB_SEED,
    CALIB_SIZE,
    CalibrationSet,
    frames_calibration,
    select_calibration,
)
from lane_seg.training.quant.exporter import export_model

METHODS = ("adabn", "selftrain", "distill", "calibration")  # in the order they are applied
DEFAULT_METHODS = ("adabn", "calibration")
MIN_FRAMES = 50  # enough to adapt to a camera (docs: README, "Your camera")
MAX_FRAMES = 500
STATE, FIGURES = "adapt_state.json", "figures.json"
CARD_JSON, CARD_MD = "adapt_card.json", "ADAPT.md"
CHECKPOINT, FP32, INT8 = "adapted.pt", "adapted_fp32.onnx", "adapted_int8.onnx"
SOURCE_FP32 = "source_fp32.onnx"
FIGURES_ENGINE = "onnxruntime-cpu"  # the figures' passes: two to ten times torch eager's speed


@dataclass(frozen=True)
class AdaptConfig:
    methods: tuple[str, ...] = DEFAULT_METHODS
    alpha: float = 0.5  # AdaBN: share of the target's statistics (1 = target only)
    min_frames: int = MIN_FRAMES
    max_frames: int = MAX_FRAMES
    calib_size: int = CALIB_SIZE
    calib_dataset: str = ""  # without `calibration`: this dataset's train split calibrates
    seed: int = CALIB_SEED
    sim: str = ""  # selftrain: simulator dataset mixed into the fine-tune ("" = none)
    selftrain_steps: int = 200
    distill_steps: int = 50
    threads: int = 0  # torch and onnxruntime threads (0: their default)

    def check(self) -> None:
        unknown = sorted(set(self.methods) - set(METHODS))
        if unknown or not self.methods:
            raise LaneSegError(f"methods must be some of {', '.join(METHODS)}; got {unknown}")
        if not 0.0 <= self.alpha <= 1.0:
            raise LaneSegError(f"--alpha must be in [0, 1], got {self.alpha}")
        if not 1 <= self.min_frames <= self.max_frames:
            raise LaneSegError("need 1 <= --min-frames <= --max-frames")
        if min(self.calib_size, self.selftrain_steps, self.distill_steps) < 1 or self.threads < 0:
            raise LaneSegError(
                "--calib-size, --selftrain-steps and --distill-steps must be >= 1, --threads >= 0"
            )
        if "distill" in self.methods and not self.sim:
            raise LaneSegError("distill needs --sim DATASET: the labelled frames it is mixed with")
        if "calibration" not in self.methods and not self.calib_dataset:
            raise LaneSegError(
                "without the calibration method the int8 file needs --calib DATASET "
                "(its train split calibrates, as `lane-seg export` does)"
            )


@dataclass
class TargetFrames:
    """The camera's frames at the model's scale (whole frames, `uncropped`), with where each
    came from and the sha256 of its pixels as read (before any resize)."""

    source: str
    keys: list[str] = field(default_factory=list)
    clips: list[str] = field(default_factory=list)
    sha256: list[str] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)

    def digest(self) -> str:
        return hashlib.sha256("".join(self.sha256).encode()).hexdigest()


def collect_frames(
    frames: Iterable[tuple[str, str, np.ndarray]], source: str, info: ModelInfo, limit: int
) -> TargetFrames:
    """Up to `limit` frames, resized to the model's scale as they are read."""
    pre = uncropped(info.preprocess)
    out = TargetFrames(source)
    for key, clip, rgb in frames:
        rgb = np.ascontiguousarray(rgb)
        digest = hashlib.sha256(f"{rgb.shape}".encode() + rgb.tobytes()).hexdigest()
        out.keys.append(key)
        out.clips.append(clip)
        out.sha256.append(digest)
        out.frames.append(resize_image(rgb, pre))
        if len(out.frames) >= limit:
            break
    return out


def load_source(model: str | Path, cfg: AdaptConfig) -> tuple[torch.nn.Module, ModelInfo]:
    """The starting model from its checkpoint; refused (one line) when it cannot be adapted."""
    path = Path(model)
    if path.suffix.lower() == ".onnx":
        raise LaneSegError(
            f"{path} is an ONNX file; adapt starts from the model's checkpoint (.pt): an ONNX "
            "file's BatchNorm is folded into its convolutions and it cannot be exported again"
        )
    net, info = model_from_checkpoint(load_checkpoint(path), source=str(path))
    if "adabn" in cfg.methods and not batchnorm_layers(net):
        raise LaneSegError(
            f"{path} ({info.arch}) has no BatchNorm layers, so there are no statistics to "
            "re-estimate; leave adabn out of --methods"
        )
    if "selftrain" in cfg.methods and info.labels != "lines":
        raise LaneSegError(
            f"{path} predicts {info.labels} labels; self-training draws its labels in the "
            "lines convention, so leave selftrain out of --methods"
        )
    return net, info


@dataclass
class AdaptReport:
    out: Path
    frames: int
    figures: dict[str, dict[str, Any]]
    stages: dict[str, float]  # seconds per stage run now (resumed stages are left out)
    seconds: float
    card: dict[str, Any]


class _Run:
    """One adaptation into `out`: the stages, each skipped when its file is there."""

    def __init__(self, out: Path, progress: bool, threads: int) -> None:
        self.out, self.progress, self.threads = out, progress, threads
        self.stages: dict[str, float] = {}

    def figures(self, name: str, seg: Segmenter, target: TargetFrames) -> dict[str, Any]:
        path = self.out / FIGURES
        have = json.loads(path.read_text()) if path.is_file() else {}
        if name not in have:
            t0 = time.perf_counter()
            with tqdm(total=len(target.frames), desc=name, disable=not self.progress) as bar:
                found: LineFigures = line_figures(
                    lambda f: seg.segment_lanes(f)[1], target.frames, target.clips, bar.update
                )
            have[name] = found.to_json()
            atomic_write(path, (json.dumps(have, indent=2) + "\n").encode())
            self.stages[f"figures: {name}"] = time.perf_counter() - t0
        return have[name]

    def timed(self, stage: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        result = fn()
        self.stages[stage] = time.perf_counter() - t0
        return result


def _state(model: Path, target: TargetFrames, cfg: AdaptConfig) -> dict[str, Any]:
    """What the outputs depend on (threads and the frame bounds do not: the frames' sha256
    says which frames were used); JSON-shaped, so a state read back compares equal."""
    settings = {k: v for k, v in asdict(cfg).items() if k in _STATE_SETTINGS}
    if "distill" in cfg.methods:  # only with its method, so that earlier runs' states still hold
        settings["distill_steps"] = cfg.distill_steps
    state = {
        "model_sha256": sha256_file(model),
        "frames": len(target.frames),
        "frames_sha256": target.digest(),
        "settings": settings,
    }
    return json.loads(json.dumps(state))


_STATE_SETTINGS = ("methods", "alpha", "calib_size", "calib_dataset", "seed", "sim",
                   "selftrain_steps")  # fmt: skip


def _open_state(out: Path, state: dict[str, Any]) -> None:
    path = out / STATE
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError:
            old = None
        if old != state:
            raise LaneSegError(
                f"{out} holds an adaptation of another model, other frames or other settings "
                f"({STATE}); choose another --out"
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(path, (json.dumps(state, indent=2) + "\n").encode())


def adapted_info(info: ModelInfo, target: TargetFrames, cfg: AdaptConfig) -> ModelInfo:
    what = (
        f"AdaBN (alpha {cfg.alpha:g}) on {len(target.frames)} frames of {target.source} "
        f"(sha256 {target.digest()[:16]})"
        if "adabn" in cfg.methods
        else ""
    )
    train_data = f"{info.train_data}; adapted: {what}" if what else info.train_data
    return replace(info, train_data=train_data, metrics={})


def calibration_set(target: TargetFrames, cfg: AdaptConfig) -> CalibrationSet:
    if "calibration" in cfg.methods:
        keys = [f"{i:06d} {key}" for i, key in enumerate(target.keys)]  # ids sort in order
        pairs = list(zip(keys, target.frames, strict=True))
        source = f"camera frames of {target.source}"
        return frames_calibration(pairs, source, cfg.calib_size, cfg.seed)
    return select_calibration(cfg.calib_dataset, cfg.calib_size, cfg.seed)


def adapt(
    model: str | Path,
    frames: Iterable[tuple[str, str, np.ndarray]],
    source: str,
    out: str | Path,
    cfg: AdaptConfig = AdaptConfig(),  # noqa: B008 (frozen)
    progress: bool = False,
) -> AdaptReport:
    """Adapt the checkpoint `model` to the camera of `frames` (module docstring)."""
    cfg.check()
    t0 = time.perf_counter()
    model, out = Path(model), Path(out)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    net, info = load_source(model, cfg)
    origin = load_checkpoint(model).get("recovered_from")  # lane_seg.training.adapt.recover
    target = collect_frames(frames, source, info, cfg.max_frames)
    if len(target.frames) < cfg.min_frames:
        raise LaneSegError(
            f"{source}: {len(target.frames)} readable frames, adapt needs at least "
            f"{cfg.min_frames} (--min-frames)"
        )
    state = _state(model, target, cfg)
    _open_state(out, state)
    run = _Run(out, progress, cfg.threads)
    if not (out / SOURCE_FP32).is_file():
        export = lambda: export_model(net, out / SOURCE_FP32, info=info, check=False)  # noqa: E731
        run.timed("export source", export)
    source_fp32 = Segmenter.load(str(out / SOURCE_FP32), FIGURES_ENGINE, cfg.threads)
    figures = {"source fp32": run.figures("source fp32", source_fp32, target)}
    new_info = adapted_info(info, target, cfg)
    applied: dict[str, Any] = {}
    if "adabn" in cfg.methods:
        ckpt = out / CHECKPOINT
        if ckpt.is_file():
            net, _ = model_from_checkpoint(load_checkpoint(ckpt))
        else:
            inputs = (to_input(f, info.preprocess) for f in target.frames)
            run.timed("adabn", lambda: adapt_batchnorm(net, inputs, cfg.alpha))
            save_checkpoint(ckpt, net, new_info)
        applied["adabn"] = {"alpha": cfg.alpha, "layers": len(batchnorm_layers(net)),
                            "frames": len(target.frames)}  # fmt: skip
    start = out / CHECKPOINT if "adabn" in cfg.methods else model
    net, new_info = _trained(run, start, net, new_info, target, cfg, applied)
    calib = calibration_set(target, cfg)
    if not ((out / FP32).is_file() and (out / INT8).is_file()):
        export = lambda: export_model(net, out / FP32, out / INT8, calib, info=new_info)  # noqa: E731
        run.timed("export", export)
    name = "calibration" if "calibration" in cfg.methods else "int8 calibration"
    applied[name] = calib.identity()
    if {"adabn", "selftrain", "distill"} & set(cfg.methods):  # else the fp32 model is the source's
        fp32 = Segmenter.load(str(out / FP32), FIGURES_ENGINE, cfg.threads)
        figures["adapted fp32"] = run.figures("adapted fp32", fp32, target)
    int8 = Segmenter.load(str(out / INT8), FIGURES_ENGINE, cfg.threads)
    figures["adapted int8"] = run.figures("adapted int8", int8, target)
    seconds = time.perf_counter() - t0
    card = _card(model, target, state, applied, figures, out, seconds)
    if origin:
        card["model"]["recovered_from"] = origin
    card["stages_s"] = {k: round(v, 1) for k, v in run.stages.items()}  # run now, not resumed
    atomic_write(out / CARD_JSON, (json.dumps(card, indent=2) + "\n").encode())
    atomic_write(out / CARD_MD, card_markdown(card).encode())
    return AdaptReport(out, len(target.frames), figures, run.stages, seconds, card)


def _trained(
    run: _Run,
    start: Path,
    net: torch.nn.Module,
    info: ModelInfo,
    target: TargetFrames,
    cfg: AdaptConfig,
    applied: dict[str, Any],
) -> tuple[torch.nn.Module, ModelInfo]:
    """The training rungs in order, self-training then distillation, each from the checkpoint
    the one before left (`start` first); what each did goes into `applied`."""
    out, t0 = run.out, time.perf_counter()
    if "selftrain" in cfg.methods:
        frames_in = list(zip(target.keys, target.clips, target.frames, strict=True))
        done = selftrain.self_train(start, frames_in, target.digest(), out, cfg.sim,
                                    cfg.selftrain_steps, cfg.threads, run.progress)  # fmt: skip
        run.stages["selftrain"] = time.perf_counter() - t0
        if done is None:
            applied["selftrain"] = {"skipped": "no frame with both ego lines sure enough"}
        else:
            net, _, what = done
            info = replace(info, train_data=f"{info.train_data}; {what.describe()}")
            applied["selftrain"] = asdict(what)
            start = out / selftrain.RUN / "last.pt"
    if "distill" in cfg.methods:
        t0 = time.perf_counter()
        net, _, kd = distill.distill(start, target.frames, out, cfg.sim, cfg.distill_steps,
                                     cfg.threads, run.progress)  # fmt: skip
        run.stages["distill"] = time.perf_counter() - t0
        info = replace(info, train_data=f"{info.train_data}; {kd.describe()}")
        applied["distill"] = asdict(kd)
    return net, info


def _card(
    model: Path,
    target: TargetFrames,
    state: dict[str, Any],
    applied: dict[str, Any],
    figures: dict[str, dict[str, Any]],
    out: Path,
    seconds: float,
) -> dict[str, Any]:
    outputs = [p for p in (CHECKPOINT, FP32, INT8) if (out / p).is_file()]
    return {
        "model": {"path": str(model), "sha256": state["model_sha256"]},
        "frames": {
            "source": target.source,
            "count": len(target.frames),
            "size": [target.frames[0].shape[1], target.frames[0].shape[0]],
            "sha256": state["frames_sha256"],
            "each_sha256": dict(zip(target.keys, target.sha256, strict=True)),
        },
        "methods": applied,
        "figures": figures,
        "outputs": {p: sha256_file(out / p) for p in outputs},
        "seconds": round(seconds, 1),
        "cpu": CpuInfo.detect().line(),
    }


def _recovered(model: dict[str, Any]) -> str:
    o = model.get("recovered_from")
    if not o:
        return ""
    agree, src = o["vs_int8_file"], o["source_frames"]
    return (
        f", recovered from `{o['path']}` (sha256 `{o['sha256']}`): its int8 weights "
        f"dequantized, the BatchNorm statistics of {o['batchnorm_layers']} layers measured on "
        f"{src['count']} frames of the {src['source']}; on {agree['frames']} of them its masks "
        f"agree with the int8 file's at {agree['mask_agreement_iou']:.1f} % IoU"
        + (f"; recovered in {o['seconds']:.0f} s" if "seconds" in o else "")
    )


def card_markdown(card: dict[str, Any]) -> str:
    """The card section as markdown: what was adapted, how, and the figures before and after."""
    m, f = card["model"], card["frames"]
    lines = [
        "## Adapted to a camera (`lane-seg adapt`)",
        "",
        f"- Starting model: `{m['path']}` (sha256 `{m['sha256']}`)" + _recovered(m),
        f"- Frames: {f['count']} of `{f['source']}` (sha256 over the frames `{f['sha256']}`; "
        f"each frame's in {CARD_JSON})",
    ]
    for name, what in card["methods"].items():
        if name == "adabn":
            lines.append(
                f"- AdaBN: the BatchNorm statistics of {what['layers']} layers re-estimated on "
                f"the {what['frames']} frames, mixed {what['alpha']:g} target / "
                f"{1 - what['alpha']:g} source"
            )
        elif name == "selftrain":
            done = what.get("skipped") or (
                f"{what['steps']} steps on the {what['pseudo_frames']} of {what['frames']} frames "
                f"with both ego lines sure (pseudo-labels)"
                + (f", mixed half and half with `{what['sim']}`" if what["sim"] else "")
            )
            lines.append(f"- Self-training: {done}")
        elif name == "distill":
            lines.append(
                f"- Distillation: {what['steps']} steps toward the model's own probabilities "
                f"on the {what['frames']} frames (mean of each frame's and its mirror's), mixed "
                f"half and half with `{what['sim']}`'s labelled frames"
            )
        else:
            where = "the camera's frames" if name == "calibration" else "a dataset, not the camera"
            lines.append(
                f"- int8 calibration on {where}: {what['count']} frames of `{what['dataset']}` "
                f"(seed {what['seed']}, sha256 `{what['images_sha256'][:16]}`)"
            )
    lines += [
        "",
        f"Label-free figures on the adaptation frames at the model's scale ({f['size'][0]}x"
        f"{f['size'][1]}, `lane_seg.training.adapt.figures`; none of them is accuracy):",
        "",
        "| model | both ego lines | ego line confidence | ego line jitter (px) | lines per frame |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, fig in card["figures"].items():
        jitter = "-" if fig["jitter_px"] is None else f"{fig['jitter_px']:.2f}"
        lines.append(
            f"| {name} | {fig['both_ego']:.1%} | {fig['confidence']:.3f} | {jitter} | "
            f"{fig['lines']:.2f} |"
        )
    lines += ["", "Outputs:", ""]
    lines += [f"- `{name}` sha256 `{digest}`" for name, digest in card["outputs"].items()]
    lines += ["", f"{card['seconds']:.0f} s on {card['cpu']}", ""]
    return "\n".join(lines)
