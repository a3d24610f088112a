"""Calibration frames come from the training split only and never overlap the scored frames."""

from __future__ import annotations

import json

import pytest
from quant_helpers import write_dataset

from lane_seg.errors import LaneSegError
from lane_seg.training.quant.calibration import check_disjoint, eval_samples, select_calibration


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
    scored = eval_samples(root, "val")
    assert not {s.id for s in scored} & set(calib.ids)
    check_disjoint(calib, scored)  # disjoint: no error
    # the same image content under another id and split is caught too
    dup = write_dataset(tmp_path / "dup", n_train=12, n_val=6)  # same seed: same pixels
    with pytest.raises(LaneSegError, match="also calibration frames"):
        check_disjoint(calib, eval_samples(dup, "val") + select_calibration(dup, 1).samples)
    with pytest.raises(LaneSegError, match="train split"):
        eval_samples(root, "train")


def test_calibration_needs_a_train_split(tmp_path):
    root = write_dataset(tmp_path / "ds", n_train=0, n_val=3)
    with pytest.raises(LaneSegError, match="training split"):
        select_calibration(root, 4)
    with pytest.raises(LaneSegError):
        select_calibration(root, 0)
