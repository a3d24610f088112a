"""The rung table of `lane-seg adapt`: each label-free rung on its own and in combination, per
labelled real source (README.md, "Your camera"; `make adapt-rungs`).

For every labelled real source present under --data (`lane_seg.data.real_sources`), the model is
adapted on the images of the source's train clips (`real_sources.split_of`; their labels are
never read) and scored on its test clips by the source's own labels, with the real-frame
scoreboard's code (`lane_seg.training.eval.scoreboard.score_source`: F1 within 8 px, lane IoU,
and CULane F1 or TuSimple accuracy where the source has lane labels). The adaptation frames are
the model's `real_frames` for that source, so the scoreboard leaves them out as it leaves out
frames a model trained on. Rungs:

  none                        the starting checkpoint, int8 calibrated on --sim's train split
                              (without --model: the shipped int8 file itself)
  calibration                 int8 calibrated on the camera's frames
  adabn                       BatchNorm statistics re-estimated (alpha --alpha), int8 on --sim
  adabn+calibration           both (the `lane-seg adapt` default)
  adabn+selftrain+calibration per-camera self-training on top (mixed with --sim)
  adabn+distill+calibration   distillation on top instead: the adapted model's mirror-averaged
                              probabilities on the camera's frames as soft targets (with --sim)

    python studies/adapt_rungs.py [--model runs/roads_full/best.pt] --data ../shared/data \
        --sim data/roads --out runs/adapt_rungs [--sources culane_driver23,...] [--rungs ...] \
        [--video ../shared/data/real/udacity/solidWhiteRight.mp4]

With --video (a video without labels, e.g. Udacity's solidWhiteRight.mp4) every rung is also
adapted on the video's first half and its lane lines' stability measured on the later half, at
the video's resolution: the share of frames with both ego lines found and their jitter from one
frame to the next (`lane_seg.training.adapt.figures`).

Without --model it starts where `lane-seg adapt` does without one: the shipped model, its
trainable weights recovered from models/lane_unet_int8.onnx into OUT/start.pt
(lane_seg.cli.shipped_start).

Writes OUT/rungs.json and OUT/rungs.md (one table per source, fp32 and int8 of each rung, and
the adaptation's wall time on this machine). Re-running resumes: each rung's adaptation is a
resumable `adapt` run under OUT/<source>/<rung>.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from lane_seg.cli.readme import check_section, replace_section
from lane_seg.cli.shipped_start import shipped_checkpoint
from lane_seg.data import real_sources
from lane_seg.data.dataset import sha256_file
from lane_seg.data.frames import Frame, file_frames, is_video
from lane_seg.models.checkpoint import load_checkpoint
from lane_seg.preprocess import to_input
from lane_seg.runtime.engines import OnnxRuntimeEngine
from lane_seg.runtime.hwinfo import CpuInfo
from lane_seg.runtime.segmenter import Segmenter
from lane_seg.runtime.shipped_model import default_model
from lane_seg.training.adapt.figures import line_figures
from lane_seg.training.adapt.run import FIGURES_ENGINE, FP32, INT8, MIN_FRAMES, AdaptConfig, adapt
from lane_seg.training.eval.evaluate import load_model_engine
from lane_seg.training.eval.scoreboard import score_source
from lane_seg.training.quant.calibration import select_calibration
from lane_seg.training.quant.exporter import export_model
from lane_seg.training.quant.onnx_int8 import compare_outputs

PRECISIONS = ("fp32", "int8")
SETTINGS = ("alpha", "max_frames", "selftrain_steps", "distill_steps")
SECTION = "adapt-rungs"  # in training/README.md and the model card (models/README.md)
AGREEMENT_FRAMES = 16  # test frames on which the recovered fp32 start is compared with the int8
RUNGS = {
    "none": (),
    "calibration": ("calibration",),
    "adabn": ("adabn",),
    "adabn+calibration": ("adabn", "calibration"),
    "adabn+selftrain+calibration": ("adabn", "selftrain", "calibration"),
    "adabn+distill+calibration": ("adabn", "distill", "calibration"),
}
TRAINED = ("selftrain", "distill")  # rungs that train: not run on a handful of frames


def train_frames(source: real_sources.RealSource, data: Path) -> list[real_sources.RealFrame]:
    return [f for f in source.frames(data) if real_sources.split_of(f) == "train"]


@dataclass
class Camera:
    """The frames a rung adapts on: `read()` yields them, (key, clip, RGB), `count` of them."""

    name: str  # its folder under OUT
    what: str  # the frames' source, as the adapt card names it
    count: int
    read: Callable[[], Iterator[tuple[str, str, np.ndarray]]]


def source_camera(source: real_sources.RealSource, frames: list) -> Camera:
    def read() -> Iterator[tuple[str, str, np.ndarray]]:
        return ((f.key, f.clip, real_sources.read_rgb(f.image)) for f in frames)

    return Camera(source.name, f"{source.name} train clips", len(frames), read)


def rung_models(
    rung: str, model: Path, camera: Camera, args: argparse.Namespace
) -> tuple[Path, Path, float]:
    """(fp32, int8, seconds) of one rung adapted on a camera's frames; the seconds are the
    first run's (OUT/<camera>/<rung>/seconds.json), not a resumed run's."""
    out = args.out / camera.name / rung
    fp32, int8, seconds = _rung_files(rung, model, camera, args, out)
    kept = out / "seconds.json"
    if not kept.is_file():
        kept.write_text(json.dumps({"seconds": round(seconds, 1)}) + "\n")
    return fp32, int8, json.loads(kept.read_text())["seconds"]


def _rung_files(
    rung: str, model: Path, camera: Camera, args: argparse.Namespace, out: Path
) -> tuple[Path, Path, float]:
    t0 = time.perf_counter()
    if rung == "none":
        shipped = None if args.model else default_model("int8")
        if not (out / FP32).is_file():
            calib = None if shipped else select_calibration(args.sim)
            export_model(model, out / FP32, None if shipped else out / INT8, calib)
        return out / FP32, shipped or out / INT8, time.perf_counter() - t0
    cfg = AdaptConfig(
        methods=RUNGS[rung],
        alpha=args.alpha,
        min_frames=min(MIN_FRAMES, camera.count),
        max_frames=args.max_frames,
        calib_dataset=str(args.sim),
        sim=str(args.sim),
        distill_steps=args.distill_steps,  # in the run's state only with its method
        threads=args.threads,
    )
    if "selftrain" in cfg.methods:  # a setting of that rung alone (the others resume whatever)
        cfg = replace(cfg, selftrain_steps=args.selftrain_steps)
    adapt(model, camera.read(), camera.what, out, cfg)
    return out / FP32, out / INT8, time.perf_counter() - t0


def score(path: Path, source: real_sources.RealSource, seen: list[str], data: Path) -> dict:
    """The scoreboard's figures of the model at `path` on `source`, leaving out the frames it
    trained on and the frames in `seen` (those it adapted or was tuned on)."""
    engine = load_model_engine(path)
    known = engine.info.real_frames
    left_out = sorted({*known.get(source.name, []), *seen})
    engine.info = replace(engine.info, real_frames={**known, source.name: left_out})
    return score_source(engine, source, data, None)


def scores(
    folder: Path, files: tuple[Path, Path], source: real_sources.RealSource, seen: list, data: Path
) -> dict:
    """The fp32 and int8 scores of a rung, kept in its folder for a re-run with the same files
    (a resumed study scores only what is new)."""
    path = folder / "scores.json"
    key = [sha256_file(f) for f in files]
    kept = json.loads(path.read_text()) if path.is_file() else {}
    if kept.get("files_sha256") != key:
        kept = {"files_sha256": key}
        fp32, int8 = files
        kept |= {"fp32": score(fp32, source, seen, data), "int8": score(int8, source, seen, data)}
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(kept, indent=2) + "\n")
    return {"fp32": kept["fp32"], "int8": kept["int8"]}


def row(name: str, precision: str, s: dict[str, Any]) -> str:
    a, lanes = s.get("all", {}), s.get("lanes", {})
    bench = lanes.get("benchmark")
    lane = (
        f"{lanes['f1']:.3f} (CULane F1)"
        if bench == "culane"
        else f"{lanes['accuracy']:.3f} (TuSimple acc.)"
        if bench == "tusimple"
        else "-"
    )
    return (
        f"| {name} | {precision} | {a.get('frames', 0)} | {a.get('tol_f1', float('nan')):.3f} | "
        f"{a.get('lane_iou', float('nan')):.3f} | {lane} |"
    )


def gain_line(rungs: dict[str, Any]) -> str:
    """The best label-free rung's F1 within 8 px against none, int8 against the int8 file."""
    f1 = {k: r["int8"].get("all", {}).get("tol_f1", float("nan")) for k, r in rungs.items()}
    base = f1.pop("none", float("nan"))
    if not f1 or base != base:
        return ""
    best = max(f1, key=lambda k: f1[k] if f1[k] == f1[k] else -1.0)
    points = 100 * (f1[best] - base)
    verdict = "reaches" if points >= 5 else "does not reach"
    return (
        f"Best rung: {best}, F1 within 8 px {points:+.1f} points over none (int8 files): "
        f"{verdict} the +5 points asked for."
    )


