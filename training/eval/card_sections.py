"""The model card's sections, each from the files one `make model` run wrote (docs/architecture.md,
the flow): the ONNX files, the training stages' configs and `epochs.csv`, the datasets'
`dataset.json` and the licences of the shared folders, the `lane-seg eval` summaries and the
real-frame scoreboard, the `lane-seg bench` report, the `lane-seg models --latency` sweep, the
closed-loop drives and the `lane-seg baselines` tables. A file the run should have written and
did not is named in one line, with the command that writes it.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lane_seg.data import real_sources
from lane_seg.errors import LaneSegError
from lane_seg.runtime.engines import read_onnx_info
from lane_seg.training.eval.baselines import Baseline, markdown
from lane_seg.training.train.config import TrainConfig, load_config

# What the real-roads work set out to reach on every labelled real source not trained on.
TARGET_F1 = 0.75  # F1 within 8 px
TARGET_IOU = 0.40  # lane IoU
TARGET_INT8_DROP = 1.0  # points of lane IoU int8 may lose against fp32
TARGET_MS = 15.0  # int8 p50 at 512x256 on the engine `auto` picks
PERCEPTIONS = ("groundtruth", "fp32", "int8")


def read_json(path: Path) -> Any:
    if not path.is_file():
        raise LaneSegError(f"{path} is missing; run `make model` (it writes it)")
    return json.loads(path.read_text())


def bench_markdown(run: Path) -> str:
    """The bench's table as `lane-seg bench` wrote it beside bench.json (bench.md)."""
    path = run / "bench" / "bench.md"
    if not path.is_file():
        raise LaneSegError(f"{path} is missing; run `make model` (it writes it)")
    return path.read_text()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_table(fp32: Path, int8: Path) -> list[str]:
    rows = ["| file | precision | size MB | sha256 |", "|---|---|---|---|"]
    for path in (int8, fp32):
        info = read_onnx_info(path)
        size = path.stat().st_size / 1e6
        rows.append(f"| `{path.name}` | {info.precision} | {size:.3f} | `{_sha(path)[:16]}…` |")
    ratio = fp32.stat().st_size / int8.stat().st_size
    return [
        *rows,
        "",
        f"The int8 file is {ratio:.2f}x smaller than the fp32 one. Only the int8 file is in git: "
        f"`make model` writes `{fp32.name}` beside it (the scoreboard, the bench and the closed "
        "loop compare the two), and its sha256 above checks a rebuilt one.",
    ]


@dataclass(frozen=True)
class Stage:
    """One training stage: its config file, as the one config loader reads it."""

    path: Path
    config: TrainConfig


def load_stages(paths: Sequence[Path]) -> list[Stage]:
    """Each stage's config, read once (`lane_seg.training.train.config.load_config`)."""
    return [Stage(Path(path), load_config(path)) for path in paths]


def _stage(stage: Stage) -> dict[str, Any]:
    train, data = stage.config.train, stage.config.data
    epochs = Path(train.out) / "epochs.csv"
    if not epochs.is_file():
        raise LaneSegError(f"{epochs} is missing; run `make model` (stage {stage.path})")
    with epochs.open() as f:
        rows = list(csv.DictReader(f))
    crop = (
        f"{data.crop_height}x{data.crop_width} crops"
        if data.crop_height
        else f"whole {data.height}x{data.width} frames"
    )
    return {
        "config": str(stage.path),
        "init": train.init_from or "scratch",
        "steps": int(rows[-1]["step"]),
        "batch": f"{train.batch_size} x {crop}",
        "lr": stage.config.optim.lr,
        "minutes": float(rows[-1]["elapsed_s"]) / 60.0,
        "best_val": max(float(r["val_lane_iou"]) for r in rows),
        "val_frames": data.val_limit or "all",
    }


