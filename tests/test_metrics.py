"""Metrics: hand-computed confusion counts and scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lane_seg.metrics import (
    Counts,
    MetricAccumulator,
    as_bool_mask,
    batch_confusion,
    confusion,
    logits_to_mask,
)


def test_confusion_and_scores_by_hand():
    target = np.array([[255, 255, 0, 0], [0, 0, 0, 0]], np.uint8)
    pred = np.array([[255, 0, 255, 0], [0, 0, 0, 0]], np.uint8)
    c = confusion(pred, target)
    assert c == Counts(tp=1, fp=1, fn=1, tn=5)
    s = c.scores()
    assert s["lane_iou"] == pytest.approx(1 / 3)
    assert s["dice"] == pytest.approx(2 / 4)
    assert s["precision"] == pytest.approx(1 / 2)
    assert s["recall"] == pytest.approx(1 / 2)
    assert s["background_iou"] == pytest.approx(5 / 7)
    assert s["miou"] == pytest.approx((1 / 3 + 5 / 7) / 2)
    assert s["accuracy"] == pytest.approx(6 / 8)


def test_empty_cases():
    nothing = np.zeros((3, 3), np.uint8)
    assert confusion(nothing, nothing).scores()["lane_iou"] == 1.0  # nothing to find, no error
    missed = confusion(nothing, np.full((3, 3), 255, np.uint8)).scores()
    assert missed["lane_iou"] == 0.0 and missed["precision"] == 0.0 and missed["recall"] == 0.0


def test_threshold_is_probability_half():
    logits = np.array([-0.01, 0.0, 0.01, 3.0])
    assert logits_to_mask(logits).tolist() == [False, False, True, True]  # p > 0.5 strictly


def test_mask_encodings_agree():
    a = np.array([0, 255, 255], np.uint8)
    b = np.array([0, 1, 1], np.uint8)
    c = np.array([0.0, 1.0, 1.0], np.float32)
    for m in (a, b, c, torch.tensor(c), np.array([False, True, True])):
        assert as_bool_mask(m).tolist() == [False, True, True]


def test_batch_and_micro_vs_per_image_mean():
    logits = torch.tensor([[[[5.0, 5.0], [-5.0, -5.0]]], [[[5.0, -5.0], [-5.0, -5.0]]]])
    target = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]], [[[1.0, 1.0], [1.0, 1.0]]]])
    counts = batch_confusion(logits, target)
    assert counts == [Counts(2, 0, 0, 2), Counts(1, 0, 3, 0)]
    acc = MetricAccumulator()
    for c in counts:
        acc.add(c)
    s = acc.summary()
    assert s["images"] == 2
    assert s["lane_iou"] == pytest.approx(3 / 6)  # micro: summed counts
    assert s["mean_image_lane_iou"] == pytest.approx((1.0 + 0.25) / 2)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        confusion(np.zeros((2, 2)), np.zeros((2, 3)))
