"""Write a `lane-seg bench` report: markdown table, JSON, and a PNG plot, atomically."""

from __future__ import annotations

import json
import math
from pathlib import Path

from lane_seg.bench.node_end_to_end import markdown as node_markdown
from lane_seg.data.dataset import atomic_write


def _f(v: float | None, fmt: str = ".1f") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, fmt)


def _calib(c: dict | None) -> str:
    if not c:
        return "none (the int8 files were given)"
    where = c.get("dataset", "?")
    split = f" split {c['split']}" if "split" in c else ""
    return f"{c.get('count', '?')} frames of {where}{split}, seed {c.get('seed', '?')}"


def markdown(report: dict) -> str:
    m = report["model"]
    peaks = report["peak_gmacs_per_s"]
    t = report["timing"]
    lb, la = report["load_average_before"], report["load_average_after"]
    lines = [
        f"Hardware: {report['hardware']}; estimated peak {peaks['fp32']:.0f} GMAC/s fp32, "
        f"{peaks['int8']:.0f} GMAC/s int8 on all {report['cores']} cores; '% of peak' is of "
        f"the peak for the {report['cores_used']} core(s) the runtimes were given (none for GPU "
        "rows).",
        f"Model: {m['arch']} {m['config']} from {m['checkpoint']}, {m['params'] / 1e6:.2f} M "
        f"params, {m['gmacs']:.3f} GMACs per {m['input'][1]}x{m['input'][0]} frame.",
        f"Frames: {report['frames']}. Batch 1, threads {t['threads']}; {t['rounds']} interleaved "
        f"rounds x {t['iters_per_round']} runs per engine after {t['warmup']} warm-up runs. "
        f"Load average (1/5/15 min) before {lb[0]:.2f}/{lb[1]:.2f}/{lb[2]:.2f}, "
        f"after {la[0]:.2f}/{la[1]:.2f}/{la[2]:.2f}.",
        f"Lane IoU on: {report['accuracy_set'] or 'not measured (no --data)'}. "
        f"Memory: {report['memory_method']}.",
        f"int8 calibration (rows quantized in this run): {_calib(report.get('calibration'))}.",
        "",
        "| engine | provider | p50 ms | p95 ms | p99 ms | fps | speed-up vs torch fp32 | "
        "lane IoU % | size MB | load peak MB | infer peak MB | GMAC/s | % of peak |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['name']} | {r['provider']} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {r['fps']:.1f} | {_f(r['speedup_vs_torch_fp32'], '.2f')}x | "
            f"{_f(r['lane_iou'], '.2f')} | {r['size_bytes'] / 1e6:.2f} | "
            f"{r['load_peak_mb']:.0f} | {r['infer_peak_mb']:.0f} | "
            f"{r['achieved_gmacs_per_s']:.1f} | {_f(100 * r['peak_fraction'])} |"
        )
    for s in report["skipped"]:
        lines.append(f"| {s['name']} | skipped: {s['reason']} |" + " |" * 11)
    for note in report["notes"]:
        lines.append(f"\nNote: {note}")
    if report.get("node"):
        lines += [
            "",
            "Node end to end over ROS 2 (lane_seg.bench.node_end_to_end):",
            "",
            node_markdown(report["node"]),
        ]
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> Path:
    """Bar chart of p50 latency (p95/p99 whiskers), and latency vs lane IoU when measured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["rows"]
    with_iou = [r for r in rows if r["lane_iou"] is not None]
    fig, axes = plt.subplots(1, 2 if with_iou else 1, figsize=(13 if with_iou else 8, 4.5))
    axes = list(axes) if with_iou else [axes]
    names = [r["name"] for r in rows]
    p50 = [r["p50_ms"] for r in rows]
    err = [[0] * len(rows), [r["p99_ms"] - r["p50_ms"] for r in rows]]
    colours = ["tab:blue" if r["precision"] == "fp32" else "tab:orange" for r in rows]
    ax = axes[0]
    ax.barh(names, p50, xerr=err, color=colours, capsize=3)
    for i, r in enumerate(rows):
        ax.text(
            r["p99_ms"],
            i,
            f" {r['p50_ms']:.1f} ms ({_f(r['speedup_vs_torch_fp32'])}x)",
            va="center",
            fontsize=8,
        )
    ax.invert_yaxis()
    ax.set_xlabel("batch-1 latency, ms (bar p50, whisker to p99); blue fp32, orange int8")
    if with_iou:
        ax2 = axes[1]
        for r in with_iou:
            ax2.scatter(
                r["p50_ms"],
                r["lane_iou"],
                color="tab:blue" if r["precision"] == "fp32" else "tab:orange",
            )
            ax2.annotate(
                r["name"],
                (r["p50_ms"], r["lane_iou"]),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
        ax2.set_xlabel("p50 latency, ms")
        ax2.set_ylabel("lane IoU, %")
        ax2.grid(alpha=0.3)
    fig.suptitle(f"{report['model']['arch']}: {report['hardware']}", fontsize=9)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path


def write_report(report: dict, out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "bench.json", "markdown": out / "bench.md", "plot": out / "bench.png"}
    atomic_write(paths["json"], (json.dumps(report, indent=2, default=str) + "\n").encode())
    atomic_write(paths["markdown"], markdown(report).encode())
    plot(report, paths["plot"])
    return paths
