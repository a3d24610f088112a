"""Losses: known values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from lane_seg.errors import LaneSegError
from lane_seg.training.train.losses import SegLoss, build_loss, soft_dice_loss


def test_bce_known_value():
    # logit 0 -> p = 0.5 -> BCE = ln 2 whatever the target
    logits = torch.zeros(1, 1, 2, 2)
    target = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    assert build_loss("bce")(logits, target).item() == pytest.approx(math.log(2))
    # logit ln 3 -> p = 0.75: target 1 costs -ln 0.75, target 0 costs -ln 0.25
    logits = torch.full((1, 1, 1, 2), math.log(3.0))
    target = torch.tensor([[[[1.0, 0.0]]]])
    want = (-math.log(0.75) - math.log(0.25)) / 2
    assert build_loss("bce")(logits, target).item() == pytest.approx(want, rel=1e-6)


def test_bce_takes_logits_not_probabilities():
    # a confident correct logit gives ~0 loss; a sigmoid applied first would not
    logits = torch.tensor([[[[20.0, -20.0]]]])
    target = torch.tensor([[[[1.0, 0.0]]]])
    assert build_loss("bce")(logits, target).item() < 1e-8


def test_soft_dice_known_values():
    # p = 0.5 everywhere on 4 pixels, 2 of them lane, smooth 1:
    # 1 - (2 * 1 + 1) / (2 + 2 + 1) = 0.4
    logits = torch.zeros(1, 1, 2, 2)
    target = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    assert soft_dice_loss(logits, target).item() == pytest.approx(0.4)
    # perfect confident prediction -> ~0; all wrong -> ~1 (up to the smoothing term)
    perfect = (target * 2 - 1) * 50
    assert soft_dice_loss(perfect, target).item() == pytest.approx(0.0, abs=1e-6)
    assert soft_dice_loss(-perfect, target).item() == pytest.approx(1 - 1 / 5, abs=1e-6)


def test_dice_on_empty_target_is_defined():
    logits = torch.full((2, 1, 3, 3), -30.0)
    assert soft_dice_loss(logits, torch.zeros(2, 1, 3, 3)).item() == pytest.approx(0.0, abs=1e-6)


def test_bce_dice_is_the_weighted_sum():
    logits = torch.zeros(1, 1, 2, 2)
    target = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    loss = build_loss("bce_dice", bce_weight=0.5, dice_weight=2.0)(logits, target)
    assert loss.item() == pytest.approx(0.5 * math.log(2) + 2.0 * 0.4)
    assert build_loss("bce_dice")(logits, target).item() == pytest.approx(math.log(2) + 0.4)
    assert build_loss("dice")(logits, target).item() == pytest.approx(0.4)


def test_gradients_flow_through_both_terms():
    logits = torch.zeros(1, 1, 2, 2, requires_grad=True)
    SegLoss()(logits, torch.ones(1, 1, 2, 2)).backward()
    assert (logits.grad < 0).all()  # raising every logit lowers the loss


def test_bad_loss_config():
    with pytest.raises(LaneSegError, match="unknown loss"):
        build_loss("focal")
    with pytest.raises(LaneSegError, match="weights"):
        build_loss("bce_dice", bce_weight=0.0, dice_weight=0.0)