def training_table(stages: list[Stage]) -> list[str]:
    rows = [
        "| stage | config | starts from | steps | batch | peak lr | wall min | best val lane IoU |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i, stage in enumerate(stages, 1):
        s = _stage(stage)
        rows.append(
            f"| {i} | `{s['config']}` | `{s['init']}` | {s['steps']} | {s['batch']} | {s['lr']:g} "
            f"| {s['minutes']:.1f} | {s['best_val']:.4f} ({s['val_frames']} frames) |"
        )
    return rows


def _licence(folder: Path) -> str:
    """The licence line(s) of a shared data folder's SOURCE.txt."""
    source = folder / "SOURCE.txt"
    if not source.is_file():
        return "unknown (no SOURCE.txt)"
    lines = [ln.split(":", 1)[1].strip() for ln in source.read_text().splitlines()
             if ln.lower().startswith("license")]  # fmt: skip
    return "; ".join(dict.fromkeys(lines)) or "unknown (SOURCE.txt names none)"


def _style_folders(stages: list[Stage]) -> list[Path]:
    """The shared data folders whose unlabelled frames lent their style in any stage."""
    folders: dict[Path, None] = {}
    for stage in stages:
        augment = stage.config.augment
        for pattern in augment.style_frames if augment and augment.style else ():
            for path in glob.glob(pattern, recursive=True):
                folder = Path(path).parent
                while folder != folder.parent and not (folder / "SOURCE.txt").is_file():
                    folder = folder.parent
                if (folder / "SOURCE.txt").is_file():
                    folders[folder] = None
    return list(folders)


def _sim_sets(stages: list[Stage], root: Path) -> dict[Path, dict[str, Any]]:
    """The simulator data sets the stages trained on besides `root` (real imports excluded),
    each with its dataset.json."""
    sets: dict[Path, dict[str, Any]] = {}
    for stage in stages:
        for src in stage.config.data.sources:
            path = Path(src.root)
            if path == root or path in sets or not (path / "dataset.json").is_file():
                continue
            made = read_json(path / "dataset.json")
            if "collect" in made["created_by"]:
                sets[path] = made
    return sets


def data_sources(root: Path, stages: list[Stage], real_frames: dict[str, list[str]]) -> list[str]:
    d = read_json(root / "dataset.json")
    c, p = d["counts"], d["params"]
    rows = [
        f"{c['train'] + c['val'] + c['test']} frames of the built-in simulator "
        f"(`{d['created_by']}`, seed {p.get('seed')}, {p['config']['width']}x"
        f"{p['config']['height']}, labels `{p['config'].get('label', 'paint')}`): {c['train']} "
        f"train, {c['val']} val.",
        "",
        "Every source of the weights, with its terms:",
        "",
        "| source | how it was used | licence |",
        "|---|---|---|",
        f"| `{root}` (this project's simulator) | labelled training frames | this project's |",
    ]
    for other, made in _sim_sets(stages, root).items():
        rows.append(
            f"| `{other}` (this project's simulator: `{made['created_by']}`, seed "
            f"{made['params'].get('seed')}) | labelled training frames | this project's |"
        )
    for folder in _style_folders(stages):
        rows.append(
            f"| `{folder}` | unlabelled: colour and light only (Fourier domain adaptation) | "
            f"{_licence(folder)} |"
        )
    for name, keys in real_frames.items():
        src = real_sources.SOURCES[name]
        rows.append(f"| {name} ({len(keys)} frames) | labelled training frames | {src.licence} |")
    if not real_frames:
        rows += ["", "No labelled real frame was trained on, so every real frame below is unseen."]
    return rows


def accuracy_table(run: Path) -> list[str]:
    """fp32 vs int8 on the simulator's validation split."""
    fp32, int8 = (read_json(run / f"eval_{p}" / "summary.json") for p in ("fp32", "int8"))
    rows = [
        f"| {name} | {s['images']} | {100 * s['lane_iou']:.2f} | {100 * s['dice']:.2f} | "
        f"{100 * s['precision']:.2f} | {100 * s['recall']:.2f} | {100 * s['miou']:.2f} |"
        for name, s in (("fp32", fp32), ("int8", int8))
    ]
    drop = 100 * (fp32["lane_iou"] - int8["lane_iou"])
    return [
        f"`{fp32['data']}`, split {fp32['split'] or 'all'}, threshold {fp32['threshold']}:",
        "",
        "| precision | frames | lane IoU | Dice / F1 | precision | recall | mIoU |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"int8 costs {drop:+.2f} lane-IoU points against fp32 (negative: int8 scored higher).",
    ]


def scoreboard_table(run: Path, fp32: Path, int8: Path) -> tuple[list[str], dict, dict]:
    """The real-frame table (fp32 and int8 side by side), and each model's rows by source."""
    board = read_json(run / "scoreboard" / "scoreboard.json")
    by_model = {Path(m).name: e["sources"] for m, e in board["models"].items()}
    try:
        f_rows, i_rows = by_model[fp32.name], by_model[int8.name]
    except KeyError:
        raise LaneSegError(
            f"{run}/scoreboard has no rows for {fp32.name} and {int8.name}"
        ) from None
    rows = [
        "| source | labels | licence | condition | frames | lane IoU fp32 / int8 | "
        "F1 @ 8 px fp32 / int8 | precision | recall |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f, i in zip(f_rows, i_rows, strict=True):
        for cond in ("all", "day", "night"):
            s, t = f.get(cond), i.get(cond)
            if not s or (cond != "all" and s["frames"] == f["all"]["frames"]):
                continue
            rows.append(
                f"| {f['source']} | {f['convention']} | {f['licence']} | {cond} | {s['frames']} | "
                f"{100 * s['lane_iou']:.1f} / {100 * t['lane_iou']:.1f} | "
                f"{100 * s['tol_f1']:.1f} / {100 * t['tol_f1']:.1f} | "
                f"{100 * t['precision']:.1f} | {100 * t['recall']:.1f} |"
            )
    return rows, {r["source"]: r for r in f_rows}, {r["source"]: r for r in i_rows}


def targets(fp32_rows: dict[str, dict], int8_rows: dict[str, dict]) -> list[str]:
    """Which sources meet the real-roads targets, and the int8 drop on real frames."""
    met, missed = [], []
    for name, row in int8_rows.items():
        s = row["all"]
        ok = s["tol_f1"] >= TARGET_F1 and s["lane_iou"] >= TARGET_IOU
        text = f"{name} (F1 {100 * s['tol_f1']:.1f}, IoU {100 * s['lane_iou']:.1f})"
        (met if ok else missed).append(text)
    drops = {n: 100 * (fp32_rows[n]["all"]["lane_iou"] - r["all"]["lane_iou"])
             for n, r in int8_rows.items()}  # fmt: skip
    worst = max(drops, key=drops.get)
    return [
        f"- Targets: F1 within 8 px >= {100 * TARGET_F1:.0f} % and lane IoU >= "
        f"{100 * TARGET_IOU:.0f} % on every labelled real source. Met on: "
        f"{', '.join(met) or 'none'}. Missed on: {', '.join(missed) or 'none'}.",
        f"- int8 against fp32 on real frames: at most {drops[worst]:+.2f} lane-IoU points "
        f"({worst}); the target is {TARGET_INT8_DROP:g}.",
    ]


def baselines_table(path: Path | None, make: str) -> list[str]:
    if path is None:
        return [f"`{make}` writes this table; it was not run for this card."]
    rows = [Baseline(**{**r, "input": tuple(r["input"])}) for r in read_json(path)]
    return [f"`{make}` (`lane-seg baselines`, {path}):", "", markdown(rows).rstrip()]


def selection_table(run: Path) -> list[str]:
    sel = read_json(run / "selection.json")
    keys = [k for k in sel["models"][0] if k.endswith("_ms_p50")]
    names = [k.removeprefix("int8_").removesuffix("_ms_p50") for k in keys]
    rows = [
        "| model | config | M params | GMACs | "
        + " | ".join(f"int8 {n} p50 ms" for n in names)
        + " |",
        "|---|---|---|---|" + "---|" * len(keys),
    ]
    for m in sel["models"]:
        rows.append(
            f"| {m['model']} | `{m['config']}` | {m['params'] / 1e6:.3f} | {m['gmacs']:.3f} | "
            + " | ".join(f"{m[k]:.2f}" for k in keys)
            + " |"
        )
    w, h = sel["size"]
    return [
        f"`lane-seg models --latency` ({w}x{h}, batch 1, {sel['threads']} thread(s), median of "
        f"{sel['runs']} runs; speed does not depend on the weights):",
        "",
        *rows,
    ]


def _mean_f1(path: Path) -> str:
    """Each config of a baselines.json, best first, with its mean F1 within 8 px on real frames."""
    mean_f1 = {}
    for row in read_json(path):
        scores = [s["tol_f1"] for s in (row.get("real") or {}).values()]
        if scores:
            mean_f1[Path(row["config"]).name] = sum(scores) / len(scores)
    ranked = sorted(mean_f1.items(), key=lambda kv: -kv[1])
    return ", ".join(f"`{c}` {100 * f:.1f} %" for c, f in ranked) or "none"


def choice(run: Path, config: str, tradeoff: Path | None, candidates: Path | None) -> str:
    """Which architectures meet the latency target, and how the default ranks among them."""
    sel = read_json(run / "selection.json")
    fast = {
        m["config"]
        for m in sel["models"]
        if min(v for k, v in m.items() if k.endswith("_ms_p50")) <= TARGET_MS
    }
    text = (
        f"Configs whose int8 file meets the {TARGET_MS:g} ms target on at least one engine "
        f"here: {', '.join(sorted(fast)) or 'none'}."
    )
    if tradeoff is None:
        return text + " `make tradeoff` adds each one's accuracy on real frames."
    text += (
        " Mean F1 within 8 px over the real sources, same data and schedule "
        f"(`make tradeoff`): {_mean_f1(tradeoff)}."
    )
    if candidates is not None:
        text += (
            f" Through the default's first two stages (`make candidates`): {_mean_f1(candidates)}."
        )
    return f"{text} The default is `{config}`."


def closed_loop_table(run: Path) -> list[str]:
    """The same scenarios and seeds driven with the exact mask, the fp32 and the int8 model."""
    runs = {p: read_json(run / f"sim_{p}" / "summary.json") for p in PERCEPTIONS}
    rows = [
        "| scenario | perception | m driven | completed | mean abs err m | max abs err m | "
        "departures/km | mask IoU vs exact |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for scenario in runs["groundtruth"]:
        for p in PERCEPTIONS:
            s = runs[p][scenario]
            iou = "-" if s.get("mask_iou_mean") is None else f"{100 * s['mask_iou_mean']:.1f}"
            rows.append(
                f"| {scenario} | {p} | {s['distance_m']:.0f} | {'yes' if s['completed'] else 'no'} "
                f"| {s['mean_abs_lateral_error_m']:.3f} | {s['max_abs_lateral_error_m']:.3f} | "
                f"{s['lane_departures_per_km']:.2f} | {iou} |"
            )
    return rows


def limitations(run: Path, bench: dict, int8_rows: dict[str, dict]) -> list[str]:
    """What the run's own figures say limits the model."""
    lines = []
    worst = min(int8_rows, key=lambda n: int8_rows[n]["all"]["tol_f1"])
    s = int8_rows[worst]["all"]
    lines.append(
        f"- Real roads: its weakest labelled source is {worst} ({int8_rows[worst]['convention']} "
        f"labels; F1 within 8 px {100 * s['tol_f1']:.1f} %, recall {100 * s['recall']:.1f} %, "
        f"precision {100 * s['precision']:.1f} %). It learned lanes from the simulator alone."
    )
    paint = [n for n, r in int8_rows.items() if r["convention"] == "paint"]
    if paint:
        lines.append(
            f"- {', '.join(paint)} label{'s' if len(paint) == 1 else ''} paint, not lane lines: "
            "the model's continuous lines through dash gaps count as false there, so its lane "
            "IoU on such labels is low by construction."
        )
    int8 = read_json(run / "sim_int8" / "summary.json")
    with_iou = {
        k: v["mask_iou_mean"] for k, v in int8.items() if v.get("mask_iou_mean") is not None
    }
    if with_iou:
        hardest = min(with_iou, key=with_iou.get)
        lines.append(
            f"- {hardest} is its hardest simulated condition: the lowest mask IoU of the int8 "
            f"model in the driving table above ({100 * with_iou[hardest]:.1f} %)."
        )
    lines.append(
        f"- Its size ({bench['model']['params'] / 1e6:.2f} M parameters) is set by the CPU "
        f"latency budget ({TARGET_MS:g} ms int8) and its training by CPU hours."
    )
    return lines
