"""Binary segmentation metrics for lane masks: pure numpy (torch tensors accepted).

Shared by training validation, `lane-seg eval`, quantization reports and the closed loop, so a
number called "lane IoU" means the same thing everywhere:

- predictions are hard masks: lane where sigmoid(logit) > 0.5 (`PROB_THRESHOLD`), i.e.
  logit > 0; no soft IoU, no other thresholds;
- per image we keep the confusion counts (tp, fp, fn, tn over pixels); a dataset score is
  computed from the *summed* counts (micro average, every pixel weighs the same), and the
  per-image mean is reported beside it;
- a ratio whose denominator is zero (e.g. IoU of an image with no lane and no predicted lane)
  is 1.0 when the image has no error at all, else 0.0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from lane_seg.preprocess import PROB_THRESHOLD

METRIC_NAMES = ("lane_iou", "dice", "precision", "recall", "background_iou", "miou", "accuracy")


def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor, without importing torch here
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def logits_to_mask(logits: Any, threshold: float = PROB_THRESHOLD) -> np.ndarray:
    """Logits -> boolean lane mask: sigmoid(logit) > threshold."""
    z = _numpy(logits).astype(np.float64)
    return 1.0 / (1.0 + np.exp(-z)) > threshold


def as_bool_mask(mask: Any) -> np.ndarray:
    """A 0/255 (or 0/1, or bool) mask -> boolean."""
    m = _numpy(mask)
    return m if m.dtype == bool else m > (127 if m.dtype == np.uint8 and m.max() > 1 else 0.5)


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn
        )

    @property
    def errors(self) -> int:
        return self.fp + self.fn

    def _ratio(self, num: int, den: int) -> float:
        if den == 0:
            return 1.0 if self.errors == 0 else 0.0
        return num / den

    def scores(self) -> dict[str, float]:
        lane_iou = self._ratio(self.tp, self.tp + self.fp + self.fn)
        bg_iou = self._ratio(self.tn, self.tn + self.fp + self.fn)
        total = self.tp + self.fp + self.fn + self.tn
        return {
            "lane_iou": lane_iou,
            "dice": self._ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn),
            "precision": self._ratio(self.tp, self.tp + self.fp),
            "recall": self._ratio(self.tp, self.tp + self.fn),
            "background_iou": bg_iou,
            "miou": (lane_iou + bg_iou) / 2,
            "accuracy": (self.tp + self.tn) / total if total else 1.0,
        }

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def confusion(pred: Any, target: Any) -> Counts:
    """Pixel confusion counts of two same-shaped boolean (or 0/255) masks."""
    p, t = as_bool_mask(pred), as_bool_mask(target)
    if p.shape != t.shape:
        raise ValueError(f"prediction shape {p.shape} != target shape {t.shape}")
    tp = int(np.count_nonzero(p & t))
    fp = int(np.count_nonzero(p & ~t))
    fn = int(np.count_nonzero(~p & t))
    return Counts(tp, fp, fn, int(p.size) - tp - fp - fn)


def batch_confusion(logits: Any, target: Any, threshold: float = PROB_THRESHOLD) -> list[Counts]:
    """Per-image counts for a batch: logits [N, 1, H, W] (or [N, H, W]) vs 0/1 targets."""
    pred = logits_to_mask(logits, threshold)
    tgt = as_bool_mask(target)
    return [confusion(p.reshape(-1), t.reshape(-1)) for p, t in zip(pred, tgt, strict=True)]


class MetricAccumulator:
    """Collects per-image counts; `summary()` gives micro scores and per-image means."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.counts: list[Counts] = []

    def add(self, counts: Counts, sample_id: str = "") -> dict[str, float]:
        self.ids.append(sample_id or str(len(self.ids)))
        self.counts.append(counts)
        return counts.scores()

    def total(self) -> Counts:
        out = Counts()
        for c in self.counts:
            out = out + c
        return out

    def summary(self) -> dict[str, Any]:
        per_image = [c.scores() for c in self.counts]
        mean = {
            f"mean_image_{k}": float(np.mean([s[k] for s in per_image])) if per_image else 0.0
            for k in ("lane_iou", "dice", "miou")
        }
        return {"images": len(self.counts), **self.total().scores(), **mean}


TOLERANCE_PX = 8  # the real-frame scoreboard's F1 tolerance, at the label's resolution


@dataclass
class TolerantCounts:
    """Counts for F1 within a distance tolerance, the measure of thin-line masks whose exact
    pixels are a matter of drawing convention: a predicted lane pixel within `tol` px of a
    labelled one is right, a labelled pixel within `tol` px of a predicted one is found."""

    pred: int = 0
    pred_ok: int = 0
    label: int = 0
    label_found: int = 0

    def __add__(self, other: TolerantCounts) -> TolerantCounts:
        return TolerantCounts(
            self.pred + other.pred,
            self.pred_ok + other.pred_ok,
            self.label + other.label,
            self.label_found + other.label_found,
        )

    def scores(self) -> dict[str, float]:
        # An empty prediction is fully precise, an empty label fully recalled.
        p = self.pred_ok / self.pred if self.pred else 1.0
        r = self.label_found / self.label if self.label else 1.0
        return {
            "tol_precision": p,
            "tol_recall": r,
            "tol_f1": 2 * p * r / (p + r) if p + r else 0.0,
        }


def tolerant_counts(pred: Any, target: Any, tol: float = TOLERANCE_PX) -> TolerantCounts:
    """TolerantCounts of two same-shaped masks (Euclidean distance, exact transform)."""
    (counts,) = tolerant_counts_by_band(pred, target, 1, tol)
    return counts


def tolerant_counts_by_band(
    pred: Any, target: Any, bands: int, tol: float = TOLERANCE_PX
) -> list[TolerantCounts]:
    """TolerantCounts of each of `bands` equal horizontal bands of the frame, top to bottom:
    where lines are missed (the far road, the near road, under the bonnet)."""
    p, t = as_bool_mask(pred), as_bool_mask(target)
    if p.shape != t.shape:
        raise ValueError(f"prediction shape {p.shape} != target shape {t.shape}")
    to_label = cv2.distanceTransform((~t).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    to_pred = cv2.distanceTransform((~p).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    per_row = [m.sum(axis=1) for m in (p, p & (to_label <= tol), t, t & (to_pred <= tol))]
    edges = np.linspace(0, p.shape[0], bands + 1).astype(int)
    return [
        TolerantCounts(*(int(r[lo:hi].sum()) for r in per_row))
        for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    ]
