"""The shipped models: `models/` of the package (lane_seg.resources finds it in a checkout
or an installation). `lane-seg demo`, `bag` and the bench use the default int8 model when no
model is given; the node, `infer` and `sim` pick among the shipped int8 models
(`models/shipped.json`, lane_seg.runtime.model_pick). `make model` rebuilds the default model's
files (see models/README.md)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from lane_seg import resources
from lane_seg.errors import LaneSegError
from lane_seg.outputs import naming, temp_path

FILES = {"int8": "lane_unet_int8.onnx", "fp32": "lane_unet_fp32.onnx"}
MANIFEST = "shipped.json"


@dataclass(frozen=True)
class ShippedModel:
    path: Path
    real_f1: float  # mean F1 within 8 px over the labelled real sources, %


def shipped_int8(manifest: Path | None = None) -> list[ShippedModel]:
    """The shipped int8 models with their accuracy, from `models/shipped.json`:
    `{"int8": [{"file": NAME, "real_f1_8px": PERCENT}, ...]}` (docs/architecture.md,
    contract 3); each file sits beside the manifest."""
    path = manifest or resources.model_file(MANIFEST)
    try:
        entries = json.loads(path.read_text())["int8"]
        models = [
            ShippedModel(path.parent / str(e["file"]), float(e["real_f1_8px"])) for e in entries
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LaneSegError(f"{path}: not a list of shipped models ({exc})") from None
    if not models or not all(0 <= m.real_f1 <= 100 for m in models):  # NaN fails too
        raise LaneSegError(f"{path}: needs at least one model, each with an F1 in 0..100 %")
    return models


def manifest_entry_check(manifest: Path, model: Path) -> None:
    """LaneSegError unless `model` can be listed in `manifest`: an int8 ONNX file beside it."""
    from lane_seg.runtime.engines import read_onnx_info  # numpy, onnxruntime: not for the parser

    if model.resolve().parent != manifest.resolve().parent:
        raise LaneSegError(
            f"--manifest {manifest}: {model} is not beside it; shipped models sit in its folder"
        )
    if model.suffix != ".onnx" or read_onnx_info(model).precision != "int8":
        raise LaneSegError(f"--manifest {manifest} lists int8 ONNX models; {model} is not one")
    shipped_int8(manifest)  # a manifest that reads now reads after the figure is written


def record_real_f1(manifest: Path, model: Path, real_f1: float) -> None:
    """Write `model`'s measured mean real F1 within 8 px (%) into `manifest`: its entry's
    figure replaced, or an entry added; every other key kept. Written whole, then renamed."""
    manifest_entry_check(manifest, model)
    if not 0 <= real_f1 <= 100:  # NaN fails too
        raise LaneSegError(f"{model}: mean real F1 {real_f1} is not a percentage")
    data = json.loads(manifest.read_text())
    entries = data["int8"]
    entry = next((e for e in entries if e.get("file") == model.name), None)
    if entry is None:
        entry = {"file": model.name}
        entries.append(entry)
    entry["real_f1_8px"] = round(real_f1, 2)
    tmp = temp_path(manifest)
    try:
        with naming(manifest):
            tmp.write_text(json.dumps(data, indent=2) + "\n")
            os.replace(tmp, manifest)
    finally:
        tmp.unlink(missing_ok=True)


def model_or_default(model: str | Path | None) -> str:
    """`model` when given, else the shipped int8 model: what every command and the node run."""
    return str(model) if model else str(default_model("int8"))


def default_model(precision: str = "int8") -> Path:
    """The shipped model file of `precision` ("int8" or "fp32")."""
    if precision not in FILES:
        raise LaneSegError(f"no default {precision} model; choose one of {', '.join(FILES)}")
    try:
        return resources.model_file(FILES[precision])
    except LaneSegError as exc:
        raise LaneSegError(f"{exc}; or run `make model`, or give a model path") from None
