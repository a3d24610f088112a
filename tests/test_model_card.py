"""The model card's sections are read from a run's files: a regression in what they read or how
they compare fp32 with int8 shows up here without running `make model`. The whole card, built
from a made-up run, is checked against the files it names at the end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from lane_seg.errors import LaneSegError
from lane_seg.training.eval import card
from lane_seg.training.eval import card_sections as mc

SHIPPED = Path(__file__).resolve().parents[1] / "models" / "lane_unet_int8.onnx"


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _eval(lane_iou: float) -> dict:
    return {
        "images": 245,
        "lane_iou": lane_iou,
        "dice": 0.85,
        "precision": 0.84,
        "recall": 0.87,
        "miou": 0.87,
        "data": "data/sim",
        "split": "val",
        "threshold": 0.5,
    }


def test_accuracy_reports_the_int8_drop(tmp_path):
    _write(tmp_path / "eval_fp32" / "summary.json", _eval(0.7515))
    _write(tmp_path / "eval_int8" / "summary.json", _eval(0.7415))
    text = "\n".join(mc.accuracy_table(tmp_path))
    assert "| fp32 | 245 | 75.15 |" in text and "| int8 | 245 | 74.15 |" in text
    assert "int8 costs +1.00 lane-IoU points" in text
    (tmp_path / "eval_int8" / "summary.json").unlink()
    with pytest.raises(LaneSegError, match="make model"):
        mc.accuracy_table(tmp_path)


def _source(name, convention, iou, f1, night=None):
    def scores(frames, iou, f1):
        return {"frames": frames, "lane_iou": iou, "tol_f1": f1, "precision": 0.5, "recall": 0.6}

    row = {"source": name, "convention": convention, "licence": "MIT", "left_out_trained": 0}
    row["all"] = scores(10, iou, f1)
    if night is not None:
        row["day"], row["night"] = scores(6, iou, f1), scores(4, *night)
    return row


def test_scoreboard_rows_and_targets_per_source(tmp_path):
    fp32 = [
        _source("culane", "lines", 0.45, 0.80, night=(0.3, 0.6)),
        _source("comma", "paint", 0.2, 0.7),
    ]
    int8 = [
        _source("culane", "lines", 0.44, 0.79, night=(0.3, 0.6)),
        _source("comma", "paint", 0.2, 0.7),
    ]
    board = {"models": {"m/a_fp32.onnx": {"sources": fp32}, "m/a_int8.onnx": {"sources": int8}}}
    _write(tmp_path / "scoreboard" / "scoreboard.json", board)
    rows, f, i = mc.scoreboard_table(tmp_path, Path("a_fp32.onnx"), Path("a_int8.onnx"))
    assert "| culane | lines | MIT | all | 10 | 45.0 / 44.0 | 80.0 / 79.0 |" in rows[2]
    assert [r.split(" | ")[3] for r in rows[2:]] == ["all", "day", "night", "all"]
    text = "\n".join(mc.targets(f, i))
    assert "Met on: culane (F1 79.0, IoU 44.0). Missed on: comma (F1 70.0, IoU 20.0)." in text
    assert "at most +1.00 lane-IoU points (culane)" in text
    with pytest.raises(LaneSegError, match="no rows"):
        mc.scoreboard_table(tmp_path, Path("other.onnx"), Path("a_int8.onnx"))


def test_data_names_every_source_of_the_weights_with_its_licence(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shared = tmp_path / "shared" / "udacity"
    (shared / "clips").mkdir(parents=True)
    (shared / "clips" / "a.jpg").write_bytes(b"x")
    (shared / "SOURCE.txt").write_text(
        "repository: x\nlicense (as stated in the repo): MIT (Udacity).\n"
    )
    stage = {
        "model": {"name": "unet"},
        "data": {"sources": [{"root": "d", "weight": 1.0}, "hood", "real"]},
        "augment": {"style": 0.5, "style_frames": ["shared/udacity/**/*.jpg"]},
    }
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(stage))
    counts = {"train": 9, "val": 1, "test": 0}
    config = {"width": 512, "height": 256, "label": "lines"}
    for root, made_by, seed in (
        ("d", "collect", 13),
        ("hood", "collect", 17),
        ("real", "import", 0),
    ):
        made = {"counts": counts, "created_by": f"lane-seg {made_by}"}
        _write(
            tmp_path / root / "dataset.json", {**made, "params": {"seed": seed, "config": config}}
        )
    stages = mc.load_stages([Path("s.yaml")])
    text = "\n".join(mc.data_sources(Path("d"), stages, {}))
    assert "10 frames of the built-in simulator" in text and "labels `lines`" in text
    # Every simulator data set of the stages is a source; imported real frames are named by
    # the model's metadata instead (below).
    assert "| `hood` (this project's simulator: `lane-seg collect`, seed 17) |" in text
    assert "`real`" not in text
    assert (
        "| `shared/udacity` | unlabelled: colour and light only" in text
        and "MIT (Udacity)." in text
    )
    assert "No labelled real frame was trained on" in text
    text = "\n".join(mc.data_sources(Path("d"), stages, {"culane_driver23": ["a", "b"]}))
    assert (
        "| culane_driver23 (2 frames) | labelled training frames | CULane: non-commercial" in text
    )


def test_training_stage_rows_come_from_config_and_epochs_csv(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = {
        "model": {"name": "unet"},
        "train": {"out": "runs/s1", "batch_size": 4, "init_from": "runs/s0/best.pt"},
        "data": {"sources": ["d"], "height": 256, "width": 512, "val_limit": 96},
        "optim": {"lr": 0.001},
    }
    (tmp_path / "s1.yaml").write_text(yaml.safe_dump(cfg))
    (tmp_path / "runs" / "s1").mkdir(parents=True)
    (tmp_path / "runs" / "s1" / "epochs.csv").write_text(
        "epoch,step,val_lane_iou,elapsed_s\n1,200,0.74,60\n2,400,0.76,120\n3,600,0.75,180\n"
    )
    row = mc.training_table(mc.load_stages([tmp_path / "s1.yaml"]))[-1]
    assert "| 600 | 4 x whole 256x512 frames | 0.001 | 3.0 | 0.7600 (96 frames) |" in row
    assert "`runs/s0/best.pt`" in row


def test_choice_names_the_configs_within_the_speed_target_and_ranks_by_real_f1(tmp_path):
    def entry(model, config, ort, ov):
        timing = {"int8_onnxruntime-cpu_ms_p50": ort, "int8_openvino_ms_p50": ov}
        return {"model": model, "config": config, "params": 2e6, "gmacs": 2.6, **timing}

    models = [entry("unet", "d5.yaml", 36.0, 13.6), entry("segformer", "sf.yaml", 54.0, 53.7)]
    _write(
        tmp_path / "selection.json",
        {"size": [512, 256], "threads": 2, "runs": 40, "models": models},
    )
    text = mc.choice(tmp_path, "d5.yaml", None, None)
    assert "on at least one engine here: d5.yaml." in text and "sf.yaml" not in text
    assert "make tradeoff" in text  # no accuracy claim without the trade-off's files
    assert "2 thread(s), median of 40 runs" in "\n".join(mc.selection_table(tmp_path))

    def row(config, f1s):
        return {
            "config": f"cfg/{config}",
            "real": {f"s{i}": {"tol_f1": f} for i, f in enumerate(f1s)},
        }

    _write(tmp_path / "t.json", [row("d4.yaml", [0.6, 0.7]), row("d5.yaml", [0.7, 0.8])])
    text = mc.choice(tmp_path, "d5.yaml", tmp_path / "t.json", None)
    assert "`d5.yaml` 75.0 %, `d4.yaml` 65.0 %. The default is `d5.yaml`." in text
    _write(tmp_path / "c.json", [row("enet.yaml", [0.8, 0.6]), row("full.yaml", [0.9, 0.7])])
    text = mc.choice(tmp_path, "full.yaml", tmp_path / "t.json", tmp_path / "c.json")
    assert "first two stages (`make candidates`): `full.yaml` 80.0 %, `enet.yaml` 70.0 %." in text


def test_limitations_come_from_the_scoreboard_the_drives_and_the_bench(tmp_path):
    drives = {"highway": {"mask_iou_mean": 0.81}, "night": {"mask_iou_mean": 0.62}}
    _write(tmp_path / "sim_int8" / "summary.json", drives)
    rows = {
        "culane": _source("culane", "lines", 0.4, 0.8),
        "comma": _source("comma", "paint", 0.2, 0.6),
    }
    text = "\n".join(mc.limitations(tmp_path, {"model": {"params": 2_164_881}}, rows))
    assert "its weakest labelled source is comma (paint labels; F1 within 8 px 60.0 %" in text
    assert "- comma labels paint, not lane lines" in text
    assert "- night is its hardest simulated condition" in text and "(62.0 %)" in text
    assert "(2.16 M parameters)" in text


def test_closed_loop_rows_per_scenario_and_perception(tmp_path):
    def summary(err: float, iou: float | None) -> dict:
        return {
            "road": {
                "distance_m": 1600.0,
                "completed": True,
                "mean_abs_lateral_error_m": err,
                "max_abs_lateral_error_m": 2 * err,
                "lane_departures_per_km": 0.0,
                "mask_iou_mean": iou,
            }
        }

    _write(tmp_path / "sim_groundtruth" / "summary.json", summary(0.01, None))
    _write(tmp_path / "sim_fp32" / "summary.json", summary(0.02, 0.8))
    _write(tmp_path / "sim_int8" / "summary.json", summary(0.03, 0.79))
    rows = mc.closed_loop_table(tmp_path)[2:]
    assert [r.split(" | ")[1] for r in rows] == ["groundtruth", "fp32", "int8"]
    assert rows[0].endswith("| - |") and rows[2].endswith("| 79.0 |")
    assert "| 0.030 | 0.060 |" in rows[2]


def test_stage_configs_are_read_by_the_one_config_loader(tmp_path):
    """A typo in a stage's config is refused with the file's name, as `lane-seg train` does."""
    stage = {"model": {"name": "unet"}, "data": {"sources": ["d"]}, "train": {"batch_sise": 4}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(stage))
    with pytest.raises(LaneSegError, match=r"s\.yaml.*batch_sise"):
        mc.load_stages([tmp_path / "s.yaml"])


def _run(tmp_path: Path) -> card.CardInputs:
    """A whole `make model` run's files, made up, around the shipped int8 file."""
    int8, fp32 = tmp_path / "m_int8.onnx", tmp_path / "m_fp32.onnx"
    int8.write_bytes(SHIPPED.read_bytes())
    fp32.write_bytes(SHIPPED.read_bytes())
    made = {"counts": {"train": 9, "val": 1, "test": 0}, "created_by": "lane-seg collect"}
    config = {"width": 512, "height": 256, "label": "lines"}
    _write(tmp_path / "d" / "dataset.json", {**made, "params": {"seed": 13, "config": config}})
    stage = {
        "model": {"name": "unet"},
        "data": {"sources": [str(tmp_path / "d")]},
        "train": {"out": str(tmp_path / "s1"), "batch_size": 4},
    }
    (tmp_path / "s1.yaml").write_text(yaml.safe_dump(stage))
    (tmp_path / "s1" / "epochs.csv").parent.mkdir()
    (tmp_path / "s1" / "epochs.csv").write_text("epoch,step,val_lane_iou,elapsed_s\n1,90,0.7,60\n")
    run = tmp_path / "run"
    for p in ("fp32", "int8"):
        _write(run / f"eval_{p}" / "summary.json", _eval(0.75))
    rows = [_source("culane", "lines", 0.44, 0.79)]
    models = {str(f): {"sources": rows} for f in (fp32, int8)}
    _write(run / "scoreboard" / "scoreboard.json", {"models": models})
    _write(run / "bench" / "bench.json", {"command": "lane-seg bench", "model": {"params": 2e6}})
    (run / "bench" / "bench.md").write_text("| engine | p50 ms |\n|---|---|\n| ort int8 | 9.9 |\n")
    timing = {"int8_onnxruntime-cpu_ms_p50": 9.9}
    model = {"model": "unet", "config": "s1.yaml", "params": 2e6, "gmacs": 2.6, **timing}
    _write(run / "selection.json", {"size": [512, 256], "threads": 2, "runs": 9, "models": [model]})
    drive = {"distance_m": 900.0, "completed": True, "mean_abs_lateral_error_m": 0.1}
    drive |= {"max_abs_lateral_error_m": 0.2, "lane_departures_per_km": 0.0}
    for p, iou in (("groundtruth", None), ("fp32", 0.8), ("int8", 0.7)):
        _write(run / f"sim_{p}" / "summary.json", {"road": {**drive, "mask_iou_mean": iou}})
    return card.CardInputs(fp32, int8, tmp_path / "d", [tmp_path / "s1.yaml"], run)


