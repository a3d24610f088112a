"""`lane-seg model-card`: write models/README.md from the outputs of one `make model` run.

Every figure in the card is read from a file that run produced: the dataset's `dataset.json`,
each training stage's config and `epochs.csv`, the `lane-seg eval` summaries of the fp32 and
int8 ONNX files on the simulator, the real-frame scoreboard (`lane-seg eval --real`), the
`lane-seg bench` report, the closed-loop drives, the `lane-seg models --latency` sweep and,
when given, the remedy and trade-off tables of `lane-seg baselines`. Nothing is typed in by
hand, so re-running `make model` regenerates the card with the new numbers.
"""

from __future__ import annotations

import argparse
import csv
import glob
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import yaml

from lane_seg.cli.common import add_command
from lane_seg.errors import LaneSegError
from lane_seg.outputs import output_file

# What the real-roads work set out to reach on every labelled real source not trained on.
TARGET_F1 = 0.75  # F1 within 8 px
TARGET_IOU = 0.40  # lane IoU
TARGET_INT8_DROP = 1.0  # points of lane IoU int8 may lose against fp32
TARGET_MS = 15.0  # int8 p50 at 512x256 on the engine `auto` picks


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "model-card",
        "Write the default model's card (models/README.md) from a `make model` run's outputs.",
        "lane-seg model-card --stages training/configs/roads_full.yaml --run runs/model "
        "--out models/README.md",
    )
    p.add_argument("--fp32", type=Path, default=Path("models/lane_unet_fp32.onnx"))
    p.add_argument("--int8", type=Path, default=Path("models/lane_unet_int8.onnx"))
    p.add_argument("--data", type=Path, default=Path("data/roads"), help="training dataset")
    p.add_argument(
        "--stages", nargs="+", required=True, type=Path, help="training configs, in order"
    )
    p.add_argument(
        "--run",
        type=Path,
        default=Path("runs/model"),
        help="folder with eval_{fp32,int8}/, scoreboard/, sim_{groundtruth,fp32,int8}/, "
        "bench/bench.json and selection.json",
    )
    p.add_argument("--remedies", type=Path, help="baselines.json of `make remedies`")
    p.add_argument("--tradeoff", type=Path, help="baselines.json of `make tradeoff`")
    p.add_argument("--candidates", type=Path, help="baselines.json of `make candidates`")
    p.add_argument("--made-by", default="make model", help="the command that made it all")
    p.add_argument("--out", type=Path, default=Path("models/README.md"))
    p.set_defaults(func=run)


def _json(path: Path) -> Any:
    if not path.is_file():
        raise LaneSegError(f"{path} is missing; run `make model` (it writes it)")
    return json.loads(path.read_text())


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(fp32: Path, int8: Path) -> list[str]:
    from lane_seg.runtime.engines import read_onnx_info

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


CONVENTIONS = {
    "lines": "lane **lines** in the convention of CULane and TuSimple: each line of the ego lane "
    "and of the lane on either side of it, as one continuous line of constant width, through the "
    "gaps of dashed paint and behind vehicles, from the bottom of the frame to where lines can "
    "still be told apart. Other painted lines (a fifth lane, crossings, arrows) are background",
    "paint": "the visible **paint** of every lane marking, each dash on its own",
}


def _stage(config: Path) -> dict[str, Any]:
    cfg = yaml.safe_load(config.read_text())
    train, data = cfg["train"], cfg["data"]
    epochs = Path(train["out"]) / "epochs.csv"
    if not epochs.is_file():
        raise LaneSegError(f"{epochs} is missing; run `make model` (stage {config})")
    with epochs.open() as f:
        rows = list(csv.DictReader(f))
    crop = (
        f"{data['crop_height']}x{data['crop_width']} crops"
        if data.get("crop_height")
        else f"whole {data['height']}x{data['width']} frames"
    )
    return {
        "config": str(config),
        "init": train.get("init_from") or "scratch",
        "steps": int(rows[-1]["step"]),
        "batch": f"{train['batch_size']} x {crop}",
        "lr": cfg["optim"]["lr"],
        "minutes": float(rows[-1]["elapsed_s"]) / 60.0,
        "best_val": max(float(r["val_lane_iou"]) for r in rows),
        "val_frames": data.get("val_limit") or "all",
    }


