"""`lane-seg model-card`: write models/README.md from the outputs of one `make model` run.

Every figure in the card is read from a file that run produced: the dataset's `dataset.json`,
each training stage's config and `epochs.csv`, the `lane-seg eval` summaries of the fp32 and
int8 ONNX files, the `lane-seg bench` report and the `lane-seg models --latency` sweep. Nothing
is typed in by hand, so re-running `make model` regenerates the card with the new numbers.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import yaml

from lane_seg.cli.common import add_command
from lane_seg.errors import LaneSegError
from lane_seg.outputs import output_file


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "model-card",
        "Write the default model's card (models/README.md) from a `make model` run's outputs.",
        "lane-seg model-card --run runs/model --out models/README.md",
    )
    p.add_argument("--fp32", type=Path, default=Path("models/lane_unet_fp32.onnx"))
    p.add_argument("--int8", type=Path, default=Path("models/lane_unet_int8.onnx"))
    p.add_argument("--data", type=Path, default=Path("data/sim"), help="training dataset")
    p.add_argument(
        "--stages", nargs="+", required=True, type=Path, help="training configs, in order"
    )
    p.add_argument(
        "--run",
        type=Path,
        default=Path("runs/model"),
        help="folder with eval_{fp32,int8}[_real]/ and sim_{groundtruth,fp32,int8}/ "
        "summary.json, bench/bench.json, selection.json",
    )
    p.add_argument(
        "--baselines",
        type=Path,
        help="baselines.json of `lane-seg baselines` (each architecture's accuracy from "
        "scratch, for the architecture choice)",
    )
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
    return [*rows, "", f"The int8 file is {ratio:.2f}x smaller than the fp32 one."]


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


def _accuracy(run: Path) -> list[str]:
    head = [
        "| precision | frames | lane IoU | Dice / F1 | precision | recall | mIoU |",
        "|---|---|---|---|---|---|---|",
    ]
    out: list[str] = []
    for suffix, title in (("", "Simulator validation split"), ("_real", "Real TuSimple frames")):
        paths = [run / f"eval_{p}{suffix}" / "summary.json" for p in ("fp32", "int8")]
        if suffix and not all(p.is_file() for p in paths):
            continue  # the real frames are optional (../shared/data/real may be absent)
        fp32, int8 = (_json(p) for p in paths)
        rows = [
            f"| {name} | {s['images']} | {100 * s['lane_iou']:.2f} | {100 * s['dice']:.2f} | "
            f"{100 * s['precision']:.2f} | {100 * s['recall']:.2f} | {100 * s['miou']:.2f} |"
            for name, s in (("fp32", fp32), ("int8", int8))
        ]
        drop = 100 * (fp32["lane_iou"] - int8["lane_iou"])
        out += [
            f"**{title}** (`{fp32['data']}`, split {fp32['split'] or 'all'}; threshold "
            f"{fp32['threshold']}):",
            "",
            *head,
            *rows,
            "",
            f"int8 costs {drop:+.2f} lane-IoU points against fp32 (negative: int8 scored higher).",
            "",
        ]
    return out


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
    return rows


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


TARGET_MS = 15.0  # int8 latency target at 256x512 that an architecture must meet


def _choice(run: Path, arch: str, baselines: Path | None) -> str:
    sel = _json(run / "selection.json")
    fast = [
        m["model"]
        for m in sel["models"]
        if min(v for k, v in m.items() if k.endswith("_ms_p50")) <= TARGET_MS
    ]
    text = (
        f"Architectures whose int8 file meets the {TARGET_MS:g} ms target on at least one "
        f"engine here: {', '.join(fast) or 'none'}."
    )
    if baselines is None:
        return text + " `make baselines` adds each one's accuracy from scratch."
    best: dict[str, tuple[float, str]] = {}  # arch -> (val lane IoU, config), runs from scratch
    for row in _json(baselines):
        iou = row["val"]["lane_iou"]
        if row["arch"] in fast and not row["init_from"] and iou > best.get(row["arch"], (-1,))[0]:
            best[row["arch"]] = (iou, row["config"])
    if not best:
        return text + f" None of them is in {baselines}."
    ranked = sorted(best.items(), key=lambda kv: -kv[1][0])
    scores = ", ".join(f"{a} {100 * iou:.1f} % (`{cfg}`)" for a, (iou, cfg) in ranked)
    verdict = "the most accurate of them" if ranked[0][0] == arch else "not the most accurate"
    return (
        f"{text} Trained from scratch (`lane-seg baselines`, validation lane IoU): {scores}. "
        f"The default, {arch}, is {verdict}."
    )


def _limitations(run: Path, bench: dict) -> list[str]:
    """What the run's own figures say limits the model."""
    int8 = _json(run / "sim_int8" / "summary.json")
    with_iou = {
        s: v["mask_iou_mean"] for s, v in int8.items() if v.get("mask_iou_mean") is not None
    }
    lines = [
        "- Trained on simulated roads only; on real TuSimple frames it finds painted markings, "
        "while TuSimple labels whole lanes (gaps between dashes included), so the real-frame "
        "IoU is low by construction as well as by the domain gap."
    ]
    if with_iou:
        hardest = min(with_iou, key=with_iou.get)
        lines.append(
            f"- {hardest} is its hardest condition: the lowest mask IoU of the int8 model in the "
            f"driving table above ({100 * with_iou[hardest]:.1f} %)."
        )
    lines.append(
        f"- Accuracy is limited by the model's size ({bench['model']['params'] / 1e6:.2f} M "
        "parameters, chosen for speed) and by CPU training time; a wider U-Net trained longer "
        "on a GPU is the way up."
    )
    return lines


