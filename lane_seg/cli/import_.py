"""`lane-seg import`: a real lane dataset (TuSimple, CULane, image+mask) or lane lines drawn in
labelme or CVAT, in the dataset format."""

from __future__ import annotations

import argparse
import re
import sys

from lane_seg.cli.common import add_command
from lane_seg.errors import LaneSegError
from lane_seg.outputs import output_dir
from lane_seg.sizes import parse_size

FORMATS = ("tusimple", "culane", "masks", "labelme", "cvat", "real")


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "import",
        "Import a TuSimple, CULane or image+mask dataset (lanes drawn at the benchmark's "
        "width), or lane lines drawn in labelme (linestrip/line shapes) or CVAT for images 1.1 "
        "(polylines), drawn in the lines convention; split by clip; re-run to resume.",
        "lane-seg import --format tusimple ~/data/tusimple/train_set --out data/tusimple "
        "--size 512x256",
    )
    p.add_argument(
        "src",
        help="dataset root folder or .zip (tusimple: also one .json file; masks: the image "
        "folder; labelme: the folder of .json files beside their images; cvat: annotations.xml "
        "or the folder of CVAT's export; real: the shared data root, e.g. ../shared/data)",
    )
    p.add_argument("--format", required=True, choices=FORMATS, help="label format of SRC")
    p.add_argument("--out", required=True, help="output dataset folder (resumed if it exists)")
    p.add_argument("--masks", help="masks format: folder of binary masks, paired by file stem")
    p.add_argument(
        "--source",
        help="real format: one of data.real_sources (culane_driver23, comma10k_sample, ...), "
        "imported by its own labels, split by its clips into train and test",
    )
    p.add_argument(
        "--list",
        dest="list_file",
        help="culane: list file (e.g. list/train_gt.txt), on disk or inside SRC; "
        "default: every image with a .lines.txt beside it",
    )
    p.add_argument(
        "--clip-pattern",
        help="masks, labelme, cvat: regex whose first group, matched on the image path, "
        "names its clip (default: the image's folder)",
    )
    p.add_argument(
        "--size",
        help="resize to WIDTHxHEIGHT, e.g. 512x256, each side 8..8192 (default: keep the "
        "source size)",
    )
    p.add_argument(
        "--resize",
        choices=("stretch", "letterbox"),
        default="stretch",
        help="how --size fits the frame (lane_seg.preprocess; default stretch)",
    )
    p.add_argument(
        "--crop",
        help="crop X,Y,W,H in source pixels before resizing "
        "(W/H <= 0 count back from the far edge: 0,160,0,0 drops the top 160 rows)",
    )
    p.add_argument(
        "--line-width",
        type=float,
        help="line width in px at the benchmark's resolution (default 10 at 1280x720 for "
        "tusimple, 16 at 1640x590 for culane, 5 at 512x256 for labelme and cvat)",
    )
    p.add_argument(
        "--split",
        default="0.8,0.1,0.1",
        help="train,val,test shares of frames, assigned by whole clips "
        "(default 0.8,0.1,0.1; 1,0,0 puts everything in train)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the clip order for the split")
    p.add_argument("--prefix", default="", help="prefix for sample ids (to merge datasets)")
    p.add_argument(
        "--image-format",
        choices=("keep", "png", "jpg"),
        default="keep",
        help="keep: copy the source file as is when not resized (default)",
    )
    p.add_argument(
        "--mask-threshold",
        type=int,
        default=127,
        help="masks format: pixels above this are lane (0 for label-index masks)",
    )
    p.add_argument(
        "--mask-color",
        help="masks format, class masks: this R,G,B colour is lane (comma10k: 255,0,0)",
    )
    p.add_argument(
        "--margin",
        type=float,
        default=0.1,
        help="label points may lie this fraction of the image size outside it",
    )
    p.add_argument("--workers", type=int, default=2, help="decode/encode threads (default 2)")
    p.add_argument("--limit", type=int, help="import at most this many frames")
    p.add_argument("--max-problems", type=int, default=20, help="problems to print")
    p.add_argument("--preview", action="store_true", help="also write OUT/preview.png")
    p.set_defaults(func=run)


