"""The learning curve of `lane-seg finetune`: N labelled frames of one camera against its test clips
(README.md, "Your camera"; `make finetune-curve`).

The labelled source (default culane_driver23) is imported with its own labels, split by clip
(`real_sources.split_of`). For each N (default 0, 5, 10, 20, 50, 90) the starting checkpoint
is fine-tuned on N of the train clips' frames (a seeded subset: N=5's frames are among N=10's)
mixed half and half with --sim, exported to int8 calibrated on the train clips, and scored by
the real-frame scoreboard's code on the source's test clips (every train-clip frame left out,
not only the N used) and on the other sources named in --also (default culane_night: other
conditions). N=0 is the starting checkpoint itself, exported the same way. The weights this
makes are never shipped (CULane's terms); the recipe is what ships.

    python studies/finetune_curve.py [--model runs/roads_full/best.pt] --data ../shared/data \
        --sim data/roads --out runs/finetune_curve [--source culane_driver23] [--n 0,5,10,20]

Writes OUT/curve.json and OUT/curve.md, with each run's wall time on this machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from adapt_rungs import add_readme_option, check_readmes, score, train_frames, write_tables

from lane_seg.artifact import ModelInfo
from lane_seg.cli.shipped_start import shipped_checkpoint
from lane_seg.data import real_sources
from lane_seg.data.importers.real import import_real
from lane_seg.models.checkpoint import load_checkpoint
from lane_seg.preprocess import uncropped
from lane_seg.runtime.hwinfo import CpuInfo
from lane_seg.training.quant.calibration import select_calibration
from lane_seg.training.quant.exporter import export_model
from lane_seg.training.train.finetune import FP32, INT8, FinetuneSettings, finetune


def run_n(n: int, labels: Path, args: argparse.Namespace) -> tuple[Path, float]:
    """The int8 file of the run with `n` labelled frames, and its wall time."""
    out = args.out / f"n{n}"
    wall = out / "wall_s.txt"  # a reused run reports the time it took when it ran
    if (out / INT8).is_file() and wall.is_file():
        return out / INT8, float(wall.read_text())
    t0 = time.perf_counter()
    if n == 0:
        export_model(args.model, out / FP32, out / INT8, select_calibration(labels))
    else:
        s = FinetuneSettings(frames=n, sim=str(args.sim), steps=args.steps, threads=args.threads)
        finetune(args.model, labels, out, s, progress=False)
    seconds = time.perf_counter() - t0
    wall.write_text(f"{seconds:.1f}\n")
    return out / INT8, seconds


def lanes_figure(s: dict[str, Any]) -> str:
    lanes = s.get("lanes", {})
    if lanes.get("benchmark") == "culane":
        return f"{lanes['f1']:.3f}"
    if lanes.get("benchmark") == "tusimple":
        return f"{lanes['accuracy']:.3f} (TuSimple acc.)"
    return "-"


SECTION = "finetune-curve"  # its table in training/README.md and the model card


def markdown(result: dict[str, Any]) -> str:
    names = [result["source"], *result["also"]]
    head = " | ".join(f"{n} F1 within 8 px | {n} CULane F1" for n in names)
    lines = [
        f"Learning curve of `lane-seg finetune` from `{result['model']}` on {result['cpu']}: "
        f"N labelled frames of {result['source']}'s train clips, mixed with `{result['sim']}`, "
        f"{result['steps']} steps; scored on {result['source']}'s test clips (int8).",
        "",
        f"| N | {head} | wall s |",
        "|---:|" + "---:|---:|" * len(names) + "---:|",
    ]
    for n, r in result["runs"].items():
        cells = " | ".join(
            f"{r[name].get('all', {}).get('tol_f1', float('nan')):.3f} | {lanes_figure(r[name])}"
            for name in names
        )
        lines.append(f"| {n} | {cells} | {r['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", type=Path, help="starting checkpoint (.pt); default: the shipped")
    p.add_argument("--data", type=Path, required=True, help="data root of the real sources")
    p.add_argument("--sim", type=Path, required=True, help="simulator dataset mixed in")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--source", default="culane_driver23")
    p.add_argument("--also", default="culane_night", help="comma-separated sources also scored")
    p.add_argument("--n", default="0,5,10,20,50,90", help="comma-separated label counts")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--threads", type=int, default=2)
    add_readme_option(p, SECTION)
    args = p.parse_args()
    check_readmes(args.readme, SECTION)
    args.out.mkdir(parents=True, exist_ok=True)
    args.model = args.model or shipped_checkpoint(args.out)  # as `lane-seg finetune` starts
    source = real_sources.SOURCES[args.source]
    also = [real_sources.SOURCES[n] for n in args.also.split(",") if n]
    info = ModelInfo.from_metadata(load_checkpoint(args.model)["info"])
    labels = args.out / "labels"
    import_real(args.source, args.data, labels, uncropped(info.preprocess))
    seen = [f.key for f in train_frames(source, args.data)]
    result: dict[str, Any] = {
        "model": str(args.model),
        "source": source.name,
        "also": [s.name for s in also],
        "sim": str(args.sim),
        "steps": args.steps,
        "cpu": CpuInfo.detect().line(),
        "runs": {},
    }
    for n in (int(v) for v in args.n.split(",")):
        int8, seconds = run_n(n, labels, args)
        r: dict[str, Any] = {"seconds": round(seconds, 1)}
        r[source.name] = score(int8, source, seen, args.data)
        for other in also:
            r[other.name] = score(int8, other, [], args.data)
        result["runs"][str(n)] = r
        print(f"N={n}: {seconds:.0f} s", file=sys.stderr)
    write_tables(args.out / "curve", result, markdown(result), args.readme, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
