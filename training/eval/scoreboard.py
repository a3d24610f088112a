"""The real-frame scoreboard: a model on every labelled real source, by each source's labels.

For every source in `lane_seg.data.real_sources` that is present under the data root, each frame
goes through the same path as `lane-seg eval` (`preprocess.to_input` -> model -> `to_mask` at
the label's resolution, probability 0.5) and is scored against its own label with

- lane IoU, precision and recall over pixels (`metrics.confusion`), and
- F1 within 8 px (`metrics.tolerant_counts_by_band`): thin lines whose exact pixels are a
  matter of drawing convention are judged by whether they are in the right place, over the
  frame and per tenth of its height (where lines are missed: the far road, under the bonnet),

summed over the source's frames, over all and per condition (day / night, from the frame's
brightness: `real_sources.condition`), and, for sources labelled with lane lines, the lane
benchmarks' own figures (`lane_seg.data.real_lanes`: CULane F1 for CULane frames, TuSimple
accuracy/FP/FN for TuSimple frames; exact or approximated, as each row says) under `lanes`.
Frames a model was trained on (its metadata's `real_frames`) are never scored: they are left
out and counted; frames with a malformed label (`real_sources.load_frame`) are skipped and
listed (`skipped_malformed`). Writes scoreboard.json, scoreboard.md and one contact sheet per
source and model (prediction over the frame: green right, red false, blue missed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lane_seg.data import real_lanes, real_sources
from lane_seg.data.importers.common import LabelError
from lane_seg.errors import LaneSegError
from lane_seg.metrics import Counts, TolerantCounts, confusion, tolerant_counts_by_band
from lane_seg.preprocess import to_input
from lane_seg.runtime.engines import Engine
from lane_seg.runtime.segmenter import lanes_from_logits
from lane_seg.training.eval.evaluate import error_overlay, load_model_engine
from lane_seg.training.eval.score import predict
from lane_seg.visualize import contact_sheet

SHEET_FRAMES = 12
CONDITIONS = ("all", "day", "night")
BANDS = 10  # horizontal bands of the frame for where lines are found or missed
MIN_BAND_SHARE = 0.01  # a band holding less of the labelled pixels shows no recall


@dataclass
class Tally:
    frames: int = 0
    counts: Counts = field(default_factory=Counts)
    bands: list[TolerantCounts] = field(default_factory=lambda: [TolerantCounts()] * BANDS)

    def add(self, c: Counts, bands: list[TolerantCounts]) -> None:
        self.frames += 1
        self.counts = self.counts + c
        self.bands = [a + b for a, b in zip(self.bands, bands, strict=True)]

    def scores(self) -> dict[str, Any]:
        s = self.counts.scores()
        keys = ("lane_iou", "precision", "recall")
        tolerant = sum(self.bands, TolerantCounts())
        by_band = [
            {"label_share": b.label / max(1, tolerant.label), **b.scores()} for b in self.bands
        ]
        return {
            "frames": self.frames,
            **{k: s[k] for k in keys},
            **tolerant.scores(),
            "bands": by_band,
        }


def _sheet(tiles: list[np.ndarray], path: Path) -> None:
    sheet = contact_sheet([cv2.resize(t, (480, 270)) for t in tiles], cols=4)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


def score_source(
    engine: Engine, source: real_sources.RealSource, data_root: Path, sheet: Path | None
) -> dict[str, Any]:
    """Scores of one model on one source (frames it trained on left out)."""
    trained = set(engine.info.real_frames.get(source.name, []))
    tallies = {c: Tally() for c in CONDITIONS}
    lanes = real_lanes.LaneTally(source.name)
    pre, threshold = engine.info.preprocess, engine.info.threshold
    frames = source.frames(data_root)
    scored = [f for f in frames if f.key not in trained]
    step = max(1, len(scored) // SHEET_FRAMES)
    tiles, skipped = [], []
    for i, frame in enumerate(scored):
        try:  # a malformed label skips its frame, before anything of it is counted
            rgb, label = real_sources.load_frame(frame)
            pred, logits = predict(engine, to_input(rgb, pre), label.shape)
            if lanes.spec is not None:
                found = lanes_from_logits(logits, label.shape, pre, threshold)
                lanes.add(frame, found, label.shape)
        except LabelError as exc:
            skipped.append(f"{frame.key}: {exc}")
            continue
        c, bands = confusion(pred, label), tolerant_counts_by_band(pred, label, BANDS)
        tallies["all"].add(c, bands)
        tallies[real_sources.condition(rgb)].add(c, bands)
        if sheet is not None and i % step == 0 and len(tiles) < SHEET_FRAMES:
            tiles.append(error_overlay(rgb, pred, label))
    if sheet is not None and tiles:
        _sheet(tiles, sheet)
    return {
        "source": source.name,
        "convention": source.convention,
        "licence": source.licence,
        "left_out_trained": len(frames) - len(scored),
        "skipped_malformed": skipped,
        **{c: t.scores() for c, t in tallies.items() if t.frames},
        "lanes": lanes.scores(),
    }


def run_scoreboard(
    models: list[Path], data_root: Path, out: Path, sheets: bool = True
) -> dict[str, Any]:
    sources = real_sources.available(data_root)
    if not sources:
        names = ", ".join(s.folder for s in real_sources.SOURCES.values())
        raise LaneSegError(f"no labelled real source under {data_root} (looked for {names})")
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"data_root": str(data_root), "models": {}}
    for path in models:
        engine = load_model_engine(path)
        rows = [
            score_source(
                engine, s, data_root, out / f"{path.stem}_{s.name}.png" if sheets else None
            )
            for s in sources
        ]
        result["models"][str(path)] = {"precision": engine.info.precision, "sources": rows}
    (out / "scoreboard.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "scoreboard.md").write_text(markdown(result))
    return result


def mean_real_f1(entry: dict[str, Any]) -> float:
    """A model's mean F1 within 8 px over the sources' 'all' rows, % (what models/shipped.json
    lists); NaN when no source scored a frame."""
    scores = [row["all"]["tol_f1"] for row in entry["sources"] if "all" in row]
    return 100.0 * sum(scores) / len(scores) if scores else float("nan")


def markdown(result: dict[str, Any]) -> str:
    """One table per model: source, labels, frames, lane IoU and F1 within 8 px, per condition."""
    lines = []
    for model, entry in result["models"].items():
        lines += [
            f"**{model}** ({entry['precision']}); lane IoU and F1 within 8 px, %:",
            "",
            "| source | labels | licence | condition | frames | lane IoU | F1 @ 8 px "
            "| precision | recall |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for row in entry["sources"]:
            for cond in CONDITIONS:
                s = row.get(cond)
                if not s or (cond != "all" and s["frames"] == row["all"]["frames"]):
                    continue  # a single-condition source shows one row
                name = row["source"] + (
                    f" (-{row['left_out_trained']} trained on)"
                    if row["left_out_trained"] and cond == "all"
                    else ""
                )
                if row["skipped_malformed"] and cond == "all":
                    name += f" (-{len(row['skipped_malformed'])} malformed labels)"
                lines.append(
                    f"| {name} | {row['convention']} | {row['licence']} | {cond} | {s['frames']} "
                    f"| {100 * s['lane_iou']:.1f} | {100 * s['tol_f1']:.1f} "
                    f"| {100 * s['precision']:.1f} | {100 * s['recall']:.1f} |"
                )
        lines.append("")
        lines += bands_markdown(entry)
        lines += lanes_markdown(entry)
    return "\n".join(lines)


def bands_markdown(entry: dict[str, Any]) -> list[str]:
    """Recall within 8 px per horizontal band of the frame, one row per source."""
    lines = [
        f"Where the lines are found: recall within 8 px in each tenth of the frame height, top "
        f"to bottom (share of the source's labelled pixels there, %; `-` under "
        f"{100 * MIN_BAND_SHARE:g} %):",
        "",
        "| source | " + " | ".join(str(i + 1) for i in range(BANDS)) + " |",
        "|---|" + "---|" * BANDS,
    ]
    for row in entry["sources"]:
        if "all" not in row:  # no frame scored: all trained on, or their labels malformed
            continue
        cells = [
            f"{100 * b['tol_recall']:.0f} ({100 * b['label_share']:.0f})"
            if b["label_share"] >= MIN_BAND_SHARE
            else "-"
            for b in row["all"]["bands"]
        ]
        lines.append(f"| {row['source']} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def lanes_markdown(entry: dict[str, Any]) -> list[str]:
    """The lane benchmarks' figures of one model, one row per source (lane_seg.data.real_lanes)."""
    lines = [
        "Lane lines, the benchmarks' own metrics (lane_seg.data.real_lanes); exact: against the "
        "source's lane labels, approx.: against lanes read back from its label masks:",
        "",
        "| source | metric | labels | frames | TuSimple accuracy % | FP % | FN % "
        "| CULane precision % | recall % | F1 % |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in entry["sources"]:
        s = row.get("lanes") or {}
        if not s.get("benchmark"):
            lines.append(f"| {row['source']} | - | {s.get('labels', '')} |" + " - |" * 7)
            continue
        kind = "exact" if s["exact"] else "approx."
        head = f"| {row['source']} | {s['benchmark']} ({kind}) | {s['labels']} | {s['frames']} "
        if s["benchmark"] == "tusimple":
            figures = [s["accuracy"], s["fp"], s["fn"], None, None, None]
        else:
            figures = [None, None, None, s["precision"], s["recall"], s["f1"]]
        lines.append(
            head + "".join("| - " if v is None else f"| {100 * v:.1f} " for v in figures) + "|"
        )
    lines.append("")
    return lines
