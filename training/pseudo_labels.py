"""Pseudo-labels for unlabelled real frames: a trained model's own lane lines, drawn as labels.

Self-training, one of the real-roads remedies (training/README.md, "remedies"): the model runs
on frames nobody labelled (dashcam videos and images), the lane step (`lane_seg.lanes`) fits its
lines, and a frame where both ego lines come out with confidence >= `min_confidence` becomes a
training sample whose mask is the fitted lines (the ego lane's and up to one more on each side)
drawn as the simulator draws its "lines" labels (docs/architecture.md, Label conventions).
Drawing the fitted lines rather than thresholding the probabilities drops what the lane step
rejects (specks, blobs, lettering) and carries each line through the gaps of dashed paint, as
the convention wants; frames the model is unsure of are left out rather than taught wrongly.

Every sample goes to the train split (nothing here is ever scored), each video (and each
rosbag2 folder, read by the caller's `frames_of`: `lane_seg.ros.recorded.glob_frames`) is one
clip, and the dataset's params hold the model file's sha256, so resuming with another model is
refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from itertools import chain
from pathlib import Path

import numpy as np

from lane_seg.data.dataset import DatasetWriter, encode_image, encode_mask, sha256_file
from lane_seg.data.unlabelled import matched_files, unlabelled_frames
from lane_seg.errors import LaneSegError
from lane_seg.lanes.drawing import draw_lines
from lane_seg.lanes.extract import EGO_LEFT, EGO_RIGHT, LaneInstance, nearest_lines
from lane_seg.preprocess import resize_image, uncropped
from lane_seg.runtime.segmenter import Segmenter

BACKEND = "pseudo"  # dataset.json params.backend; its masks follow the "lines" convention
# (glob patterns, video stride) -> (key, clip, RGB) frames: unlabelled_frames, or with bags
# lane_seg.ros.recorded.glob_frames (the application layer passes it in)
FramesOf = Callable[[Sequence[str], int], Iterator[tuple[str, str, np.ndarray]]]


@dataclass(frozen=True)
class PseudoConfig:
    min_confidence: float = 0.5  # both ego lines at least this sure, else the frame is left out
    lines_per_side: int = 2  # the ego line and one more on each side, as CULane labels
    line_width_px: float = 5.0  # at the model's input size: the simulator's "lines" width
    video_stride: int = 1  # every n-th frame of a video


@dataclass
class PseudoReport:
    frames: int = 0
    kept: int = 0
    already: int = 0

    @property
    def left_out(self) -> int:
        return self.frames - self.kept - self.already


def label_lines(lanes: list[LaneInstance], cfg: PseudoConfig) -> list[LaneInstance]:
    """The lines to draw as the label, or [] when the frame should be left out."""
    sure = [lane for lane in lanes if lane.confidence >= cfg.min_confidence]
    if not {EGO_LEFT, EGO_RIGHT} <= {lane.ego for lane in sure}:
        return []
    return nearest_lines(sure, cfg.lines_per_side)


def write_pseudo_labels(
    seg: Segmenter,
    frames: Iterable[tuple[str, str, np.ndarray]],
    w: DatasetWriter,
    cfg: PseudoConfig = PseudoConfig(),  # noqa: B008 (frozen)
) -> PseudoReport:
    """Add to `w` each of `frames` ((key, clip, RGB)) that the model of `seg` is sure of, at
    the model's scale with its lines drawn as the mask; frames already there are skipped."""
    pre = uncropped(seg.info.preprocess)  # whole frames: training cuts `crop_top` itself
    report = PseudoReport()
    for key, clip, rgb in frames:
        report.frames += 1
        sample_id = f"pseudo_{hashlib.sha256(key.encode()).hexdigest()[:16]}"
        if sample_id in w:
            report.already += 1
            continue
        frame = resize_image(rgb, pre)  # the model's scale, the shared preprocessing
        _, lanes = seg.segment_lanes(frame)
        lines = label_lines(lanes, cfg)
        if not lines:
            continue
        mask = draw_lines(frame.shape[:2], [lane.points for lane in lines], cfg.line_width_px)
        w.add(
            sample_id,
            "train",
            f"{BACKEND}:{Path(clip).name}",
            encode_image(frame, ".jpg"),
            encode_mask(mask),
            image_ext=".jpg",
            clip=clip,
            frame_key=key,
            confidence=round(min(lane.confidence for lane in lines), 3),
        )
        report.kept += 1
    return report


def pseudo_label(
    model: str | Path,
    patterns: Sequence[str],
    out: str | Path,
    cfg: PseudoConfig = PseudoConfig(),  # noqa: B008 (frozen)
    engine: str = "auto",
    threads: int = 0,
    frames_of: FramesOf = unlabelled_frames,
) -> PseudoReport:
    """Write the frames the model is sure of, with its lines as labels, into dataset `out`.
    Bad input (no file matched, none readable, a bag without its image topic) is refused
    before `out` is made."""
    seg = Segmenter.load(str(model), engine, threads)
    if seg.info.labels != "lines":
        raise LaneSegError(
            f"{model} predicts {seg.info.labels} labels; pseudo-labels follow the lines "
            "convention, so give a model trained on lane lines"
        )
    if not matched_files(patterns):  # before the output folder is made
        raise LaneSegError(f"{list(patterns)} matched no file")
    frames = frames_of(patterns, cfg.video_stride)  # a bag's topic is checked here
    first = next(frames, None)
    if first is None:
        raise LaneSegError(f"{list(patterns)} matched no readable image, video or rosbag2")
    pre = uncropped(seg.info.preprocess)  # whole frames: training cuts `crop_top` itself
    params = {
        "backend": BACKEND,
        "model_sha256": sha256_file(Path(model)),
        "patterns": list(patterns),
        "size": [pre.width, pre.height],
        **asdict(cfg),
    }
    with DatasetWriter(out, created_by="lane-seg pseudo-label", params=params) as w:
        return write_pseudo_labels(seg, chain([first], frames), w, cfg)
