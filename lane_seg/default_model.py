"""Where the shipped default model lives: `models/` in a checkout, `share/lane_seg/models` when
installed (pip or colcon). The node, `lane-seg demo` and the bench use it when no model is given.
`make model` rebuilds the files (see models/README.md)."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from lane_seg.errors import LaneSegError

PACKAGE = "lane_seg"
FILES = {"int8": "lane_unet_int8.onnx", "fp32": "lane_unet_fp32.onnx"}


def _candidates() -> list[Path]:
    dirs = [
        Path(__file__).resolve().parents[1] / "models",
        Path(sys.prefix) / "share" / PACKAGE / "models",
    ]
    with contextlib.suppress(Exception):  # no ament index (pip-only), or lane_seg not in it
        from ament_index_python.packages import get_package_share_directory

        dirs.append(Path(get_package_share_directory(PACKAGE)) / "models")
    return dirs


def model_or_default(model: str | Path | None) -> str:
    """`model` when given, else the shipped int8 model: what every command and the node run."""
    return str(model) if model else str(default_model("int8"))


def default_model(precision: str = "int8") -> Path:
    """The shipped model file of `precision` ("int8" or "fp32")."""
    if precision not in FILES:
        raise LaneSegError(f"no default {precision} model; choose one of {', '.join(FILES)}")
    for d in _candidates():
        if (d / FILES[precision]).is_file():
            return d / FILES[precision]
    raise LaneSegError(
        f"the default model {FILES[precision]} is missing (looked in "
        f"{', '.join(str(d) for d in _candidates())}); run `make model`, or give a model path"
    )
