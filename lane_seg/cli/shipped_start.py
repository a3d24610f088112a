"""The shipped default model as a starting checkpoint for `adapt` and `finetune` without
`--model`: its trainable weights recovered from the int8 file (`models/lane_unet_int8.onnx`,
`lane_seg.training.adapt.recover`), its BatchNorm statistics measured on frames of the simulator
settings it was trained on (config/sim_roads.yaml). Recomputed into the run's folder (about a
minute on 2 busy cores, the card says how long) rather than shipped: the int8 file already
holds the weights, and a copy could drift from it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lane_seg import resources
from lane_seg.data.dataset import sha256_file
from lane_seg.errors import LaneSegError
from lane_seg.models.checkpoint import load_checkpoint
from lane_seg.runtime.shipped_model import default_model
from lane_seg.sim.world.collect import render_frame
from lane_seg.sim.world.scene import SimConfig
from lane_seg.training.adapt.recover import recover_int8, save_recovered

START = "start.pt"  # the recovered checkpoint, in the run's folder
SIM_CONFIG = "sim_roads.yaml"  # the default model's training data (make model)
SOURCE_SEED = 7001  # a seed of its own: not a frame of any training or calibration set
SOURCE_FRAMES = 32


def source_frames(count: int = SOURCE_FRAMES, seed: int = SOURCE_SEED) -> tuple[list, str]:
    """Simulator frames like the default model's training data, and what they are."""
    path = resources.config_file(SIM_CONFIG)
    cfg = SimConfig.from_yaml(path)
    frames = [render_frame(seed, i, cfg)[0] for i in range(count)]
    return frames, f"built-in simulator, config/{SIM_CONFIG}, seed {seed}, frames 0-{count - 1}"


def shipped_checkpoint(out: str | Path) -> Path:
    """OUT/start.pt recovered from the shipped int8 file; one already there from
    the same file is kept, so a resumed run starts from the same weights."""
    int8 = default_model("int8")
    path = Path(out) / START
    if path.is_file():
        origin = load_checkpoint(path).get("recovered_from", {})
        if origin.get("sha256") == sha256_file(int8):
            return path
        raise LaneSegError(f"{path} was recovered from another model file; choose another --out")
    t0 = time.perf_counter()
    frames, what = source_frames()
    recovered = recover_int8(int8, frames, what)
    recovered.origin["seconds"] = round(time.perf_counter() - t0, 1)  # frames rendered included
    recovered.origin["path"] = f"models/{int8.name}"  # the package's file, not this machine's path
    save_recovered(recovered, path)
    return path


@contextmanager
def starting_model(model: str | None, out: str | Path) -> Iterator[str]:
    """`model`, or the recovered shipped one (`shipped_checkpoint`); a start.pt made now is
    removed again when the command is refused, so a refused run leaves nothing behind."""
    if model:
        yield model
        return
    made = not (Path(out) / START).exists()
    path = shipped_checkpoint(out)
    try:
        yield str(path)
    except LaneSegError:
        if made:
            path.unlink(missing_ok=True)
        raise
