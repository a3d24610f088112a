"""Calibration frames come from the training split only and never overlap the scored frames."""

from __future__ import annotations

import json

import pytest
from quant_helpers import write_dataset

from lane_seg.errors import LaneSegError
from lane_seg.training.eval.score import scored_samples
from lane_seg.training.quant.calibration import (
    check_disjoint,
    frames_calibration,
    select_calibration,
)


def test_calibration_is_a_fixed_subset_of_train(tmp_path):
    root = write_dataset(tmp_path / "ds", n_train=12, n_val=6)
    a = select_calibration(root, 5, seed=3)
    b = select_calibration(root, 5, seed=3)
    c = select_calibration(root, 5, seed=4)
    assert a.ids == b.ids and a.identity() == b.identity()
    assert a.identity()["images_sha256"] != c.identity()["images_sha256"]
    assert len(a.samples) == 5 and all(s.split == "train" for s in a.samples)
    assert a.identity()["count"] == 5 and a.identity()["split"] == "train"
    assert len(select_calibration(root, 100).samples) == 12  # capped at the split's size
    json.dumps(a.identity())  # goes into report.json and ONNX metadata as is


def test_calibration_never_overlaps_the_scored_frames(tmp_path):
    root = write_dataset(tmp_path / "ds", n_train=12, n_val=6)
    calib = select_calibration(root, 12)
    scored = scored_samples(root, "val")
    assert not {s.id for s in scored} & set(calib.ids)
    check_disjoint(calib, scored)  # disjoint: no error
    # the same image content under another id and split is caught too
    dup = write_dataset(tmp_path / "dup", n_train=12, n_val=6)  # same seed: same pixels
    with pytest.raises(LaneSegError, match="also calibration frames"):
        check_disjoint(calib, scored_samples(dup, "val") + select_calibration(dup, 1).samples)
    with pytest.raises(LaneSegError, match="train split"):
        scored_samples(root, "train")


def test_calibration_needs_a_train_split(tmp_path):
    root = write_dataset(tmp_path / "ds", n_train=0, n_val=3)
    with pytest.raises(LaneSegError, match="training split"):
        select_calibration(root, 4)
    with pytest.raises(LaneSegError):
        select_calibration(root, 0)


def test_in_memory_frames_follow_the_same_rule(tmp_path):
    """Frames handed over in memory (simulator, a user's camera) are chosen like a train split:
    the same pool, size and seed give the same frames; the rest of the pool is held out."""
    import numpy as np

    rng = np.random.default_rng(0)
    pool = [(f"cam-{i:03d}", rng.integers(0, 255, (8, 16, 3), dtype=np.uint8)) for i in range(20)]
    a = frames_calibration(pool, "camera", size=6, seed=2)
    b = frames_calibration(list(reversed(pool)), "camera", size=6, seed=2)
    assert a.identity() == b.identity() and a.ids == sorted(a.ids)
    assert len(a.held_out) == 14 and not set(a.ids) & {f.id for f in a.held_out}
    assert a.identity()["split"] == "train" and a.identity()["dataset"] == "camera"
    root = write_dataset(tmp_path / "ds", n_train=12, n_val=2)
    d = select_calibration(root, 5, seed=3)
    assert len(d.frames) + len(d.held_out) == 12
