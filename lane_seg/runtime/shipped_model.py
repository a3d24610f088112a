"""The shipped default model: `models/` of the package (lane_seg.resources finds it in a checkout
or an installation). The node, `lane-seg demo`, `infer`, `bag` and the bench use it when no
model is given. `make model` rebuilds the files (see models/README.md)."""

from __future__ import annotations

from pathlib import Path

from lane_seg import resources
from lane_seg.errors import LaneSegError

FILES = {"int8": "lane_unet_int8.onnx", "fp32": "lane_unet_fp32.onnx"}


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
