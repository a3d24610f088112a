"""`lane-seg sim`: closed-loop lane keeping, the car steered by lane geometry from a mask.

The mask comes from the simulator itself ("groundtruth": the exact mask through the same lane
geometry) or from a model ("fp32", "int8", "w4a8": an ONNX file through the runtime engine), so
the same roads and seeds show what quantization costs in driving, not only in IoU.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lane_seg import resources
from lane_seg.cli.carla_options import add_server_arguments, servers_from_args
from lane_seg.cli.common import add_command
from lane_seg.errors import LaneSegError
from lane_seg.outputs import lock_folder
from lane_seg.sim.carla.options import DriveConfig

PERCEPTIONS = ("groundtruth", "fp32", "int8", "w4a8")


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "sim",
        "Closed-loop lane keeping: drive the simulator's car (or a CARLA vehicle) from the "
        "camera, through segmentation and lane geometry, and write metrics, a video and a "
        "top-down plot.",
        "lane-seg sim --perception int8 --model runs/q/int8.onnx --scenario tight_curves",
    )
    p.add_argument(
        "--perception",
        choices=PERCEPTIONS,
        default="groundtruth",
        help="groundtruth = the simulator's exact mask; fp32/int8/w4a8 = --model (its "
        "precision metadata must match)",
    )
    p.add_argument(
        "--model",
        help="ONNX model (or .pt checkpoint) for model perception; auto (the default for "
        "--perception int8): the most accurate shipped int8 model that meets "
        "--latency-budget-ms here",
    )
    p.add_argument(
        "--latency-budget-ms",
        type=float,
        default=0.0,
        help="--model auto's budget per frame; 0 (default): the scenarios' camera period (the "
        "highest frame rate among them), or 33 ms on CARLA",
    )
    p.add_argument(
        "--scenario",
        nargs="+",
        default=["all"],
        help="scenario YAML files or standard names (gentle_highway, tight_curves, night, rain); "
        "'all' = every standard one (default)",
    )
    p.add_argument(
        "--controller",
        help="controller YAML (default: the package's config/controller.yaml)",
    )
    p.add_argument(
        "--actuation-delay-ms",
        type=float,
        help="frame-to-wheels delay to simulate (overrides the controller YAML), e.g. a model's "
        "measured latency; the simulation itself always waits for perception",
    )
    p.add_argument(
        "--distance",
        type=float,
        help="drive at most this many metres of each world (default: the scenario's distance)",
    )
    p.add_argument("--out", help="output directory (default runs/sim/<perception>)")
    p.add_argument("--engine", default="auto", help="inference engine (default auto)")
    p.add_argument("--threads", type=int, default=0, help="inference threads (0 = default)")
    p.add_argument("--no-video", action="store_true", help="skip the overlay video")
    p.add_argument(
        "--backend",
        choices=("planar", "carla"),
        default="planar",
        help="planar = the built-in simulator; carla = a running CARLA server",
    )
    p.add_argument(
        "--ros",
        action="store_true",
        help="run the loop over ROS 2 topics: simulator -> seg_node (lane centre) -> "
        "lane_controller -> simulator (needs --model; DDS discovery as your environment sets it)",
    )
    g = p.add_argument_group("CARLA (--backend carla)")
    add_server_arguments(g, several=False)
    g.add_argument("--town", default=None, help="CARLA map to load (default: the current one)")
    g.add_argument("--seconds", type=float, default=60.0, help="CARLA drive length")
    p.set_defaults(func=run)


def load_perception(
    kind: str,
    model: str | None,
    engine: str = "auto",
    threads: int = 0,
    budget_ms: float | None = None,
):
    """The perception callable for `kind`, checking the model's precision matches it; for int8
    without a model (or `auto`), the shipped model that meets `budget_ms` here."""
    from lane_seg.runtime.model_pick import is_auto, latency_budget, load_model
    from lane_seg.sim.loop.closed_loop import GroundTruthPerception, ModelPerception

    if kind == "groundtruth":
        if model:
            raise LaneSegError("--model is for fp32/int8/w4a8 perception; drop it or pick one")
        return GroundTruthPerception()
    if is_auto(model) and kind != "int8":
        raise LaneSegError(
            f"--perception {kind} needs --model PATH (an .onnx file); the shipped models that "
            "--model auto picks from are int8"
        )
    from lane_seg.runtime.segmenter import Segmenter

    eng, pick = load_model(model, engine, threads, budget_ms or latency_budget())
    if pick is not None:
        print(pick.describe())
        if pick.warning():
            print(f"warning: {pick.warning()}", file=sys.stderr)
    seg = Segmenter(eng)
    model = str(eng.path)
    precision = seg.info.precision.lower()
    if not precision.startswith(kind):
        raise LaneSegError(
            f"--perception {kind} but {model} is a {seg.info.precision} model (ONNX metadata "
            f"'precision'); use --perception {precision.split('-')[0]} or another model"
        )
    return ModelPerception(seg, kind)


def _scenarios(names: list[str], distance_m: float | None = None):
    import dataclasses

    from lane_seg.sim.loop.scenarios import Scenario, standard_scenarios

    if distance_m is not None and distance_m <= 0:
        raise LaneSegError("--distance must be positive")
    if names == ["all"]:
        names = standard_scenarios()
    scenarios = [Scenario.load(n) for n in names]
    if distance_m is None:
        return scenarios
    return [dataclasses.replace(s, distance_m=min(s.distance_m, distance_m)) for s in scenarios]


def _row(name: str, s: dict) -> str:
    lat = s["perception_latency_ms"]
    return (
        f"| {name} | {s['distance_m']:.0f} | {s['mean_abs_lateral_error_m']:.3f} | "
        f"{s['max_abs_lateral_error_m']:.3f} | {s['lane_departures_per_km']:.2f} | "
        f"{s['steer_rate_mean_abs_dps']:.2f} | {lat['p50']:.1f} / {lat['p95']:.1f} | "
        f"{'yes' if s['completed'] else 'no'} |"
    )


TABLE_HEAD = (
    "| scenario | distance m | mean abs err m | max abs err m | departures/km | "
    "steer rate deg/s | perception ms p50/p95 | completed |\n"
    "|---|---|---|---|---|---|---|---|"
)


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import json

    from tqdm import tqdm

    from lane_seg.lanes.control import ControllerConfig
    from lane_seg.runtime.model_pick import latency_budget

    ctrl = ControllerConfig.from_yaml(args.controller or resources.config_file("controller.yaml"))
    if args.actuation_delay_ms is not None:
        if args.actuation_delay_ms < 0:
            raise LaneSegError("--actuation-delay-ms must be >= 0")
        ctrl = dataclasses.replace(ctrl, actuation_delay_s=args.actuation_delay_ms / 1000.0)
    out = Path(args.out or f"runs/sim/{args.perception}")
    lock_folder(out)  # checked, and this command's alone until it returns (lane_seg.outputs)
    scenarios = [] if args.backend == "carla" else _scenarios(args.scenario, args.distance)
    camera_fps = max((sc.fps for sc in scenarios), default=0.0)
    budget = latency_budget(args.latency_budget_ms, camera_fps)
    perception = load_perception(args.perception, args.model, args.engine, args.threads, budget)
    if args.perception != "groundtruth":
        args.model = str(perception.segmenter.engine.path)  # the file auto picked, or given
    if args.backend == "carla":
        from lane_seg.sim.carla.loop import run_carla

        if args.seconds <= 0:
            raise LaneSegError(f"--seconds must be positive, got {args.seconds}")
        at = servers_from_args(args, several=False)
        report = run_carla(at, DriveConfig(args.town, args.seconds), perception, ctrl, out)
        s = report["summary"]
        print(TABLE_HEAD)
        print(_row("carla", s))
        print(f"metrics: {out / 'metrics.json'}")
        return 0
    from lane_seg.sim.loop.closed_loop import run_scenario
    from lane_seg.sim.loop.metrics import json_clean

    if args.ros:
        return _run_ros(args, scenarios, ctrl, out)
    total = sum(int(sc.distance_m / sc.speed_mps * sc.fps) * len(sc.seeds) for sc in scenarios)
    extra = {"model": args.model}
    rows, reports = [], {}
    with tqdm(total=total, unit="frame", desc=f"sim {args.perception}") as bar:
        for sc in scenarios:
            report = run_scenario(
                sc, perception, ctrl, out / sc.name, None, not args.no_video, bar.update, extra
            )
            reports[sc.name] = report["summary"]
            rows.append(_row(sc.name, report["summary"]))
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(json_clean(reports), indent=2))
    table = "\n".join([TABLE_HEAD, *rows])
    (out / "summary.md").write_text(
        f"perception: {args.perception}"
        + (f" ({args.model}, {perception.engine})" if args.model else "")
        + f"\n\n{table}\n"
    )
    print(table)
    print(f"metrics, videos and plots: {out}/<scenario>/; table: {out / 'summary.md'}")
    return 0


def _run_ros(args: argparse.Namespace, scenarios: list, ctrl, out: Path) -> int:
    import json

    from lane_seg.sim.loop.metrics import aggregate, json_clean

    if args.perception == "groundtruth" or not args.model:
        raise LaneSegError("--ros runs the real segmentation node: give --perception and --model")
    from lane_seg.sim.loop.ros_loop import run_ros_loop

    rows = []
    for sc in scenarios:
        worlds = [
            run_ros_loop(sc, seed, args.model, ctrl, args.engine, args.threads) for seed in sc.seeds
        ]
        summary = aggregate(worlds)
        report = {"scenario": sc.name, "transport": "ros2", "model": args.model,
                  "summary": summary, "worlds": worlds}  # fmt: skip
        (out / sc.name).mkdir(parents=True, exist_ok=True)
        (out / sc.name / "metrics_ros.json").write_text(json.dumps(json_clean(report), indent=2))
        rows.append(_row(sc.name, summary))
    print("\n".join([TABLE_HEAD, *rows]))
    print(f"metrics: {out}/<scenario>/metrics_ros.json")
    return 0
