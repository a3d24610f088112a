"""The model card's sections are read from a run's files: a regression in what they read or how
they compare fp32 with int8 shows up here without running `make model`."""

from __future__ import annotations

import json

import pytest
import yaml

from lane_seg.cli import model_card as mc
from lane_seg.errors import LaneSegError


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


def test_accuracy_reports_the_int8_drop_and_skips_absent_real_frames(tmp_path):
    _write(tmp_path / "eval_fp32" / "summary.json", _eval(0.7515))
    _write(tmp_path / "eval_int8" / "summary.json", _eval(0.7415))
    text = "\n".join(mc._accuracy(tmp_path))
    assert "| fp32 | 245 | 75.15 |" in text and "| int8 | 245 | 74.15 |" in text
    assert "int8 costs +1.00 lane-IoU points" in text
    assert "Real TuSimple" not in text  # no eval_*_real: the section is left out
    (tmp_path / "eval_int8" / "summary.json").unlink()
    with pytest.raises(LaneSegError, match="make model"):
        mc._accuracy(tmp_path)


def test_training_stage_rows_come_from_config_and_epochs_csv(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = {
        "train": {"out": "runs/s1", "batch_size": 4, "init_from": "runs/s0/best.pt"},
        "data": {"height": 256, "width": 512, "val_limit": 96},
        "optim": {"lr": 0.001},
    }
    (tmp_path / "s1.yaml").write_text(yaml.safe_dump(cfg))
    (tmp_path / "runs" / "s1").mkdir(parents=True)
    (tmp_path / "runs" / "s1" / "epochs.csv").write_text(
        "epoch,step,val_lane_iou,elapsed_s\n1,200,0.74,60\n2,400,0.76,120\n3,600,0.75,180\n"
    )
    row = mc._training([tmp_path / "s1.yaml"])[-1]
    assert "| 600 | 4 x whole 256x512 frames | 0.001 | 3.0 | 0.7600 (96 frames) |" in row
    assert "`runs/s0/best.pt`" in row


def test_choice_names_only_architectures_within_the_speed_target(tmp_path):
    models = [
        {"model": "unet", "int8_onnxruntime-cpu_ms_p50": 36.0, "int8_openvino_ms_p50": 13.6},
        {"model": "segformer", "int8_onnxruntime-cpu_ms_p50": 54.0, "int8_openvino_ms_p50": 53.7},
    ]
    _write(
        tmp_path / "selection.json",
        {"size": [256, 512], "threads": 1, "runs": 40, "models": models},
    )
    text = mc._choice(tmp_path, "unet", None)
    assert "on at least one engine here: unet." in text and "segformer" not in text
    assert "make baselines" in text  # no accuracy claim without the baselines' files
    assert "1 thread(s), median of 40 runs" in mc._sweep(tmp_path)


def test_choice_ranks_the_fast_architectures_by_their_baseline_accuracy(tmp_path):
    models = [
        {"model": m, "int8_onnxruntime-cpu_ms_p50": ms}
        for m, ms in (("unet", 12.0), ("enet", 9.0), ("segformer", 50.0))
    ]
    _write(tmp_path / "selection.json", {"models": models})

    def row(arch, iou, init=""):
        return {"arch": arch, "config": f"{arch}.yaml", "init_from": init, "val": {"lane_iou": iou}}

    rows = [row("unet", 0.70), row("unet", 0.75, "runs/unet/best.pt"), row("enet", 0.59)]
    rows.append(row("segformer", 0.9))  # the most accurate, but too slow: not in the ranking
    _write(tmp_path / "baselines.json", rows)
    text = mc._choice(tmp_path, "unet", tmp_path / "baselines.json")
    assert "unet 70.0 % (`unet.yaml`), enet 59.0 % (`enet.yaml`)." in text  # from scratch only
    assert text.endswith("The default, unet, is the most accurate of them.")
    assert "not the most accurate" in mc._choice(tmp_path, "enet", tmp_path / "baselines.json")


def test_limitations_come_from_the_drives_and_the_bench(tmp_path):
    drives = {"highway": {"mask_iou_mean": 0.81}, "night": {"mask_iou_mean": 0.62}}
    drives["rain"] = {"mask_iou_mean": 0.7}
    _write(tmp_path / "sim_int8" / "summary.json", drives)
    text = "\n".join(mc._limitations(tmp_path, {"model": {"params": 541_073}}))
    assert "- night is its hardest condition" in text and "(62.0 %)" in text
    assert "(0.54 M parameters" in text
    drives["rain"]["mask_iou_mean"] = 0.5
    _write(tmp_path / "sim_int8" / "summary.json", drives)
    assert "- rain is its hardest" in "\n".join(mc._limitations(tmp_path, {"model": {"params": 9}}))


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
    rows = mc._closed_loop(tmp_path)[2:]
    assert [r.split(" | ")[1] for r in rows] == ["groundtruth", "fp32", "int8"]
    assert rows[0].endswith("| - |") and rows[2].endswith("| 79.0 |")
    assert "| 0.030 | 0.060 |" in rows[2]