def recovery_line(result: dict[str, Any]) -> str:
    o = result.get("recovered_from")
    if not o:
        return ""
    sim = o["vs_int8_file"]
    real = "; ".join(
        f"{name} {a['mask_agreement_iou']:.1f} % ({a['frames']} test frames)"
        for name, a in result.get("recovery_agreement", {}).items()
    )
    return (
        f"The start is the shipped model recovered from `models/{Path(o['path']).name}` "
        f"(sha256 `{o['sha256']}`): "
        f"its fp32 masks agree with the int8 file's at {sim['mask_agreement_iou']:.1f} % IoU on "
        f"{sim['frames']} simulator frames" + (f", on real frames: {real}." if real else ".")
    )


def markdown(result: dict[str, Any]) -> str:
    st = result["settings"]
    lines = [
        f"Rungs of `lane-seg adapt` from `{result['model']}` on {result['cpu']}; adapt s is "
        "the wall time of each rung's first run (a resumed study keeps it), on a machine shared "
        f"with other work, so an idle machine takes less. AdaBN alpha {st['alpha']} (share of the "
        f"camera's statistics), at most {st['max_frames']} adaptation frames, self-training "
        f"{st['selftrain_steps']} steps, distillation {st['distill_steps']} steps.",
        "",
        recovery_line(result),
        "",
    ]
    for name, entry in result["sources"].items():
        lines += [
            f"### {name} ({entry['adapt_frames']} adaptation frames of its train clips)",
            "",
            "| rung | model | test frames | F1 within 8 px | lane IoU | lanes | adapt s |",
            "|---|---|---:|---:|---:|---|---:|",
        ]
        if not any(r["int8"].get("all", {}).get("frames") for r in entry["rungs"].values()):
            lines[-2:] = ["Every frame of it is in its train clips: no test clip to score on.", ""]
            continue
        for rung, r in entry["rungs"].items():
            for precision in ("fp32", "int8"):
                text = row(rung, precision, r[precision])
                lines.append(f"{text} {'-' if rung == 'none' else round(r['seconds'])} |")
        lines += ["", gain_line(entry["rungs"]), ""]
        if "skipped" in entry:
            lines += [f"Not run: {entry['skipped']}.", ""]
    if "video" in result:
        lines += video_markdown(result["video"])
    return "\n".join(lines)


