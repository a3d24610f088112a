"""Every sub-command and both nodes against bad arguments, bad paths and bad files: each case
ends in one line on stderr (no traceback), exit code 2, and every file that was already there
is still there, byte for byte (nothing lost or truncated) and nothing new was written.

The cases run in this process (the commands' own `main`, the nodes' entry points) with the
file descriptors captured, so what C libraries print (libpng, rcl) counts too; a few run as
processes of their own, as a user starts them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from lane_data import make_line_dataset

from lane_seg.cli.main import main
from lane_seg.data.dataset import encode_image
from lane_seg.models import build_model
from lane_seg.models.checkpoint import save_checkpoint
from lane_seg.models.testing import (
    export_onnx_bytes,
    stripes_rgb,
    tiny_info,
    tiny_torch_model,
    write_image_bag,
    write_onnx_with_metadata,
    write_tiny_onnx,
)

BIN = Path(sys.executable).parent
HOLDERS: list[subprocess.Popen] = []  # processes holding outputs (lane_seg.outputs locks)


class _Payload:
    def __reduce__(self):
        return (os.system, ("true",))


# Settings files with one value out of its range (WS/<name>.yaml): training configs
# (section, key, value) that would write to WS/new, simulator configs (key, value).
BAD_TRAIN = {
    "t_steps": ("train", "steps_per_epoch", -3), "t_threads": ("train", "threads", -4),
    "t_workers": ("data", "workers", -2), "t_sources": ("data", "sources", 5),
    "t_val_limit": ("data", "val_limit", -4), "t_hflip": ("augment", "hflip", 7),
    "t_clip": ("optim", "grad_clip", -1), "t_warmup": ("optim", "warmup_steps", -5),
}  # fmt: skip
BAD_SIM = {
    "s_hfov": ("hfov_deg", [0, 0]), "s_width": ("width", 100000),
    "s_yellow": ("yellow_probability", 5), "s_lane": ("lane_width_m", [-3.5, 3.0]),
}  # fmt: skip


def _chatter_bag(path: Path) -> None:
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_HUMBLE)
    with Writer(path, version=8) as w:
        conn = w.add_connection("/chatter", "std_msgs/msg/String", typestore=ts)
        raw = ts.serialize_cdr(ts.types["std_msgs/msg/String"](data="hi"), conn.msgtype)
        w.write(conn, 1, raw)


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """One workspace of good and bad inputs; every case runs against it."""
    ws = tmp_path_factory.mktemp("ws")
    make_line_dataset(ws / "ds", n_train=8, n_val=4, height=32, width=64)
    shutil.copytree(ws / "ds", ws / "ds_badline")
    shutil.copytree(ws / "ds", ws / "ds_badinfo")
    (ws / "ds_badinfo" / "dataset.json").write_text("{not json")
    (ws / "img").mkdir()
    for i in range(4):
        png = encode_image(stripes_rgb(32, 64, seed=i))
        (ws / "img" / f"f{i}.png").write_bytes(png)
    (ws / "trunc.png").write_bytes(png[: len(png) // 2])
    (ws / "bad.xml").write_text("<annotations><image")
    # Datasets as collect and import wrote them, each then damaged on its third line.
    collect = ["collect", "--out", str(ws / "sim_badline"), "--frames", "4", "--workers", "1"]
    imp = ["import", "--format", "masks", str(ws / "img"), "--masks", str(ws / "img")]
    assert main(collect) == 0 and main([*imp, "--out", str(ws / "imp_badline")]) == 0
    for name in ("ds", "sim", "imp"):
        meta = ws / f"{name}_badline" / "meta.jsonl"
        lines = meta.read_text().splitlines(keepends=True)
        lines[2] = '{"id": "x", garbage\n'
        meta.write_text("".join(lines))

    info = tiny_info(32, 64)
    info.arch, info.model_config = "unet", {"base": 4, "depth": 2}
    for name in ("best.pt", "last.pt"):
        save_checkpoint(ws / "run" / name, build_model("unet", base=4, depth=2), info)
    write_tiny_onnx(ws / "good.onnx", "bright")
    data = export_onnx_bytes(tiny_torch_model("random", tiny_info()), tiny_info())
    for name, value in (("neg", "-5"), ("huge", "100000")):
        meta = tiny_info().to_metadata() | {"input_height": value}
        write_onnx_with_metadata(data, meta, ws / f"{name}.onnx")
    (ws / "corrupt.onnx").write_bytes(b"\x08\x07garbage" * 50)
    for name, key, value in (("thr7", "threshold", "7"), ("thrnan", "threshold", "nan"),
                             ("std0", "std", "0,0,0")):  # fmt: skip
        meta = tiny_info().to_metadata() | {key: value}  # numbers no mask can come from
        write_onnx_with_metadata(data, meta, ws / f"{name}.onnx")
    (ws / "badtus" / "masks").mkdir(parents=True)  # an earlier infer --lanes' json, damaged
    (ws / "badtus" / "masks" / "tusimple.json").write_text('{"raw_file": "a.png"}\n{not json\n')
    import torch

    torch.save({"format": "lane_seg.ckpt/1", "x": _Payload()}, ws / "evil.pt")
    (ws / "junk.pt").write_bytes(b"junk")

    write_image_bag(ws / "bag", [stripes_rgb(16, 16)] * 2, "/cam", "mcap", "rgb8")
    _chatter_bag(ws / "chatbag")  # a bag without an image topic
    lines_info = tiny_info(32, 64)
    lines_info.labels = "lines"  # pseudo-label takes only a lines model
    write_tiny_onnx(ws / "lines.onnx", "bright", lines_info)
    (ws / "notabag").mkdir()
    (ws / "badbag").mkdir()
    (ws / "badbag" / "metadata.yaml").write_text("rosbag2_bagfile_information: [8\n  x: 1\n")
    (ws / "notabag" / "x.txt").write_text("hi")
    (ws / "exists").mkdir()
    (ws / "exists" / "keep.txt").write_text("keep")
    (ws / "afile").write_text("a file, not a folder")

    (ws / "bad.yaml").write_text("model:\n  name: unet\n  base: [1, 2\n")
    (ws / "seg_bad.yaml").write_text("/**:\n  ros__parameters:\n    threshold: 5.0\n")
    (ws / "ctl_bad.yaml").write_text("/**:\n  ros__parameters:\n    max_steer_deg: 500.0\n")
    cfg = {
        "model": {"name": "unet", "base": 4, "depth": 2},
        "data": {"sources": [{"root": str(ws / "ds")}], "height": 32, "width": 64},
        "train": {"epochs": 1, "batch_size": 4, "out": str(ws / "run"), "threads": 1},
    }
    (ws / "train.yaml").write_text(yaml.safe_dump(cfg))
    cfg["data"]["sources"] = [{"root": str(ws / "ds_badline")}]
    cfg["train"]["out"] = str(ws / "run_badline")
    (ws / "train_badline.yaml").write_text(yaml.safe_dump(cfg))
    for name, (section, key, value) in BAD_TRAIN.items():
        bad = yaml.safe_load((ws / "train.yaml").read_text())
        bad["train"]["out"] = str(ws / "new")
        bad.setdefault(section, {})[key] = value
        (ws / f"{name}.yaml").write_text(yaml.safe_dump(bad))
    for name, (key, value) in BAD_SIM.items():
        (ws / f"{name}.yaml").write_text(yaml.safe_dump({key: value}))
    (ws / "README.md").write_text("no generated sections here\n")
    # Another writer of WS/busy and WS/busy.onnx, alive while the cases run (until pytest exits
    # and its stdin closes).
    hold = "lock_folder(sys.argv[1]); lock_file(sys.argv[2]); print(1, flush=True); input()"
    hold = f"import sys; from lane_seg.outputs import lock_file, lock_folder; {hold}"
    argv = [sys.executable, "-c", hold, str(ws / "busy"), str(ws / "busy.onnx")]
    HOLDERS.append(subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE))
    assert HOLDERS[-1].stdout.readline() == b"1\n"
    return ws


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# (command, arguments, what the one line says[, PROCESS]); WS is the workspace. `lane-seg
# <command>` for commands, the node's executable for seg_node and lane_controller. PROCESS: also
# run as a process of its own, as a user starts it (interpreter start and exit included).
PROCESS = True
SEG = ["--ros-args", "-p", "model:=WS/good.onnx", "-p", "engine:=onnxruntime-cpu"]
QOS_DEPTH = "qos_overrides./seg_node/image.subscription.depth:=0"
CASES = [
    # collect
    ("collect", "--out WS/new --frames 0", "--frames must be positive", PROCESS),
    ("collect", "--out WS/afile --frames 2", "cannot write to WS/afile: it is a file"),
    ("collect", "--out /proc/lane_seg_out --frames 2", "cannot write to /proc/lane_seg_out:"),
    ("collect", "--out WS/new --frames 2 --config WS/bad.yaml", "is not valid YAML: line 4"),
    ("collect", "--out WS/sim_badline --frames 4 --workers 1", "meta.jsonl line 3 is not valid"),
    ("collect", "--out WS/new --frames x", "argument --frames: invalid int value: 'x'"),
    ("collect", "--backend carla --out WS/new --frames 2 --image-size 99999x2", "--image-size"),
    ("collect", "--out WS/new --frames 2 --config WS/s_hfov.yaml",
     "WS/s_hfov.yaml: each value of hfov_deg must be in [10, 170], got [0.0, 0.0]"),
    ("collect", "--out WS/new --frames 2 --config WS/s_width.yaml",
     "WS/s_width.yaml: width must be in [32, 8192], got 100000"),
    ("collect", "--out WS/new --frames 2 --config WS/s_yellow.yaml",
     "WS/s_yellow.yaml: yellow_probability must be in [0, 1], got 5.0"),
    ("collect", "--out WS/new --frames 2 --config WS/s_lane.yaml",
     "WS/s_lane.yaml: each value of lane_width_m must be in [1.5, 8], got [-3.5, 3.0]"),
    # verify
    ("verify", "WS/nothing", "is not a lane_seg dataset"),
    ("verify", "WS/ds_badinfo", "dataset.json is not valid JSON"),
    ("verify", "WS/afile", "is not a lane_seg dataset"),
    # demo
    ("demo", "--input WS/nothing.mp4 --out WS/new", "WS/nothing.mp4"),
    ("demo", "--input WS/notabag --out WS/new", "or a rosbag2 folder (with metadata.yaml)"),
    ("demo", "--out WS/afile", "cannot write to WS/afile"),
    ("demo", "--model WS/corrupt.onnx --out WS/new", "not a loadable ONNX model"),
    # import
    ("import", "--format masks WS/nothing --masks WS/nothing --out WS/new", "WS/nothing"),
    ("import", "--format masks WS/img --masks WS/img --out WS/new --size 99999999x99999999",
     "--size 99999999x99999999: width and height must each be 8..8192 px"),
    ("import", "--format masks WS/img --masks WS/img --out WS/afile", "cannot write to"),
    ("import", "--format masks WS/img --masks WS/img --out WS/imp_badline", "line 3 is not valid"),
    ("import", "--format masks WS/img --masks WS/img --out WS/new --split 1,x", "three numbers"),
    ("import", "--format cvat WS/bad.xml --out WS/new", "bad.xml is not valid XML"),
    ("import", "--format labelme WS/img --out WS/new", "no usable labelme frames in WS/img"),
    # adapt
    ("adapt", "--model WS/run/best.pt --frames WS/img --out WS/new", "4 readable frames, adapt"),
    ("adapt", "--model WS/good.onnx --frames WS/img --out WS/new", "is an ONNX file"),
    ("adapt", "--model WS/run/best.pt --frames WS/trunc.png --out WS/new",
     "--frames cannot read image WS/trunc.png"),
    ("adapt", "--model WS/run/best.pt --frames WS/bad.xml --out WS/new", "give a video"),
    ("adapt", "--model WS/run/best.pt --frames WS/chatbag --out WS/new",
     "--frames WS/chatbag has no image topic (sensor_msgs/msg/Image or CompressedImage)"),
    ("adapt", "--model WS/run/best.pt --frames WS/bag --topic /chatter --out WS/new",
     "--frames topic /chatter has type std_msgs/msg/String, not an image type"),
    ("adapt", "--model WS/run/best.pt --frames WS/badbag --out WS/new", "cannot read bag"),
    # pseudo-label
    ("pseudo-label", "--model WS/lines.onnx --frames WS/bad.xml --out WS/new",
     "matched no readable image, video or rosbag2"),
    ("pseudo-label", "--model WS/lines.onnx --frames WS/chatbag --out WS/new",
     "WS/chatbag has no image topic"),
    ("pseudo-label", "--model WS/lines.onnx --frames WS/bag --topic /chatter --out WS/new",
     "topic /chatter has type std_msgs/msg/String, not an image type"),
    ("pseudo-label", "--model WS/lines.onnx --frames WS/bag --topic /nope --out WS/new",
     "topic /nope is not in WS/bag; image topics there: /cam"),
    # demo --input
    ("demo", "--model WS/good.onnx --input WS/bad.xml --out WS/new", "WS/bad.xml: give a video"),
    ("demo", "--model WS/good.onnx --input WS/chatbag --out WS/new", "has no image topic"),
    ("demo", "--model WS/good.onnx --input WS/bag --topic /chatter --out WS/new",
     "topic /chatter has type std_msgs/msg/String, not an image type"),
    ("adapt", "--model WS/evil.pt --frames WS/img --out WS/new", "refusing checkpoint"),
    # finetune
    ("finetune", "--model WS/evil.pt --labels WS/ds --out WS/new", "refusing checkpoint"),
    ("finetune", "--model WS/run/best.pt --labels WS/nothing --out WS/new", "WS/nothing"),
    ("finetune", "--model WS/run/best.pt --labels WS/ds_badline --out WS/new", "line 3 is not"),
    ("finetune", "--model WS/run/best.pt --labels WS/ds --out WS/new --steps 0", "--steps"),
    ("finetune", "--model WS/run/best.pt --labels WS/ds --out WS/afile", "cannot write to"),
    # infer
    ("infer", "WS/nothing.png --out WS/new", "WS/nothing.png: not found"),
    ("infer", "WS/bad.xml --out WS/new", "WS/bad.xml: give a video (.mp4"),
    ("infer", "WS/chatbag --model WS/nothing.onnx --out WS/new",
     "WS/chatbag has no image topic (sensor_msgs/msg/Image or CompressedImage); its topics: "
     "/chatter"),
    ("infer", "WS/img WS/bag --topic /chatter --model WS/nothing.onnx --out WS/new",
     "topic /chatter has type std_msgs/msg/String, not an image type"),
    ("infer", "WS/badbag --model WS/nothing.onnx --out WS/new", "cannot read bag WS/badbag"),
    ("infer", "WS/img --model WS/good.onnx --out WS/afile", "cannot write to WS/afile"),
    ("infer", "WS/img --model WS/neg.onnx --out WS/new", "input_height -5 is outside 1..2048"),
    ("infer", "WS/img --model WS/huge.onnx --out WS/new", "input_height 100000 is outside"),
    ("infer", "WS/img --model WS/evil.pt --out WS/new", "refusing checkpoint WS/evil.pt"),
    ("infer", "WS/img --model WS/good.onnx --threshold 2 --out WS/new", "--threshold"),
    ("infer", "WS/img --model WS/thr7.onnx --out WS/new", "thr7.onnx: metadata field threshold"),
    ("infer", "WS/img --model WS/std0.onnx --out WS/new", "std0.onnx: metadata field std = 0,0"),
    ("infer", "WS/img --lanes --model WS/good.onnx --out WS/badtus",
     "WS/badtus/masks/tusimple.json line 2 is not a TuSimple record"),
    # node (lane-seg node)
    ("node", "--model WS/good.onnx --engine onnxruntime-cpu --threads -1",
     "parameter threads = -1: must be an integer from 0 to 256"),
    ("node", "--model WS/good.onnx --engine onnxruntime-cpu --params-file WS/seg_bad.yaml",
     "parameter threshold = 5.0: must be a number from 0 to 1", PROCESS),
    ("node", "--model WS/nothing.onnx", "model file not found"),
    ("node", "--model WS/good.onnx --name a-b", "bad ROS arguments"),
    # bag
    ("bag", "WS/notabag WS/new --topic /cam --model WS/nothing.onnx", "not a rosbag2 folder"),
    ("bag", "WS/bag WS/new --topic /nope --model WS/nothing.onnx", "topic /nope is not in"),
    ("bag", "WS/bag WS/exists --topic /cam", "output WS/exists already exists"),
    ("bag", "WS/bag WS/afile/out --topic /cam", "cannot write to WS/afile"),
    ("bag", "WS/badbag WS/new --topic /cam",
     "cannot read bag WS/badbag: its metadata WS/badbag/metadata.yaml is not valid YAML: line 2"),
    # models
    ("models", "--size 99999999x99999999", "width and height must each be 1..2048 px"),
    ("models", "--size 512x250", "not a multiple of 16"),
    ("models", "--config WS/bad.yaml", "is not valid YAML"),
    # export
    ("export", "--model WS/evil.pt --out WS/new/m.onnx", "refusing checkpoint"),
    ("export", "--model WS/junk.pt --out WS/new/m.onnx", "truncated, corrupt or not a PyTorch"),
    ("export", "--model WS/run/best.pt --out WS/afile/m.onnx", "cannot write to WS/afile"),
    ("export", "--model WS/run/best.pt --out /proc/lane_seg/m.onnx", "cannot write to /proc"),
    ("export", "--model WS/run/best.pt --out WS/new/m.txt", "must end in .onnx", PROCESS),
    ("export", "--model WS/run/best.pt --out WS/new/m.onnx --opset 11", "--opset 11"),
    # train
    ("train", "--config WS/bad.yaml", "is not valid YAML: line 4, column 1"),
    ("train", "--config WS/train.yaml --out WS/new --epochs -1", "--epochs must be at least 1"),
    ("train", "--config WS/train.yaml --out WS/afile", "cannot write to WS/afile"),
    ("train", "--config WS/train_badline.yaml", "line 3 is not valid JSON"),
    ("train", "--config WS/train.yaml", "already holds a run"),
    ("train", "--config WS/train.yaml --out WS/new --resume", "last.pt not found"),
    ("train", "--config WS/t_steps.yaml", "t_steps.yaml: train: steps_per_epoch must be in [0, "),
    ("train", "--config WS/t_threads.yaml", "train: threads must be in [0, 1024], got -4"),
    ("train", "--config WS/t_workers.yaml", "data: workers must be in [0, 256], got -2"),
    ("train", "--config WS/t_sources.yaml", "data.sources must be a list of at least one"),
    ("train", "--config WS/t_val_limit.yaml", "data: val_limit must be in [0, "),
    ("train", "--config WS/t_hflip.yaml", "augment: hflip must be in [0, 1], got 7.0"),
    ("train", "--config WS/t_clip.yaml", "optim: grad_clip must be in [0, 1000000], got -1.0"),
    ("train", "--config WS/t_warmup.yaml", "optim: warmup_steps must be in [0, "),
    # eval
    ("eval", "--model WS/good.onnx --data WS/ds_badline --out WS/new", "line 3 is not valid"),
    ("eval", "--model WS/evil.pt --data WS/ds --out WS/new", "refusing checkpoint"),
    ("eval", "--model WS/good.onnx --data WS/ds --out /proc/lane_seg_out", "cannot write to"),
    ("eval", "--model WS/huge.onnx --data WS/ds --out WS/new", "input_height 100000"),
    ("eval", "--model WS/good.onnx --data WS/ds --split nope --out WS/new", "no 'nope' frames"),
    ("eval", "--model WS/thrnan.onnx --data WS/ds --out WS/new", "threshold = nan is not a"),
    # baselines
    ("baselines", "--config WS/bad.yaml --data WS/ds --out WS/new", "is not valid YAML"),
    ("baselines", "--config WS/train.yaml --data WS/ds --out WS/afile", "cannot write to"),
    ("baselines", "--config WS/train.yaml --data WS/ds --out WS/new --readme WS/README.md",
     "WS/README.md"),
    # sim
    ("sim", "--controller WS/bad.yaml --out WS/new", "is not valid YAML"),
    ("sim", "--out WS/afile", "cannot write to WS/afile"),
    ("sim", "--perception int8 --model WS/neg.onnx --out WS/new", "input_height -5"),
    ("sim", "--scenario nope --out WS/new", "nope"),
    # quantize
    ("quantize", "--model WS/nothing.pt --data WS/ds --calib WS/ds --out WS/new", "not found"),
    ("quantize", "--model WS/run/best.pt --data WS/ds --calib WS/ds --out WS/afile",
     "cannot write to"),
    ("quantize", "--model WS/run/best.pt --data WS/ds --calib WS/ds --out WS/new --lowbit W3",
     "W3"),
    # bench
    ("bench", "--model WS/evil.pt --data WS/ds --out WS/new", "refusing checkpoint"),
    ("bench", "--model WS/run/best.pt --data WS/ds --out WS/afile", "cannot write to"),
    ("bench", "--model WS/run/best.pt --data WS/ds --out WS/new --readme WS/README.md",
     "WS/README.md"),
    # model-card
    ("model-card", "--stages WS/train.yaml --run WS/nothing --out WS/new/README.md",
     "WS/nothing"),
    ("model-card", "--stages WS/train.yaml --run WS/run --out WS/afile/README.md",
     "cannot write to WS/afile"),
    # an output folder or file another process is writing (one writer at a time)
    ("collect", "--out WS/busy --frames 2 --workers 1", "WS/busy is being written by pid"),
    ("import", "--format masks WS/img --masks WS/img --out WS/busy", "WS/busy is being written"),
    ("infer", "WS/img --model WS/good.onnx --out WS/busy", "WS/busy is being written by pid"),
    ("adapt", "--model WS/run/best.pt --frames WS/img --out WS/busy", "WS/busy is being written"),
    ("finetune", "--model WS/run/best.pt --labels WS/ds --out WS/busy", "WS/busy is being"),
    ("train", "--config WS/train.yaml --out WS/busy", "WS/busy is being written by pid"),
    ("eval", "--model WS/good.onnx --data WS/ds --out WS/busy", "WS/busy is being written"),
    ("export", "--model WS/run/best.pt --out WS/busy.onnx", "WS/busy.onnx is being written"),
    ("bench", "--model WS/run/best.pt --data WS/ds --out WS/busy", "WS/busy is being written"),
    ("quantize", "--model WS/run/best.pt --data WS/ds --calib WS/ds --out WS/busy",
     "WS/busy is being written by pid"),
    ("sim", "--out WS/busy", "WS/busy is being written by pid"),
    ("demo", "--out WS/busy", "WS/busy is being written by pid"),
    ("baselines", "--config WS/train.yaml --data WS/ds --out WS/busy", "WS/busy is being"),
    ("model-card", "--stages WS/train.yaml --run WS/run --out WS/busy.onnx", "WS/busy.onnx is"),
    ("bag", "WS/bag WS/busy.onnx --topic /cam", "WS/busy.onnx is being written by pid"),
    # the nodes' own executables
    ("seg_node", f"{' '.join(SEG)} -p threads:=-1", "parameter threads = -1: must be an integer"),
    ("seg_node", f"{' '.join(SEG)} -p max_pixels:=0", "parameter max_pixels = 0", PROCESS),
    ("seg_node", f"{' '.join(SEG)} -p {QOS_DEPTH}", "depth = 0: must be an integer from 1 to"),
    ("seg_node", "--ros-args -p model:=WS/neg.onnx", "input_height -5 is outside 1..2048"),
    ("seg_node", "--ros-args -p model:=WS/thr7.onnx", "WS/thr7.onnx: metadata field threshold = 7"),
    ("seg_node", "--ros-args -p model:=WS/evil.pt -p engine:=torch", "refusing checkpoint"),
    ("seg_node", "--ros-args --params-file WS/bad.yaml", "bad ROS arguments"),
    ("lane_controller", "--ros-args -p lateral:=mpc", "lateral must be one of"),
    ("lane_controller", "--ros-args -p lookahead_time_s:=-1.0", "lookahead_time_s = -1.0",
     PROCESS),
    ("lane_controller", "--ros-args --params-file WS/ctl_bad.yaml", "max_steer_deg = 500.0"),
    ("lane_controller",
     "--ros-args -p qos_overrides./lane_controller/cmd_vel.publisher.depth:=0", "depth = 0"),
]  # fmt: skip


def _argv(command: str, args: str, ws: Path) -> list[str]:
    parts = [a.replace("WS", str(ws)) for a in args.split()]
    return parts if command in ("seg_node", "lane_controller") else [command, *parts]


def _run_here(command: str, argv: list[str]) -> int:
    if command in ("seg_node", "lane_controller"):
        from lane_seg.ros import entry_points

        return getattr(entry_points, command)(argv)
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's usage errors
        return int(exc.code)


@pytest.mark.parametrize(
    "command, args, says, process",
    [(*case, False)[:4] for case in CASES],
    ids=[f"{c[0]}:{c[1][:40]}" for c in CASES],
)
def test_bad_input_is_one_line_exit_2_and_loses_nothing(ws, capfd, command, args, says, process):
    argv = _argv(command, args, ws)
    shutil.rmtree(ws / "new", ignore_errors=True)  # one case's failure is not the next one's
    before = _snapshot(ws)
    if process:
        nodes = ("seg_node", "lane_controller")
        exe = [str(BIN / command)] if command in nodes else [str(BIN / "lane-seg")]
        r = subprocess.run([*exe, *argv], capture_output=True, text=True, timeout=120)
        code, err = r.returncode, r.stderr
    else:
        capfd.readouterr()
        code = _run_here(command, argv)
        err = capfd.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    prog = {"node": "seg_node", "seg_node": "seg_node", "lane_controller": "lane_controller"}
    prog = prog.get(command, f"lane-seg {command}")
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    assert says.replace("WS", str(ws)) in lines[0], lines[0]
    assert _snapshot(ws) == before  # nothing lost, truncated, or written
    assert not (ws / "new").exists()