def _sweep(run: Path) -> str:
    sel = _json(run / "selection.json")
    return (
        f"{sel['size'][0]}x{sel['size'][1]}, batch 1, {sel['threads']} thread(s), median of "
        f"{sel['runs']} runs"
    )


def _data(root: Path) -> str:
    d = _json(root / "dataset.json")
    c, p = d["counts"], d["params"]
    return (
        f"{c['train'] + c['val'] + c['test']} frames of the built-in simulator "
        f"(`{d['created_by']}`, seed {p.get('seed')}, {p['config']['height']}x"
        f"{p['config']['width']}): {c['train']} train, {c['val']} val."
    )


def build_card(args: argparse.Namespace) -> str:
    from lane_seg.bench.report import markdown as bench_markdown
    from lane_seg.runtime.engines import read_onnx_info

    info = read_onnx_info(args.int8)
    pp = info.preprocess
    bench = _json(args.run / "bench" / "bench.json")
    parts = [
        f"# lane_seg default model: {info.arch} ("
        + ", ".join(f"{k} {v}" for k, v in info.model_config.items())
        + ")",
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
        "## Input and output",
        "",
        f"- Input `image`: float32 N x 3 x {pp.height} x {pp.width}, {pp.color_order} frames "
        f"resized by `{pp.resize}`, normalised with mean {list(pp.mean)} and std {list(pp.std)} "
        "(`lane_seg.preprocess`, the one path shared by training and inference).",
        f"- Output `logits`: N x 1 x {pp.height} x {pp.width}; lane marking where "
        f"sigmoid(logit) > {info.threshold}.",
        "- The ONNX metadata (`metadata_props`) carries all of this plus the calibration set's "
        f"identity: {info.calibration.get('count')} frames of `{info.calibration.get('dataset')}` "
        f"train, seed {info.calibration.get('seed')}, sha256 "
        f"`{str(info.calibration.get('images_sha256', ''))[:16]}…`.",
        "",
        "## Data",
        "",
        _data(args.data),
        "No real frames were used for training: the real sets beside the project are a few "
        "dozen frames for tests and demos. The real-frame row below is zero-shot.",
        "",
        "## Training",
        "",
        "`lane-seg train --config <stage>` for each stage in turn (BCE + Dice on logits, AdamW, "
        "warm-up + cosine, 2 or 1 CPU threads as each config says):",
        "",
        *_training(args.stages),
        "",
        "Wall minutes are as each run logged them (`epochs.csv`), so they include whatever "
        "else the machine was doing; best val lane IoU is on the configs' validation subset.",
        "",
        "## Accuracy: fp32 vs int8",
        "",
        "`lane-seg eval --model models/<file> --data <set> --split <split>`:",
        "",
        *_accuracy(args.run),
        "## Speed: `lane-seg bench`",
        "",
        f"`{bench.get('command', 'lane-seg bench')}`",
        "",
        bench_markdown(bench),
        "## Driving: closed loop in the simulator",
        "",
        "`lane-seg sim --perception groundtruth|fp32|int8` on the standard scenarios "
        "(`config/scenarios/`, two worlds each, 10 Hz; onnxruntime, one thread; the "
        "simulation waits for perception, so this compares what the masks make the car do):",
        "",
        *_closed_loop(args.run),
        "",
        "## How the architecture was chosen",
        "",
        "Speed does not depend on the weights, so `lane-seg models --latency` times every "
        "architecture's int8 file (freshly initialised, calibrated on simulator frames) on this "
        f"CPU before any training ({_sweep(args.run)}):",
        "",
        *_selection(args.run),
        "",
        _choice(args.run, info.arch, args.baselines),
        "",
        "## Limitations",
        "",
        *_limitations(args.run, bench),
    ]
    return "\n".join(parts) + "\n"


def run(args: argparse.Namespace) -> int:
    from lane_seg.dataset import atomic_write

    output_file(args.out)
    card = build_card(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out, card.encode())
    print(f"wrote {args.out}")
    return 0