def source_rungs(
    source: real_sources.RealSource, model: Path, args: argparse.Namespace, result: dict
) -> dict[str, Any]:
    """Every rung adapted on the source's train clips and scored on its test clips (with the
    recovered start's agreement with the int8 file in `result`); {} without train clips."""
    frames = train_frames(source, args.data)[: args.max_frames]
    if not frames:
        print(f"{source.name}: no train clip, nothing to adapt on", file=sys.stderr)
        return {}
    seen = [f.key for f in frames]
    entry: dict[str, Any] = {"adapt_frames": len(frames), "rungs": {}}
    skipped = []
    for rung in args.rungs.split(","):
        if set(TRAINED) & set(RUNGS[rung]) and len(frames) < MIN_FRAMES:
            skipped.append(rung)  # minutes of training on a handful of frames measure nothing
            entry["skipped"] = (
                f"{', '.join(skipped)}: fewer than the {MIN_FRAMES} frames adapt asks for"
            )
            continue
        fp32, int8, seconds = rung_models(rung, model, source_camera(source, frames), args)
        entry["rungs"][rung] = {
            "seconds": round(seconds, 1),
            **scores(args.out / source.name / rung, (fp32, int8), source, seen, args.data),
        }
        print(f"{source.name} {rung}: {seconds:.0f} s", file=sys.stderr)
        if rung == "none" and not args.model:
            pre = load_model_engine(fp32).info.preprocess
            inputs = test_inputs(source, args.data, seen, pre)
            if inputs:
                found = agreement(args.out / source.name / rung, fp32, int8, inputs)
                result.setdefault("recovery_agreement", {})[source.name] = found
    return entry