def _training(stages: list[Path]) -> list[str]:
    rows = [
        "| stage | config | starts from | steps | batch | peak lr | wall min | best val lane IoU |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i, config in enumerate(stages, 1):
        s = _stage(config)
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


def _style_folders(stages: list[Path]) -> list[Path]:
    """The shared data folders whose unlabelled frames lent their style in any stage."""
    folders: dict[Path, None] = {}
    for config in stages:
        augment = yaml.safe_load(config.read_text()).get("augment") or {}
        for pattern in augment.get("style_frames", []) if augment.get("style") else []:
            for path in glob.glob(pattern, recursive=True):
                folder = Path(path).parent
                while folder != folder.parent and not (folder / "SOURCE.txt").is_file():
                    folder = folder.parent
                if (folder / "SOURCE.txt").is_file():
                    folders[folder] = None
    return list(folders)


def _sim_sets(stages: list[Path], root: Path) -> dict[Path, dict[str, Any]]:
    """The simulator data sets the stages trained on besides `root` (real imports excluded),
    each with its dataset.json."""
    sets: dict[Path, dict[str, Any]] = {}
    for config in stages:
        for src in yaml.safe_load(config.read_text())["data"]["sources"]:
            path = Path(src["root"] if isinstance(src, dict) else src)
            if path == root or path in sets or not (path / "dataset.json").is_file():
                continue
            made = _json(path / "dataset.json")
            if "collect" in made["created_by"]:
                sets[path] = made
    return sets


def _data(root: Path, stages: list[Path], real_frames: dict[str, list[str]]) -> list[str]:
    from lane_seg.data import real_sources

    d = _json(root / "dataset.json")
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


def _accuracy(run: Path) -> list[str]:
    """fp32 vs int8 on the simulator's validation split."""
    fp32, int8 = (_json(run / f"eval_{p}" / "summary.json") for p in ("fp32", "int8"))
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


def _scoreboard(run: Path, fp32: Path, int8: Path) -> tuple[list[str], dict, dict]:
    """The real-frame table (fp32 and int8 side by side), and each model's rows by source."""
    board = _json(run / "scoreboard" / "scoreboard.json")
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


def _targets(fp32_rows: dict[str, dict], int8_rows: dict[str, dict]) -> list[str]:
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


def _baselines_table(path: Path | None, make: str) -> list[str]:
    from lane_seg.training.eval.baselines import Baseline, markdown

    if path is None:
        return [f"`{make}` writes this table; it was not run for this card."]
    rows = [Baseline(**{**r, "input": tuple(r["input"])}) for r in _json(path)]
    return [f"`{make}` (`lane-seg baselines`, {path}):", "", markdown(rows).rstrip()]


def _selection(run: Path) -> list[str]:
    sel = _json(run / "selection.json")
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
    for row in _json(path):
        scores = [s["tol_f1"] for s in (row.get("real") or {}).values()]
        if scores:
            mean_f1[Path(row["config"]).name] = sum(scores) / len(scores)
    ranked = sorted(mean_f1.items(), key=lambda kv: -kv[1])
    return ", ".join(f"`{c}` {100 * f:.1f} %" for c, f in ranked) or "none"


def _choice(run: Path, config: str, tradeoff: Path | None, candidates: Path | None) -> str:
    """Which architectures meet the latency target, and how the default ranks among them."""
    sel = _json(run / "selection.json")
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


PERCEPTIONS = ("groundtruth", "fp32", "int8")


def _closed_loop(run: Path) -> list[str]:
    """The same scenarios and seeds driven with the exact mask, the fp32 and the int8 model."""
    runs = {p: _json(run / f"sim_{p}" / "summary.json") for p in PERCEPTIONS}
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


def _limitations(run: Path, bench: dict, int8_rows: dict[str, dict]) -> list[str]:
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
    int8 = _json(run / "sim_int8" / "summary.json")
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


def build_card(args: argparse.Namespace) -> str:
    from lane_seg.bench.report_files import markdown as bench_markdown
    from lane_seg.runtime.engines import read_onnx_info
    from lane_seg.training.eval.scoreboard import lanes_markdown

    info = read_onnx_info(args.int8)
    pp = info.preprocess
    bench = _json(args.run / "bench" / "bench.json")
    board, fp32_rows, int8_rows = _scoreboard(args.run, args.fp32, args.int8)
    stage_configs = [str(s) for s in args.stages]
    parts = [
        f"# lane_seg default model: {info.arch} ("
        + ", ".join(f"{k} {v}" for k, v in info.model_config.items())
        + f"), {info.labels} labels",
        "",
        f"Generated by `{args.made_by}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
        "Every figure below is read from that run's outputs; re-run the command to regenerate "
        "them (stages whose outputs exist are reused; delete `runs/<stage>` to redo one).",
        "",
        "## Files",
        "",
        *_files(args.fp32, args.int8),
        "",
        "The node (`ros2 launch lane_seg seg.launch.py`, `lane-seg node`), `lane-seg demo`, "
        "`lane-seg infer` and `lane-seg bag` use the int8 file when no model is given.",
        "",
        "## What it marks",
        "",
        f"It predicts {CONVENTIONS[info.labels]} (docs/architecture.md, Label conventions). "
        "That is what the benchmarks of the field label and what a planner needs (a line "
        "through the gaps), and the real-roads scoreboard chose it over paint (the remedies "
        "below: paint against lines on the same simulator and schedule).",
        "",
        "## Input and output",
        "",
        f"- Input `image`: float32 N x 3 x {pp.height} x {pp.width}, {pp.color_order} frames "
        f"resized by `{pp.resize}`, normalised with mean {list(pp.mean)} and std {list(pp.std)} "
        "(`lane_seg.preprocess`, the one path shared by training and inference).",
        f"- Output `logits`: N x 1 x {pp.height} x {pp.width}; lane where "
        f"sigmoid(logit) > {info.threshold}.",
        "- The ONNX metadata (`metadata_props`) carries all of this, the label convention "
        f"(`labels`: {info.labels}) and the calibration set's identity: "
        f"{info.calibration.get('count')} frames of `{info.calibration.get('dataset')}` "
        f"train, seed {info.calibration.get('seed')}, sha256 "
        f"`{str(info.calibration.get('images_sha256', ''))[:16]}…`.",
        "",
        "## Data and licences",
        "",
        *_data(args.data, args.stages, info.real_frames),
        "",
        "## Training",
        "",
        "`lane-seg train --config <stage>` for each stage in turn (BCE + Dice on logits, AdamW, "
        "warm-up + cosine, one CPU thread):",
        "",
        *_training(args.stages),
        "",
        "Wall minutes are as each run logged them (`epochs.csv`), so they include whatever "
        "else the machine was doing; best val lane IoU is on the configs' validation subset.",
        "",
        "## Accuracy on real roads",
        "",
        f"`lane-seg eval --model {args.fp32} --model {args.int8} --real ../shared/data`: every "
        "labelled real source beside the project, by its own labels at their own resolution "
        "(lane IoU, precision and recall over pixels; F1 within 8 px: a predicted pixel within "
        "8 px of a labelled one is right, a labelled pixel within 8 px of a prediction is "
        "found); night is a frame whose upper 40 % is dark. Precision and recall are the int8 "
        "model's.",
        "",
        *board,
        "",
        *_targets(fp32_rows, int8_rows),
        "",
        "The int8 model's lane lines (lane instances from its mask, `lane_seg.lanes`), scored "
        "with each benchmark's own metric where the source has lane labels:",
        "",
        *lanes_markdown({"sources": list(int8_rows.values())}),
        "## Accuracy in the simulator: fp32 vs int8",
        "",
        *_accuracy(args.run),
        "",
        "## What closed the gap, and what did not",
        "",
        "Each row changes one thing against the row it names in its config's comment (the "
        "`steps` and `starts from` columns give each one's schedule), scored on the simulator "
        "and on every real source:",
        "",
        *_baselines_table(args.remedies, "make remedies"),
        "",
        "## Architecture and width",
        "",
        *_selection(args.run),
        "",
        *_baselines_table(args.tradeoff, "make tradeoff"),
        "",
        "The same architectures through the default model's first two stages:",
        "",
        *_baselines_table(args.candidates, "make candidates"),
        "",
        _choice(args.run, stage_configs[-1], args.tradeoff, args.candidates),
        "",
        "## Speed: `lane-seg bench`",
        "",
        f"`{bench.get('command', 'lane-seg bench')}`",
        "",
        bench_markdown(bench),
        "## Driving: closed loop in the simulator",
        "",
        "`lane-seg sim --perception groundtruth|fp32|int8` on the standard scenarios "
        "(`config/scenarios/`, two worlds each, 10 Hz; onnxruntime, one thread; the "
        "simulation waits for perception, so this compares what the masks make the car do; "
        "mask IoU is against the exact mask in the model's own convention):",
        "",
        *_closed_loop(args.run),
        "",
        "## Limitations",
        "",
        *_limitations(args.run, bench, int8_rows),
    ]
    return "\n".join(parts) + "\n"


def run(args: argparse.Namespace) -> int:
    from lane_seg.data.dataset import atomic_write

    output_file(args.out)
    card = build_card(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out, card.encode())
    print(f"wrote {args.out}")
    return 0
