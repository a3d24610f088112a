"""The model artifact contract (docs/architecture.md, contract 2).

A deployable ONNX file carries everything the runtime needs as `metadata_props` (string
key/values): architecture, preprocessing, output kind, threshold, precision, data identity and
the metrics measured at export. Checkpoints (`.pt`) carry the same `ModelInfo` as a plain dict,
so `torch.load(..., weights_only=True)` can read them.

Graph I/O: input "image" float32 [N, 3, H, W] (already preprocessed, see lane_seg.preprocess),
output "logits" float32 [N, 1, H, W]; probability = sigmoid(logits), lane where p > threshold.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from lane_seg.errors import LaneSegError
from lane_seg.preprocess import PROB_THRESHOLD, PreprocessConfig
from lane_seg.sizes import MAX_INPUT_SIDE

ARTIFACT_FORMAT = "lane_seg.model/1"
INPUT_NAME = "image"
OUTPUT_NAME = "logits"
PRECISIONS = ("fp32", "int8", "int8-trt", "fp16")
LABELS = ("paint", "lines")  # label conventions (docs/architecture.md, "Label conventions")


def check_input_bounds(sizes: dict[str, int], source: str) -> None:
    """Each model input side in `sizes` ({name: px}) in 1..MAX_INPUT_SIDE, or a LaneSegError."""
    for key, value in sizes.items():
        if not 1 <= value <= MAX_INPUT_SIDE:
            raise LaneSegError(
                f"{source}: {key} {value} is outside 1..{MAX_INPUT_SIDE} (px of model input)"
            )


@dataclass
class ModelInfo:
    arch: str
    model_config: dict[str, Any] = field(default_factory=dict)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    precision: str = "fp32"
    threshold: float = PROB_THRESHOLD
    output: str = "logit"
    train_data: str = ""
    labels: str = "paint"  # the label convention the model predicts
    calibration: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    # Real frames trained on, per real source (lane_seg.data.real_sources): never scored.
    real_frames: dict[str, list[str]] = field(default_factory=dict)

    def to_metadata(self) -> dict[str, str]:
        """Flat string map for ONNX metadata_props (and checkpoint dicts)."""
        return {
            "format": ARTIFACT_FORMAT,
            "arch": self.arch,
            "model_config": json.dumps(self.model_config, sort_keys=True),
            **self.preprocess.to_metadata(),
            "precision": self.precision,
            "threshold": f"{self.threshold:g}",
            "output": self.output,
            "train_data": self.train_data,
            "labels": self.labels,
            "calibration": json.dumps(self.calibration, sort_keys=True),
            "metrics": json.dumps(self.metrics, sort_keys=True),
            "real_frames": json.dumps(self.real_frames, sort_keys=True),
        }

    @classmethod
    def from_metadata(cls, meta: dict[str, str], source: str = "model") -> ModelInfo:
        if meta.get("format") != ARTIFACT_FORMAT:
            raise LaneSegError(
                f"{source} has no lane_seg metadata (format {meta.get('format')!r}); export it "
                "with `lane-seg export` or `lane-seg quantize`"
            )
        try:
            info = cls(
                arch=meta["arch"],
                model_config=json.loads(meta.get("model_config", "{}")),
                preprocess=PreprocessConfig.from_metadata(meta),
                precision=meta.get("precision", "fp32"),
                threshold=float(meta.get("threshold", PROB_THRESHOLD)),
                output=meta.get("output", "logit"),
                train_data=meta.get("train_data", ""),
                labels=meta.get("labels", "paint"),  # models made before conventions: paint
                calibration=json.loads(meta.get("calibration", "{}")),
                metrics=json.loads(meta.get("metrics", "{}")),
                real_frames=json.loads(meta.get("real_frames", "{}")),
            )
        except (KeyError, ValueError) as exc:
            raise LaneSegError(f"{source} has malformed lane_seg metadata: {exc}") from exc
        pre = info.preprocess
        check_input_bounds({"input_height": pre.height, "input_width": pre.width}, source)
        check_numbers(info, source)
        return info


def check_numbers(info: ModelInfo, source: str) -> None:
    """The metadata numbers every engine and mask trusts, or a LaneSegError naming `source` and
    the field: a threshold of 7 or nan, or a std of 0, would give empty masks with exit code 0.
    """
    t = info.threshold
    if not (math.isfinite(t) and 0.0 < t < 1.0):
        raise LaneSegError(
            f"{source}: metadata field threshold = {t:g} is not a probability between 0 and 1 "
            "(exclusive); re-export the model"
        )
    pre = info.preprocess
    for key, values in (("mean", pre.mean), ("std", pre.std)):
        if not all(math.isfinite(v) for v in values) or (key == "std" and min(values) <= 0):
            must = "positive finite numbers" if key == "std" else "finite numbers"
            raise LaneSegError(
                f"{source}: metadata field {key} = {','.join(f'{v:g}' for v in values)}: "
                f"must be three {must}; re-export the model"
            )