def video_split(video: Path) -> tuple[Camera, list[Frame]]:
    """A video without labels: its first half to adapt on, its later half to measure on."""
    frames = list(file_frames(video))
    first = frames[: len(frames) // 2]

    def read() -> Iterator[tuple[str, str, np.ndarray]]:
        return ((f.key, f.clip, f.rgb) for f in first)

    what = f"{video.name} frames 0-{len(first) - 1}"
    return Camera(f"video_{video.stem}", what, len(first), read), frames[len(first) :]


def _figures(path: Path, frames: list[Frame], threads: int) -> dict[str, Any]:
    seg = Segmenter.load(str(path), FIGURES_ENGINE, threads)
    rgb, clips = [f.rgb for f in frames], [f.clip for f in frames]
    return line_figures(lambda x: seg.segment_lanes(x)[1], rgb, clips).to_json()


def stability(folder: Path, files: tuple[Path, Path], frames: list[Frame], threads: int) -> dict:
    """The label-free line figures (`lane_seg.training.adapt.figures`: both ego lines found,
    their jitter) of a rung's fp32 and int8 files on `frames`, at the frames' own resolution;
    kept in its folder for a re-run with the same files."""
    path = folder / "stability.json"
    key = [sha256_file(f) for f in files]
    kept = json.loads(path.read_text()) if path.is_file() else {}
    if kept.get("files_sha256") != key:
        kept = {"files_sha256": key}
        pairs = zip(PRECISIONS, files, strict=True)
        kept |= {name: _figures(f, frames, threads) for name, f in pairs}
        path.write_text(json.dumps(kept, indent=2) + "\n")
    return {name: kept[name] for name in PRECISIONS}


def video_rungs(model: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Every rung adapted on the video's first half, its lines' stability on the later half."""
    camera, later = video_split(args.video)
    h, w = later[0].rgb.shape[:2]
    entry: dict[str, Any] = {"video": str(args.video), "what": camera.what, "rungs": {},
                             "measured": f"frames {camera.count}-{camera.count + len(later) - 1}",
                             "size": f"{w}x{h}"}  # fmt: skip
    for rung in args.rungs.split(","):
        fp32, int8, seconds = rung_models(rung, model, camera, args)
        found = stability(args.out / camera.name / rung, (fp32, int8), later, args.threads)
        entry["rungs"][rung] = {"seconds": round(seconds, 1), **found}
        print(f"{camera.name} {rung}: {seconds:.0f} s", file=sys.stderr)
    return entry


def video_markdown(entry: dict[str, Any]) -> list[str]:
    lines = [
        f"### {Path(entry['video']).name} (a video without labels)",
        "",
        f"Adapted on {entry['what']}, measured on {entry['measured']}: the share of frames where "
        "both ego lines are found, and how far an ego line moves from one frame to the next "
        f"in px at the video's {entry['size']} (its mean shift over 8 rows in the lower 60-95 % "
        "of the frame; median and mean over consecutive frames). Steadiness is not accuracy, "
        "and a model that finds nothing has no jitter: read both columns together.",
        "",
        "| rung | model | both ego lines | jitter median (px) | jitter mean (px) | adapt s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    px = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    for rung, r in entry["rungs"].items():
        for precision in PRECISIONS:
            f = r[precision]
            secs = "-" if rung == "none" else round(r["seconds"])
            lines.append(
                f"| {rung} | {precision} | {f['both_ego']:.1%} | "
                f"{px(f.get('jitter_median_px'))} | {px(f['jitter_px'])} | {secs} |"
            )
    return [*lines, ""]


def agreement(folder: Path, fp32: Path, int8: Path, inputs: list) -> dict[str, float]:
    """Masks of the recovered fp32 file against the shipped int8 file's on the test frames."""
    path = folder / "agreement.json"
    if not path.is_file():
        engines = [OnnxRuntimeEngine(f, 2, "onnxruntime-cpu") for f in (fp32, int8)]
        path.write_text(json.dumps(compare_outputs(*engines, inputs), indent=2) + "\n")
    return json.loads(path.read_text())


def test_inputs(source: real_sources.RealSource, data: Path, seen: list, pre) -> list:  # noqa: ANN001
    frames = [f for f in source.frames(data) if f.key not in set(seen)][:AGREEMENT_FRAMES]
    return [to_input(real_sources.read_rgb(f.image), pre) for f in frames]


def add_readme_option(p: argparse.ArgumentParser, section: str) -> None:
    """--readme FILE (repeatable): the study writes its table into FILE's `section`."""
    p.add_argument(
        "--readme",
        type=Path,
        action="append",
        default=[],
        help=f"write the table into this file's {section} section (repeatable)",
    )


def check_readmes(readmes: list[Path], section: str) -> None:
    for readme in readmes:
        check_section(readme, section)  # before hours of work, not after


def write_tables(stem: Path, result: dict, table: str, readmes: list[Path], section: str) -> None:
    """STEM.json, STEM.md and each README's `section` (regenerated by `make <section>`)."""
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(table)
    for readme in readmes:
        replace_section(readme, section, f"make {section}", table)
    print(stem.with_suffix(".md"))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", type=Path, help="starting checkpoint (.pt); default: the shipped")
    p.add_argument("--data", type=Path, required=True, help="data root of the real sources")
    p.add_argument("--sim", type=Path, required=True, help="simulator dataset (calib, selftrain)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--sources", help="comma-separated source names (default: every present)")
    p.add_argument("--rungs", default=",".join(RUNGS), help="comma-separated rungs")
    p.add_argument("--alpha", type=float, default=0.5)
    p.add_argument("--max-frames", type=int, default=500)
    p.add_argument("--selftrain-steps", type=int, default=200)
    p.add_argument("--distill-steps", type=int, default=50)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--video", type=Path, help="a video without labels: stability per rung")
    add_readme_option(p, SECTION)
    args = p.parse_args()
    check_readmes(args.readme, SECTION)
    if args.video and not (args.video.is_file() and is_video(args.video)):
        print(f"--video {args.video}: not a video file", file=sys.stderr)
        return 2
    wanted = args.sources.split(",") if args.sources else None
    sources = [s for s in real_sources.available(args.data) if not wanted or s.name in wanted]
    args.out.mkdir(parents=True, exist_ok=True)
    model = args.model or shipped_checkpoint(args.out)
    result: dict[str, Any] = {"model": str(model), "cpu": CpuInfo.detect().line()}
    result["settings"] = {k: getattr(args, k) for k in SETTINGS}
    if not args.model:
        result["recovered_from"] = load_checkpoint(model)["recovered_from"]
    result["sources"] = {}
    for source in sources:
        entry = source_rungs(source, model, args, result)
        if entry:
            result["sources"][source.name] = entry
    if args.video:
        result["video"] = video_rungs(model, args)
    write_tables(args.out / "rungs", result, markdown(result), args.readme, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
