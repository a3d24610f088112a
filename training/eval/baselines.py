"""The baseline table of training/README.md, from each run's own files.

For every training config: the model's size and GMACs at its input size, the run folder's logs
(`train.out`/epochs.csv: steps, wall and CPU minutes, the checkpoint it started from), and
`lane-seg eval` of its best.pt on the dataset's validation split and, when given, on labelled
real frames. Nothing in the table is typed by hand: `lane-seg baselines --readme` rewrites it.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lane_seg.dataset import atomic_write
from lane_seg.errors import LaneSegError
from lane_seg.models import build_model, complexity
from lane_seg.training.eval.evaluate import run_eval
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
    real: dict[str, Any] | None


def _epochs(run: Path) -> list[dict[str, str]]:
    path = run / "epochs.csv"
    if not path.is_file():
        raise LaneSegError(f"{path} is missing; train the config first (`lane-seg train`)")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise LaneSegError(f"{path} has no finished epoch")
    return rows


def measure(config: Path, data: Path, split: str, real: Path | None, out: Path) -> Baseline:
    """One row: the config's run, evaluated now (summaries written to out/<config>-{val,real})."""
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
        real=evaluate(real, "real", "all") if real is not None else None,
    )


def markdown(rows: list[Baseline]) -> str:
    def pct(s: dict | None, key: str) -> str:
        return "-" if s is None else f"{100 * s[key]:.1f}"

    head = (
        "| config | starts from | params | GMACs | steps | CPU min | wall min | val lane IoU % | "
        "Dice % | precision % | recall % | mIoU % | real lane IoU % |\n" + "|---" * 13 + "|\n"
    )
    body = "".join(
        f"| `{r.config}` | {f'`{r.init_from}`' if r.init_from else 'scratch'} | {r.params:,} | "
        f"{r.gmacs:.3f} | {r.steps} | {'-' if r.cpu_min is None else f'{r.cpu_min:.1f}'} | "
        f"{r.wall_min:.1f} | " + " | ".join(pct(r.val, k) for k in SCORES) + " | "
        f"{pct(r.real, 'lane_iou')} |\n"
        for r in rows
    )
    first = rows[0]
    notes = [
        f"Validation: {first.val['images']} frames of `{first.val['data']}` split "
        f"`{first.val['split']}`; GMACs at {first.input[1]}x{first.input[0]}; minutes from each "
        "run's epochs.csv (CPU = the training process's CPU time)."
    ]
    if first.real is not None:
        notes.append(
            f"Real: the {first.real['images']} labelled frames of `{first.real['data']}`, "
            "zero-shot (trained on the simulator only)."
        )
    return head + body + "\n" + " ".join(notes) + "\n"


def write(rows: list[Baseline], out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "baselines.json", "markdown": out / "baselines.md"}
    data = [asdict(r) for r in rows]
    atomic_write(paths["json"], (json.dumps(data, indent=2) + "\n").encode(), durable=False)
    atomic_write(paths["markdown"], markdown(rows).encode(), durable=False)
    return paths
