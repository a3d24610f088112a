"""`lane-seg adapt`: AdaBN's statistics, the label-free figures, the whole command on a tiny
U-Net (outputs, card, resume, refusals)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from lane_seg.camera import Camera
from lane_seg.cli.main import main
from lane_seg.data.dataset import sha256_file
from lane_seg.lanes.extract import LaneInstance
from lane_seg.models import build_model
from lane_seg.models.checkpoint import load_checkpoint, save_checkpoint
from lane_seg.models.export import read_metadata
from lane_seg.models.testing import road_rgb, tiny_info, write_image_bag, write_tiny_onnx
from lane_seg.training.adapt.batchnorm import adapt_batchnorm
from lane_seg.training.adapt.figures import line_figures


def tiny_unet(path: Path, batch_norm: bool = True) -> Path:
    info = tiny_info(64, 128)
    info.arch, info.labels = "unet", "lines"
    info.model_config = {"base": 4, "depth": 2, "batch_norm": batch_norm}
    torch.manual_seed(0)
    save_checkpoint(path, build_model("unet", **info.model_config), info)
    return path


def road_frames(folder: Path, n: int) -> Path:
    cam = Camera.from_fov(320, 180, 60.0, height_m=1.5, pitch_deg=3.0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        rgb = road_rgb(cam, (1.75 + 0.02 * i, -1.75 + 0.02 * i), seed=i)
        cv2.imwrite(str(folder / f"{i:04d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return folder


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    ws = tmp_path_factory.mktemp("adapt")
    tiny_unet(ws / "bn.pt")
    tiny_unet(ws / "nobn.pt", batch_norm=False)
    road_frames(ws / "cam", 60)
    return ws


def test_adabn_mixes_the_target_statistics_with_the_source(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4)).eval()
    bn = net[1]
    source_mean = bn.running_mean.clone()  # zeros, variance ones: the "source" statistics
    rng = np.random.default_rng(0)
    inputs = [rng.normal(3.0, 2.0, (1, 3, 8, 8)).astype(np.float32) for _ in range(20)]
    with torch.no_grad():
        feats = net[0](torch.from_numpy(np.concatenate(inputs)))
    target_mean = feats.mean(dim=(0, 2, 3))
    assert adapt_batchnorm(net, inputs, alpha=1.0, batch=5) == 20
    assert torch.allclose(bn.running_mean, target_mean, atol=1e-4)
    assert not bn.training and bn.momentum == 0.1  # eval mode, momentum as it was
    weights = [p.clone() for p in net.parameters()]
    bn.running_mean.copy_(source_mean)
    bn.running_var.fill_(1.0)
    adapt_batchnorm(net, inputs, alpha=0.5)
    assert torch.allclose(bn.running_mean, 0.5 * target_mean + 0.5 * source_mean, atol=1e-4)
    assert all(torch.equal(a, b) for a, b in zip(weights, net.parameters(), strict=True))


def test_figures_measure_jitter_within_a_clip_only():
    def line(x: float, ego: str) -> LaneInstance:
        return LaneInstance(np.array([[x, 0.0], [x, 99.0]]), 0.8, ego)

    shifts = iter([0.0, 3.0, 6.0, 30.0, 100.0])
    frames = [np.zeros((100, 50, 3), np.uint8)] * 5

    def lanes_of(_frame):
        dx = next(shifts)
        return [line(10 + dx, "left"), line(40 + dx, "right")] if dx < 50 else [line(0, "left")]

    figs = line_figures(lanes_of, frames, ["a", "a", "a", "a", "b"])
    assert figs.jitter_px == pytest.approx(10.0)  # 0 -> 3 -> 6 -> 30 in clip a; b afresh
    assert figs.jitter_median_px == pytest.approx(3.0)  # the jump to 30 does not move it
    assert figs.both_ego == pytest.approx(0.8) and figs.lines == pytest.approx(9 / 5)
    assert figs.confidence == pytest.approx(0.8)


def test_adapt_writes_the_pair_and_the_card_and_resumes(ws, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["adapt", "--model", str(ws / "bn.pt"), "--frames", str(ws / "cam"), "--out", str(out),
            "--threads", "1"]  # fmt: skip
    assert main(argv) == 0
    assert "ros2 launch lane_seg seg.launch.py model:=" in capsys.readouterr().out
    card = json.loads((out / "adapt_card.json").read_text())
    assert card["model"]["sha256"] == sha256_file(ws / "bn.pt")
    assert card["frames"]["count"] == 60 and len(card["frames"]["each_sha256"]) == 60
    n_bn = sum(k.endswith("running_mean") for k in load_checkpoint(ws / "bn.pt")["state_dict"])
    assert card["methods"]["adabn"]["layers"] == n_bn and card["methods"]["adabn"]["alpha"] == 0.5
    assert card["methods"]["calibration"]["count"] == 60  # all of them: fewer than 64
    assert set(card["figures"]) == {"source fp32", "adapted fp32", "adapted int8"}
    assert set(card["outputs"]) == {"adapted.pt", "adapted_fp32.onnx", "adapted_int8.onnx"}
    assert "AdaBN" in (out / "ADAPT.md").read_text()
    meta = read_metadata(out / "adapted_int8.onnx")
    calib = json.loads(meta["calibration"])
    assert meta["precision"] == "int8" and "camera frames of" in calib["dataset"]
    assert "adapted: AdaBN" in read_metadata(out / "adapted_fp32.onnx")["train_data"]
    src = load_checkpoint(ws / "bn.pt")["state_dict"]
    new = load_checkpoint(out / "adapted.pt")["state_dict"]
    moved = [k for k in src if k.endswith("running_mean") and not torch.equal(src[k], new[k])]
    assert len(moved) == n_bn > 0
    assert all(torch.equal(src[k], new[k]) for k in src if k.endswith("weight"))
    # A killed run: the int8 file never came; the re-run redoes only what is missing.
    before = {p.name: sha256_file(p) for p in (out / "adapted.pt", out / "adapted_fp32.onnx")}
    (out / "adapted_int8.onnx").unlink()
    assert main(argv) == 0
    assert (out / "adapted_int8.onnx").is_file()
    assert sha256_file(out / "adapted.pt") == before["adapted.pt"]
    # Other settings into the same folder are refused, and nothing there changes.
    assert main([*argv, "--alpha", "1"]) == 2
    assert "holds an adaptation of another model" in capsys.readouterr().err


def test_adapt_from_a_bag_without_adabn(ws, tmp_path):
    """The calibration rung alone, on frames read from a rosbag2."""
    frames = [
        cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
        for p in sorted((ws / "cam").glob("*.png"))
    ]
    write_image_bag(tmp_path / "bag", frames[:12], "/cam/image_raw", "mcap", "rgb8")
    out = tmp_path / "out"
    argv = ["adapt", "--model", str(ws / "nobn.pt"), "--frames", str(tmp_path / "bag"),
            "--methods", "calibration", "--min-frames", "10", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    card = json.loads((out / "adapt_card.json").read_text())
    assert card["frames"]["count"] == 12 and list(card["methods"]) == ["calibration"]
    assert not (out / "adapted.pt").exists() and (out / "adapted_int8.onnx").is_file()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ("--model WS/bn.pt --frames WS/cam --every 3", "20 readable frames, adapt needs at"),
        ("--model WS/bn.pt --frames WS/cam --max-frames 20", "--min-frames <= --max-frames"),
        ("--model WS/nobn.pt --frames WS/cam", "has no BatchNorm layers"),
        ("--model WS/tiny.onnx --frames WS/cam", "is an ONNX file"),
        ("--model WS/bn.pt --frames WS/nothing.mp4", "--frames WS/nothing.mp4: not found"),
        ("--model WS/bn.pt --frames WS/bn.pt", "give a video"),
        ("--model WS/bn.pt --frames WS/cam --methods adabn", "needs --calib DATASET"),
        ("--model WS/bn.pt --frames WS/cam --methods blur", "methods must be some of"),
        ("--model WS/bn.pt --frames WS/cam --methods adabn,distill,calibration", "needs --sim"),
        (
            "--model WS/bn.pt --frames WS/cam --methods distill --sim WS --distill-steps 0",
            "--distill-steps must be >= 1",
        ),
    ],
)
def test_adapt_refuses_in_one_line(ws, tmp_path, capsys, args, says):
    write_tiny_onnx(ws / "tiny.onnx")
    argv = ["adapt", *args.replace("WS", str(ws)).split(), "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says.replace("WS", str(ws)) in err[0], err
    assert not (tmp_path / "out").exists()


def test_selftrain_fine_tunes_on_its_pseudo_labels_mixed_with_sim(ws, tmp_path, monkeypatch):
    """The rung's glue: pseudo-labels (here lines known in advance, as `write_pseudo_labels`
    writes them; tests/test_pseudo_labels.py covers how they are chosen) -> a fine-tune mixed
    with simulator frames -> the model that gets exported; resumed, not redone."""
    from lane_data import make_line_dataset

    from lane_seg.data.dataset import encode_image, encode_mask
    from lane_seg.lanes.drawing import draw_lines
    from lane_seg.training.adapt import selftrain
    from lane_seg.training.pseudo_labels import PseudoReport

    def fake(seg, frames, w, cfg):
        report = PseudoReport()
        for i, (_key, clip, rgb) in enumerate(frames):
            report.frames += 1
            if i % 2:
                continue
            h, wd = rgb.shape[:2]
            mask = draw_lines((h, wd), [np.array([[wd * 0.4, h * 0.5], [0.0, h - 1.0]])], 5)
            w.add(f"p{i}", "train", "pseudo", encode_image(rgb), encode_mask(mask), clip=clip)
            report.kept += 1
        return report

    monkeypatch.setattr(selftrain, "write_pseudo_labels", fake)
    sim = make_line_dataset(tmp_path / "sim", n_train=8, n_val=4, height=64, width=128)
    frames = [(f"k{i}", "c", np.full((64, 128, 3), 40 + i, np.uint8)) for i in range(6)]
    start = ws / "bn.pt"
    done = selftrain.self_train(start, frames, "sha", tmp_path / "out", str(sim), steps=3)
    assert done is not None
    model, info, what = done
    assert (what.pseudo_frames, what.frames, what.steps) == (3, 6, 3)
    cfg = yaml.safe_load((tmp_path / "out" / "selftrain" / "config.yaml").read_text())
    roots = [s["root"] for s in cfg["data"]["sources"]]
    assert roots == [str(tmp_path / "out" / "pseudo"), str(sim)]
    assert cfg["train"]["init_from"] == str(start)
    before = load_checkpoint(start)["state_dict"]
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    again = selftrain.self_train(start, frames, "sha", tmp_path / "out", str(sim), steps=3)
    assert again is not None and load_checkpoint(tmp_path / "out/selftrain/last.pt")["step"] == 3


def test_selftrain_is_skipped_when_no_frame_is_sure(ws, tmp_path):
    """A model that finds no line anywhere labels nothing: the rung says so in the card and the
    pair is still written."""
    ckpt = load_checkpoint(ws / "bn.pt")
    ckpt["state_dict"]["head.bias"].fill_(-30.0)  # every pixel background
    torch.save(ckpt, tmp_path / "blind.pt")
    out = tmp_path / "out"
    argv = ["adapt", "--model", str(tmp_path / "blind.pt"), "--frames", str(ws / "cam"),
            "--methods", "selftrain,calibration", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    card = json.loads((out / "adapt_card.json").read_text())
    assert card["methods"]["selftrain"] == {"skipped": "no frame with both ego lines sure enough"}
    assert "Self-training: no frame" in (out / "ADAPT.md").read_text()
    assert (out / "adapted_int8.onnx").is_file()


def test_distill_fine_tunes_toward_its_mirror_averaged_self(ws, tmp_path, capsys):
    """The distillation rung end to end on a tiny U-Net: AdaBN, then a short fine-tune with its
    own flip-averaged probabilities on the camera's frames as soft targets, mixed with simulator
    frames; the weights move, the card says so, a re-run resumes."""
    from lane_data import make_line_dataset

    sim = make_line_dataset(tmp_path / "sim", n_train=8, n_val=4, height=64, width=128)
    out = tmp_path / "out"
    argv = ["adapt", "--model", str(ws / "bn.pt"), "--frames", str(ws / "cam"), "--out", str(out),
            "--methods", "adabn,distill,calibration", "--sim", str(sim), "--distill-steps", "3",
            "--threads", "1"]  # fmt: skip
    assert main(argv) == 0
    card = json.loads((out / "adapt_card.json").read_text())
    assert list(card["methods"]) == ["adabn", "distill", "calibration"]
    assert card["methods"]["distill"] == {"frames": 60, "steps": 3, "sim": str(sim)}
    cfg = yaml.safe_load((out / "distill" / "config.yaml").read_text())
    assert cfg["distill"]["flip"] is True and cfg["train"]["init_from"] == str(out / "adapted.pt")
    assert cfg["distill"]["teacher"] == str(out / "teacher_fp32.onnx")
    assert [s["root"] for s in cfg["data"]["sources"]] == [str(sim)]
    assert len(list((out / "distill_frames").glob("*.png"))) == 60
    adabn = load_checkpoint(out / "adapted.pt")["state_dict"]
    trained = load_checkpoint(out / "distill" / "last.pt")["state_dict"]
    assert any(not torch.equal(adabn[k], trained[k]) for k in adabn if k.endswith("weight"))
    assert "Distillation: 3 steps" in (out / "ADAPT.md").read_text()
    assert "distilled 3 steps" in read_metadata(out / "adapted_fp32.onnx")["train_data"]
    assert main(argv) == 0  # resumed: nothing redone, the same outputs
    assert load_checkpoint(out / "distill" / "last.pt")["step"] == 3
    assert main([*argv[:-4], "--distill-steps", "4", "--threads", "1"]) == 2
    assert "holds an adaptation of another model" in capsys.readouterr().err
