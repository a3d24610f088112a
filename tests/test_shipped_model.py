"""The shipped default model: the int8 file is committed and described by the card; the fp32
file it was quantized from is a `make model` output (not committed), checked when present."""

from __future__ import annotations

import hashlib
import re

import pytest

from lane_seg.errors import LaneSegError
from lane_seg.runtime.engines import read_onnx_info
from lane_seg.runtime.shipped_model import default_model

CARD = default_model("int8").parent / "README.md"


def _card_row(name: str) -> tuple[float, str]:
    row = next(
        line for line in CARD.read_text().splitlines() if f"`{name}`" in line and "|" in line
    )
    size_mb, sha = re.search(r"\| ([\d.]+) \| `([0-9a-f]+)…`", row).groups()
    return float(size_mb), sha


def test_int8_model_is_calibrated_on_training_frames_and_predicts_lines():
    int8 = read_onnx_info(default_model("int8"))
    assert int8.precision == "int8" and int8.labels == "lines"
    assert int8.calibration.get("split") == "train" and int8.calibration.get("count", 0) > 0
    assert f"# lane_seg default model: {int8.arch} (" in CARD.read_text()


def test_model_card_matches_the_committed_int8_file():
    """Regenerate models/README.md (`make model`) whenever the model changes."""
    path = default_model("int8")
    size_mb, sha = _card_row(path.name)
    assert abs(size_mb - path.stat().st_size / 1e6) < 0.001
    assert hashlib.sha256(path.read_bytes()).hexdigest().startswith(sha)


def test_a_rebuilt_fp32_file_is_the_one_the_card_describes():
    try:
        path = default_model("fp32")
    except LaneSegError:
        pytest.skip("no fp32 file: `make model` writes it (not committed)")
    size_mb, sha = _card_row(path.name)
    assert hashlib.sha256(path.read_bytes()).hexdigest().startswith(sha)
    int8, fp32 = read_onnx_info(default_model("int8")), read_onnx_info(path)
    assert (int8.arch, int8.model_config, int8.preprocess) == (
        fp32.arch,
        fp32.model_config,
        fp32.preprocess,
    )
    assert default_model("int8").stat().st_size < path.stat().st_size / 3
