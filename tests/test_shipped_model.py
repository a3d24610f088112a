"""The shipped default model: both files present, the card describes exactly these files, and
the int8 file is the fp32 model quantized (same architecture and preprocessing)."""

from __future__ import annotations

import hashlib
import re

from lane_seg.runtime.engines import read_onnx_info
from lane_seg.runtime.shipped_model import default_model


def test_int8_and_fp32_are_the_same_model_in_two_precisions():
    int8, fp32 = read_onnx_info(default_model("int8")), read_onnx_info(default_model("fp32"))
    assert (int8.precision, fp32.precision) == ("int8", "fp32")
    assert int8.arch == fp32.arch and int8.model_config == fp32.model_config
    assert int8.preprocess == fp32.preprocess
    assert int8.calibration.get("split") == "train" and int8.calibration.get("count", 0) > 0
    assert default_model("int8").stat().st_size < default_model("fp32").stat().st_size / 3


def test_model_card_matches_the_committed_files():
    """Regenerate models/README.md (`make model`) whenever the model files change."""
    card = (default_model("int8").parent / "README.md").read_text()
    for precision in ("int8", "fp32"):
        path = default_model(precision)
        row = next(line for line in card.splitlines() if f"`{path.name}`" in line and "|" in line)
        size_mb, sha = re.search(r"\| ([\d.]+) \| `([0-9a-f]+)…`", row).groups()
        assert abs(float(size_mb) - path.stat().st_size / 1e6) < 0.001, path.name
        assert hashlib.sha256(path.read_bytes()).hexdigest().startswith(sha), path.name
