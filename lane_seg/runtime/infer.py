"""Offline inference on files: images, folders of images, videos and rosbag2 topics (opened by
the caller, `lane_seg.ros.recorded`: the runtime layer does not read bags), with a progress bar.

Outputs under OUT (names follow the inputs, so nothing overwrites anything else):
  masks/<name>.png        0/255 mask at the image's resolution   (images)
  overlays/<name>.jpg     the frame with the lane tinted         (images)
  <video stem>_overlay.mp4 (and <stem>_mask.mp4 with mask_video) (videos; a bag: its folder's
                          name, at the rate its metadata gives)
With `lanes`, the lane lines (`lane_seg.lanes.extract`) too, in the benchmarks' formats
(`lane_seg.lanes.formats`), and drawn on the overlays:
  masks/<name>.lines.txt  CULane: one line per lane, x y pairs every 10 rows, bottom up (images)
  masks/tusimple.json     TuSimple: one json line per image (lanes, h_samples, raw_file = the
                          input's path below its folder), at TuSimple's 56 rows scaled to it
  <video stem>_tusimple.json  the same for every frame of a video (raw_file <video>#<frame>)
With `export` ("labelme" or "cvat"), pre-labels for a labelling tool (`prelabels`): every
image, and every `export_every`-th frame of a video, with its lines.
A file that cannot be read is reported and skipped; the others are still processed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from lane_seg.data.dataset import atomic_write, encode_image, encode_mask, read_image
from lane_seg.data.frames import (
    IMAGE_EXTS,
    Recorded,
    Video,
    image_files,
    is_bag,
    is_image,
    is_video,
    not_frames,
    video_info,
)
from lane_seg.errors import LaneSegError
from lane_seg.lanes.extract import LaneInstance
from lane_seg.lanes.formats import culane_lines, tusimple_record, tusimple_rows
from lane_seg.outputs import lock_folder
from lane_seg.runtime.prelabels import PreLabels
from lane_seg.runtime.segmenter import Segmenter, overlay_bgr
from lane_seg.visualize import draw_lanes, overlay


@dataclass
class Job:
    path: Path
    name: str  # output name relative to OUT/masks etc., without extension
    video: bool = False
    recording: Recorded | None = None  # a bag's frames, opened by the caller


@dataclass
class InferOptions:
    masks: bool = True
    overlays: bool = True
    mask_video: bool = False
    lanes: bool = False
    export: str | None = None  # pre-labels: "labelme" or "cvat" (needs lanes)
    export_every: int = 30  # of a video, every n-th frame becomes a pre-label


@dataclass
class InferReport:
    frames: int = 0
    images: int = 0
    videos: int = 0
    seconds: float = 0.0
    inference_ms: list[float] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    tusimple: list[dict] = field(default_factory=list)  # records of the images, with lanes
    prelabels: PreLabels | None = None

    def summary(self) -> str:
        ms = float(np.median(self.inference_ms)) if self.inference_ms else float("nan")
        fps = self.frames / self.seconds if self.seconds > 0 else 0.0
        return (
            f"{self.frames} frames ({self.images} images, {self.videos} videos) in "
            f"{self.seconds:.1f} s ({fps:.1f} frames/s end to end, inference p50 {ms:.1f} ms); "
            f"{len(self.outputs)} files written, {len(self.failures)} failed"
        )


def collect_inputs(inputs: list[str], open_bag: Callable[[Path], Recorded]) -> list[Job]:
    """Expand files and folders into jobs; every path is checked, and every rosbag2 folder
    opened with `open_bag` (its image topic checked), before any work starts."""
    jobs: list[Job] = []
    for raw in inputs:
        path = Path(raw)
        if not path.exists():
            raise LaneSegError(f"{path}: not found")
        if is_bag(path):
            jobs.append(Job(path, path.name, video=True, recording=open_bag(path)))
        elif path.is_dir():
            files = image_files(path)
            if not files:
                raise LaneSegError(f"no images ({', '.join(IMAGE_EXTS)}) in folder {path}")
            jobs += [
                Job(f, str(Path(path.name) / f.relative_to(path).with_suffix(""))) for f in files
            ]
        elif is_image(path):
            jobs.append(Job(path, path.stem))
        elif is_video(path):
            jobs.append(Job(path, path.stem, video=True))
        else:
            raise not_frames(path)
    names = [j.name for j in jobs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise LaneSegError(f"two inputs would write the same outputs: {', '.join(dupes[:5])}")
    return jobs


def _segment(
    seg: Segmenter, rgb: np.ndarray, report: InferReport, lanes: bool
) -> tuple[np.ndarray, list[LaneInstance]]:
    mask, found = seg.segment_lanes(rgb) if lanes else (seg.segment(rgb), [])
    report.inference_ms.append(seg.last.inference_ms)
    report.frames += 1
    return mask, found


def _lanes_record(lanes: list[LaneInstance], raw_file: str, rgb: np.ndarray) -> dict:
    h, w = rgb.shape[:2]
    return tusimple_record(lanes, raw_file, (w, h), h_samples=tusimple_rows(h))


def _json_lines(records: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def _tusimple_records(path: Path) -> list[dict]:
    """The records an earlier run wrote to `path` (none if it is not there); a line that is
    not one is refused, so a merge never drops what it cannot read."""
    if not path.is_file():
        return []
    records = []
    for n, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:  # not JSON, not UTF-8
            record = None
        if not isinstance(record, dict) or not isinstance(record.get("raw_file"), str):
            raise LaneSegError(
                f"{path} line {n} is not a TuSimple record (JSON with raw_file); fix or move "
                "the file: this run adds its images' records to it"
            )
        records.append(record)
    return records


def _image(seg: Segmenter, job: Job, out: Path, opts: InferOptions, report: InferReport) -> None:
    try:
        rgb = read_image(job.path)
    except LaneSegError as exc:
        report.failures.append(str(exc))
        return
    mask, lanes = _segment(seg, rgb, report, opts.lanes)
    report.images += 1
    files = {}
    if opts.masks:
        files[f"masks/{job.name}.png"] = encode_mask(mask)
    if opts.lanes:
        size = (rgb.shape[1], rgb.shape[0])
        files[f"masks/{job.name}.lines.txt"] = culane_lines(lanes, size).encode()
        report.tusimple.append(_lanes_record(lanes, f"{job.name}{job.path.suffix}", rgb))
    if report.prelabels is not None:
        data, size = job.path.read_bytes(), (rgb.shape[1], rgb.shape[0])
        report.outputs += report.prelabels.add(job.name, data, job.path.suffix, size, lanes)
    if opts.overlays:
        files[f"overlays/{job.name}.jpg"] = encode_image(
            draw_lanes(overlay(rgb, mask), lanes), ".jpg"
        )
    for rel, data in files.items():
        dst = out / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(dst, data)
        report.outputs.append(dst)


def video_writer(path: Path, fps: float, size: tuple[int, int], color: bool) -> cv2.VideoWriter:
    path.parent.mkdir(parents=True, exist_ok=True)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size, color)
    if not w.isOpened():
        raise LaneSegError(f"cannot write video {path} (no mp4v encoder in this OpenCV build)")
    return w


def _sequence(job: Job, report: InferReport) -> tuple[Iterator[np.ndarray], float, Video | None]:
    """A video's or a bag's frames, its rate and the opened video (None for a bag); no frames
    (the failure reported) when the video does not open."""
    if job.recording is not None:
        return (f.rgb for f in job.recording.frames), job.recording.fps, None
    try:
        video = Video(job.path)
    except LaneSegError as exc:
        report.failures.append(str(exc))
        return iter(()), 0.0, None
    return (rgb for _, rgb in video.frames()), video.fps, video


def _video(
    seg: Segmenter, job: Job, out: Path, opts: InferOptions, report: InferReport, bar: tqdm
) -> None:
    """A video or a bag -> its overlay (and mask) video, TuSimple json and pre-labels."""
    rgbs, fps, video = _sequence(job, report)
    fps = fps or 30.0
    tmp_over = out / f".{job.name}_overlay.partial.mp4"
    tmp_mask = out / f".{job.name}_mask.partial.mp4"
    over_w = mask_w = None
    frames, broken = 0, ""
    records = []
    try:
        for rgb in rgbs:
            mask, lanes = _segment(seg, rgb, report, opts.lanes)
            size = (rgb.shape[1], rgb.shape[0])
            if over_w is None:
                over_w = video_writer(tmp_over, fps, size, True)
                mask_w = video_writer(tmp_mask, fps, size, False) if opts.mask_video else None
            over_w.write(overlay_bgr(rgb, mask, lanes=lanes))
            if opts.lanes:
                records.append(_lanes_record(lanes, f"{job.path.name}#{frames}", rgb))
            if report.prelabels is not None and frames % opts.export_every == 0:
                name, jpg = f"{job.name}_{frames:06d}", encode_image(rgb, ".jpg")
                report.outputs += report.prelabels.add(name, jpg, ".jpg", size, lanes)
            if mask_w is not None:
                mask_w.write(mask)
            frames += 1
            bar.update(1)
    except LaneSegError as exc:  # a bag that breaks off (lane_seg.ros.bag.iter_images)
        broken = str(exc)
    finally:
        if video is not None:
            video.close()
        for w in (over_w, mask_w):
            if w is not None:
                w.release()
    if frames == 0:
        if video is not None or job.recording is not None:
            report.failures.append(broken or f"{job.path}: no frames could be decoded")
        return
    if broken:  # the outputs below hold the frames that were decoded
        report.failures.append(broken)
    elif video is not None and video.truncated():
        report.failures.append(
            f"{job.path}: decoded {frames} of the {video.declared} frames its header declares "
            "(a truncated or damaged file)"
        )
    report.videos += 1
    _finish_video(job, out, opts, report, records)


def _finish_video(
    job: Job, out: Path, opts: InferOptions, report: InferReport, records: list[dict]
) -> None:
    """The partial videos renamed (complete files only: a killed run leaves no half video
    under the name) and the TuSimple json written."""
    for suffix in ("overlay", "mask"):
        tmp = out / f".{job.name}_{suffix}.partial.mp4"
        if tmp.exists():
            dst = out / f"{job.name}_{suffix}.mp4"
            tmp.replace(dst)
            report.outputs.append(dst)
    if opts.lanes:
        dst = out / f"{job.name}_tusimple.json"
        atomic_write(dst, _json_lines(records))
        report.outputs.append(dst)


def _declared(job: Job) -> int:
    """The frames a job declares, for the progress bar (0: unknown)."""
    if job.recording is not None:
        return job.recording.count
    return video_info(job.path)[1] if job.video else 1


def infer_all(
    seg: Segmenter, jobs: list[Job], out: str | Path, opts: InferOptions | None = None
) -> InferReport:
    opts = opts or InferOptions()
    out = Path(out)
    with lock_folder(out):  # one writer at a time (docs/architecture.md, contract 4)
        return _infer_all(seg, jobs, out, opts)


def _infer_all(seg: Segmenter, jobs: list[Job], out: Path, opts: InferOptions) -> InferReport:
    tusimple = out / "masks" / "tusimple.json"
    earlier = _tusimple_records(tusimple) if opts.lanes else []  # a damaged file: before work
    report = InferReport(prelabels=PreLabels(out, opts.export) if opts.export else None)
    total = sum(_declared(j) for j in jobs)
    t0 = time.perf_counter()
    with tqdm(total=total or None, unit="frame", desc="infer", dynamic_ncols=True) as bar:
        for job in jobs:
            if job.video:
                _video(seg, job, out, opts, report, bar)
            else:
                _image(seg, job, out, opts, report)
                bar.update(1)
    if report.tusimple:
        # Earlier runs' records stay; an image inferred again gets its new record in place.
        merged = {r["raw_file"]: r for r in earlier} | {r["raw_file"]: r for r in report.tusimple}
        tusimple.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(tusimple, _json_lines(list(merged.values())))
        report.outputs.append(tusimple)
    if report.prelabels is not None:
        report.outputs += report.prelabels.finish()
    report.seconds = time.perf_counter() - t0
    return report
