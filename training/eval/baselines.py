"""The tables of training/README.md (baselines, real-road remedies, the architecture trade-off),
from each run's own files.

For every training config: the model's size and GMACs at its input size, the run folder's logs
(`train.out`/epochs.csv: steps, wall and CPU minutes, the checkpoint it started from), and
`lane-seg eval` of its best.pt on the dataset's validation split and, when given a real data
root, on every labelled real source by its own labels (the real-frame scoreboard: lane IoU and
F1 within 8 px; frames the run trained on are left out). Nothing in the tables is typed by
hand: `lane-seg baselines --readme` rewrites them.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lane_seg.data import real_sources
from lane_seg.data.dataset import atomic_write
from lane_seg.errors import LaneSegError
from lane_seg.models import build_model, complexity
from lane_seg.training.eval.evaluate import load_model_engine, run_eval
from lane_seg.training.eval.scoreboard import score_source
from lane_seg.training.train.config import load_config

SCORES = ("lane_iou", "dice", "precision", "recall", "miou")


@dataclass
class Baseline:
    config: str
    arch: str
    init_from: str
    params: int
    gmacs: float
    input: tuple[int, int]
    steps: int
    wall_min: float
    cpu_min: float | None  # None for runs logged before epochs.csv had cpu_s
    val: dict[str, Any]  # the `lane-seg eval` summary
    real: dict[str, Any] | None  # real source -> scoreboard scores (all conditions)
    latency: dict[str, float] | None = None  # int8 p50 ms per engine (`lane-seg models`)


def _epochs(run: Path) -> list[dict[str, str]]:
    path = run / "epochs.csv"
    if not path.is_file():
        raise LaneSegError(f"{path} is missing; train the config first (`lane-seg train`)")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise LaneSegError(f"{path} has no finished epoch")
    return rows


def real_scores(model: Path, root: Path) -> dict[str, Any]:
    """The scoreboard's figures of one model, per real source present under `root`."""
    engine = load_model_engine(model)
    rows = [score_source(engine, src, root, None) for src in real_sources.available(root)]
    return {r["source"]: {**r["all"], "left_out_trained": r["left_out_trained"]} for r in rows}


def measure(config: Path, data: Path, split: str, real: Path | None, out: Path) -> Baseline:
    """One row: the config's run, evaluated now (the val summary written to out/<config>-val)."""
    cfg = load_config(config)
    run = Path(cfg.train.out)
    last = _epochs(run)[-1]
    h, w = cfg.data.height, cfg.data.width
    size = complexity(build_model(cfg.model.name, **cfg.model.options), h, w)

    def evaluate(dataset: Path, name: str, split: str) -> dict[str, Any]:
        dest = out / f"{config.stem}-{name}"
        return run_eval(run / "best.pt", dataset, dest, split, gallery_size=0, progress=False)

    return Baseline(
        config=str(config),
        arch=cfg.model.name,
        init_from=cfg.train.init_from,
        params=size.params,
        gmacs=size.gmacs,
        input=(h, w),
        steps=int(last["step"]),
        wall_min=float(last["elapsed_s"]) / 60.0,
        cpu_min=float(last["cpu_s"]) / 60.0 if last.get("cpu_s") else None,
        val=evaluate(data, split, split),
        real=real_scores(run / "best.pt", real) if real is not None else None,
    )


LATENCY_NAMES = {"onnxruntime-cpu": "onnxruntime", "openvino": "OpenVINO"}


def markdown(rows: list[Baseline]) -> str:
    def pct(s: dict | None, key: str) -> str:
        return "-" if s is None else f"{100 * s[key]:.1f}"

    first = rows[0]
    engines = list(first.latency or {})
    sources = list(first.real or {})
    scores = ("lane_iou", "dice") if sources else SCORES
    head = ["config", "starts from", "params", "GMACs"]
    head += [f"int8 {LATENCY_NAMES.get(e, e)} p50 ms" for e in engines]
    head += ["steps", "CPU min", "wall min", "val lane IoU %", "Dice %"]
    if not sources:
        head += ["precision %", "recall %", "mIoU %"]
    head += [f"{s} IoU / F1@8 %" for s in sources]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for r in rows:
        cells = [
            f"`{r.config}`",
            f"`{r.init_from}`" if r.init_from else "scratch",
            f"{r.params:,}",
            f"{r.gmacs:.3f}",
            *(f"{(r.latency or {}).get(e, float('nan')):.2f}" for e in engines),
            str(r.steps),
            "-" if r.cpu_min is None else f"{r.cpu_min:.1f}",
            f"{r.wall_min:.1f}",
            *(pct(r.val, k) for k in scores),
            *(_real_cell((r.real or {}).get(s)) for s in sources),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [
        f"Validation: {first.val['images']} frames of `{first.val['data']}` split "
        f"`{first.val['split']}`; GMACs at {first.input[1]}x{first.input[0]}; minutes from each "
        "run's epochs.csv (CPU = the training process's CPU time)."
    ]
    if engines:
        notes.append(
            "Latency: each architecture's int8 QDQ ONNX, batch 1, median (`lane-seg models "
            "--latency`); speed does not depend on the weights."
        )
    if sources:
        notes.append(
            "Real: every labelled real source by its own labels (`lane-seg eval --real`): lane "
            "IoU and F1 within 8 px over all its frames, fp32 best.pt; frames a run trained on "
            "are left out (marked *)."
        )
    return "\n".join(lines) + "\n\n" + " ".join(notes) + "\n"


def _real_cell(s: dict | None) -> str:
    if s is None:
        return "-"
    mark = "*" if s.get("left_out_trained") else ""
    return f"{100 * s['lane_iou']:.1f} / {100 * s['tol_f1']:.1f}{mark}"


def write(rows: list[Baseline], out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "baselines.json", "markdown": out / "baselines.md"}
    data = [asdict(r) for r in rows]
    atomic_write(paths["json"], (json.dumps(data, indent=2) + "\n").encode(), durable=False)
    atomic_write(paths["markdown"], markdown(rows).encode(), durable=False)
    return paths
