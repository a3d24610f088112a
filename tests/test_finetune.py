"""The label path end to end on tiny inputs: pre-labels from a checkpoint (`infer --export`),
read back (`import --format labelme`), then `lane-seg finetune` mixing them with simulator-style
frames and exporting the int8 pair; and the seeded, nested subset of labelled frames."""

from __future__ import annotations

import json

import torch
import yaml
from lane_data import make_line_dataset
from test_adapt import road_frames, tiny_unet

from lane_seg.cli.main import main
from lane_seg.data.dataset import load_dataset
from lane_seg.models.checkpoint import load_checkpoint
from lane_seg.models.export import read_metadata
from lane_seg.training.train.data import limited


def test_a_smaller_subset_of_labelled_frames_is_part_of_a_larger_one(tmp_path):
    samples = load_dataset(make_line_dataset(tmp_path / "ds", n_train=30, n_val=0)).samples
    five, ten = limited(samples, 5), limited(samples, 10)
    assert len(five) == 5 and len(ten) == 10
    assert {s.id for s in five} <= {s.id for s in ten}
    assert [s.id for s in limited(samples[::-1], 10)] == [s.id for s in ten]  # order-free


def test_label_a_few_frames_then_finetune(tmp_path, capsys):
    model = tiny_unet(tmp_path / "bn.pt")
    road_frames(tmp_path / "cam", 6)
    sim = make_line_dataset(tmp_path / "sim", n_train=8, n_val=4, height=64, width=128)
    pre = tmp_path / "prelabels"
    argv = ["infer", "--model", str(model), "--export", "labelme", "--out", str(pre)]
    assert main([*argv, "--no-overlays", "--no-masks", str(tmp_path / "cam")]) == 0
    assert len(list((pre / "labelme").rglob("*.json"))) == 6
    labels = tmp_path / "mycam"
    argv = ["import", "--format", "labelme", str(pre / "labelme"), "--split", "1,0,0"]
    assert main([*argv, "--out", str(labels)]) == 0
    out = tmp_path / "run"
    argv = ["finetune", "--model", str(model), "--labels", str(labels), "--sim", str(sim),
            "--frames", "3", "--steps", "4", "--batch-size", "2", "--threads", "1"]  # fmt: skip
    assert main([*argv, "--out", str(out)]) == 0
    assert "model:=" in capsys.readouterr().out
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["train"]["init_from"] == str(model) and cfg["data"]["labels"] == "lines"
    assert [(s["root"], s["limit"]) for s in cfg["data"]["sources"]] == [
        (str(labels), 3),
        (str(sim), 0),
    ]
    meta = read_metadata(out / "finetuned_int8.onnx")
    assert meta["precision"] == "int8"
    assert json.loads(meta["calibration"])["dataset"] == str(labels)
    assert "fine-tuned from" in read_metadata(out / "finetuned_fp32.onnx")["train_data"]
    last = load_checkpoint(out / "last.pt")
    assert last["step"] == 4
    start = load_checkpoint(model)["state_dict"]
    assert any(not torch.equal(start[k], v) for k, v in last["state_dict"].items())
    # Re-running the finished run resumes it: nothing more to train, the same pair again.
    assert main([*argv, "--out", str(out)]) == 0
    assert load_checkpoint(out / "last.pt")["step"] == 4


def test_the_schedule_runs_the_steps_asked_for():
    """Self-training asked for 60 steps once ran 100 (two 50-step epochs); its card said 60."""
    from lane_seg.training.train.finetune import STEPS_PER_EPOCH, schedule

    for steps in (1, 7, 50, 60, 200, 301):
        epochs, per_epoch = schedule(steps)
        assert per_epoch <= STEPS_PER_EPOCH
        assert steps <= epochs * per_epoch < steps + epochs
    assert schedule(60) == (2, 30) and schedule(200) == (4, 50)