def _settings(args: argparse.Namespace):
    from lane_seg.data.importers import LINE_WIDTHS, LINES_FORMATS, Settings
    from lane_seg.data.importers.common import Crop, parse_fractions
    from lane_seg.preprocess import PreprocessConfig

    try:
        crop = Crop.parse(args.crop) if args.crop else None
        fractions = parse_fractions(args.split)
    except ValueError as exc:
        raise LaneSegError(str(exc)) from None
    size = None
    if args.size:
        width, height = parse_size(args.size, "--size", minimum=8)
        size = PreprocessConfig(height=height, width=width, resize=args.resize)
    ref_size, ref_width = LINE_WIDTHS.get(args.format, (None, None))
    if args.line_width is not None:
        if args.format == "masks":
            raise LaneSegError("--line-width applies to formats with lines, not to masks")
        if args.line_width <= 0:
            raise LaneSegError("--line-width must be positive")
        ref_width = args.line_width
    if not 0 <= args.mask_threshold <= 254:
        raise LaneSegError("--mask-threshold must be 0..254")
    mask_color = None
    if args.mask_color:
        m = re.fullmatch(r"(\d+),(\d+),(\d+)", args.mask_color.strip())
        if not m or max(int(v) for v in m.groups()) > 255 or args.format != "masks":
            raise LaneSegError(
                f"--mask-color needs --format masks and R,G,B in 0..255; got {args.mask_color}"
            )
        mask_color = tuple(int(v) for v in m.groups())
    if args.limit is not None and args.limit < 1:
        raise LaneSegError("--limit must be at least 1")
    if args.workers < 1 or args.margin < 0:
        raise LaneSegError("--workers must be at least 1 and --margin >= 0")
    if args.clip_pattern:
        try:
            re.compile(args.clip_pattern)
        except re.error as exc:
            raise LaneSegError(f"--clip-pattern is not a valid regex: {exc}") from None
    return Settings(
        format=args.format,
        ref_size=ref_size,
        ref_line_width=ref_width,
        margin=args.margin,
        crop=crop,
        size=size,
        fractions=fractions,
        seed=args.seed,
        prefix=args.prefix,
        image_format=args.image_format,
        mask_threshold=args.mask_threshold,
        mask_color=mask_color,
        lines=args.format in LINES_FORMATS,
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lane_seg.data.importers import open_frames, run_import
    from lane_seg.data.importers.runner import REPORT_NAME

    settings = _settings(args)
    if args.format == "real":
        _check_real_source(args.source)
    output_dir(args.out)
    if args.format == "real":
        return _import_real(args, settings.size)
    frames, images, masks = open_frames(
        args.format, args.src, args.masks, args.list_file, args.clip_pattern
    )
    report = run_import(
        frames,
        images,
        args.out,
        settings,
        masks=masks,
        workers=args.workers,
        progress=sys.stderr.isatty(),
        limit=args.limit,
    )
    _check_report(report, args)
    splits = ", ".join(f"{k} {v}" for k, v in sorted(report.splits.items())) or "none new"
    print(
        f"{args.out}: wrote {report.written} samples ({splits}) from {report.clips} clips in "
        f"{report.seconds:.1f} s ({report.samples_per_s:.1f} samples/s); "
        f"{report.skipped_existing} already there; {len(report.problems)} skipped as malformed; "
        f"report in {Path(args.out) / REPORT_NAME}"
    )
    if args.preview:
        from lane_seg.sim.world.collect import write_preview

        print(f"preview: {write_preview(args.out)}")
    return 0


def _check_report(report, args: argparse.Namespace) -> None:  # noqa: ANN001 (ImportReport)
    """The frames skipped as malformed, each on its own line of stderr (--max-problems of
    them); an error when no frame is usable."""
    for problem in report.problems[: args.max_problems]:
        print(f"skipped {problem}", file=sys.stderr)
    if len(report.problems) > args.max_problems:
        print(f"... and {len(report.problems) - args.max_problems} more", file=sys.stderr)
    if report.written == 0 and report.skipped_existing == 0:
        what = args.source if args.format == "real" else args.format
        raise LaneSegError(
            f"no usable {what} frames in {args.src} ({len(report.problems)} skipped); "
            "check the path and --format"
        )


def _check_real_source(name: str | None) -> None:
    from lane_seg.data import real_sources

    if name not in real_sources.SOURCES:
        raise LaneSegError(
            f"--format real needs --source NAME, one of {', '.join(real_sources.SOURCES)}"
        )


def _import_real(args: argparse.Namespace, size) -> int:
    from pathlib import Path

    from lane_seg.data.importers.real import import_real
    from lane_seg.preprocess import PreprocessConfig

    report = import_real(args.source, Path(args.src), Path(args.out), size or PreprocessConfig())
    _check_report(report, args)
    print(
        f"{args.out}: wrote {report.written} frames of {args.source} (train and test by clip); "
        f"{report.skipped_existing} already there; {len(report.problems)} skipped as malformed"
    )
    return 0