def test_the_whole_card_from_a_run(tmp_path):
    inputs = _run(tmp_path)
    out = tmp_path / "README.md"
    card.write_card(inputs, out)
    text = out.read_text()
    assert text.startswith("# lane_seg default model: unet (")
    # The bench's table as `lane-seg bench` wrote it, under its heading.
    assert "## Speed: `lane-seg bench`\n\n`lane-seg bench`\n\n| engine | p50 ms |\n" in text
    assert f"| 1 | `{tmp_path / 's1.yaml'}` | `scratch` | 90 | 4 x whole 256x512 frames |" in text
    assert "| culane | lines | MIT | all | 10 | 44.0 / 44.0 |" in text
    assert "| road | int8 | 900 | yes | 0.100 | 0.200 | 0.00 | 70.0 |" in text
    assert "meets the 15 ms target on at least one engine here: s1.yaml." in text
    # The adaptation rungs' table, written into the card by studies/adapt_rungs.py, stays when
    # the card is written again; an empty section stays empty.
    start, end = card.section_markers(card.ADAPT_RUNGS)
    assert f"{start}\n{end}" in text
    measured = text.replace(f"{start}\n{end}", f"{start}\n| rung | F1 |\n| none | 0.5 |\n{end}")
    start, end = card.section_markers(card.FINETUNE_CURVE)  # the labelled-frames curve's too
    assert f"{start}\n{end}" in measured
    measured = measured.replace(f"{start}\n{end}", f"{start}\n| N | F1 |\n| 20 | 0.8 |\n{end}")
    out.write_text(measured)
    card.write_card(inputs, out)
    assert out.read_text() == measured
    out.write_text(text)
    # A file the run should have written is named, and the card already there stays as it was.
    (inputs.run / "bench" / "bench.md").unlink()
    with pytest.raises(LaneSegError, match=r"bench\.md is missing; run `make model`"):
        card.write_card(inputs, out)
    assert out.read_text() == text
