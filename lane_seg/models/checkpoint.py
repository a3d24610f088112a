"""Checkpoints (.pt): the contract shared by training, quantization and the runtime.

    {"format": "lane_seg.ckpt/1", "info": ModelInfo.to_metadata(), "state_dict": ..., ...}

Only tensors, numbers, strings, lists and dicts are stored, so `torch.load(weights_only=True)`
reads them and no pickled code is ever executed. `state_dict` is what to deploy (the EMA
weights when training used EMA). Training adds its own state beside these keys: optimizer,
epoch, step, best_iou, rng, config, and `train_state_dict` (the raw weights) when EMA is on.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lane_seg.artifact import ModelInfo
from lane_seg.errors import LaneSegError
from lane_seg.models import build_model, check_input_size
from lane_seg.outputs import temp_path

CKPT_FORMAT = "lane_seg.ckpt/1"


def save_checkpoint(path: str | Path, model: nn.Module, info: ModelInfo, **extra: Any) -> None:
    """Write atomically (temporary name, then rename): a killed run never leaves half a file,
    and a failed write (a full disk) leaves the previous file as it was and no temporary one.

    torch serialises into memory and Python writes the bytes, so a failed write is an OSError
    naming `path` (torch's own writer reports it as a RuntimeError from its C++ code)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "format": CKPT_FORMAT,
        "info": info.to_metadata(),
        "state_dict": model.state_dict(),
        **extra,
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as f:
            f.write(buffer.getbuffer())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(path)) from None


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint with weights_only=True; a clear error for missing or foreign files."""
    path = Path(path)
    if not path.is_file():
        raise LaneSegError(f"checkpoint {path} not found; train one with `lane-seg train`")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise LaneSegError(_load_error(path, exc)) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CKPT_FORMAT:
        raise LaneSegError(
            f"{path} is not a lane_seg checkpoint (expected format {CKPT_FORMAT}); "
            "use a last.pt/best.pt written by `lane-seg train`"
        )
    return ckpt


def _load_error(path: Path, exc: Exception) -> str:
    """One line for a checkpoint torch cannot load, never torch's own text for a pickle that
    is not weights only: it advises loading it with weights_only=False, which no one should."""
    text = str(exc)
    found = re.search(r"GLOBAL ([\w.]+)", text)
    if found:
        return (
            f"refusing checkpoint {path}: it holds Python objects ({found.group(1)}) besides "
            "tensors, numbers, text, lists and dicts, and lane_seg never runs code from a file"
        )
    first = (text.strip().splitlines() or [type(exc).__name__])[0]
    detail = "" if "weights_only" in text else f" ({first})"
    return f"cannot read checkpoint {path}: truncated, corrupt or not a PyTorch file{detail}"


def model_from_checkpoint(
    ckpt: dict[str, Any], state_key: str = "state_dict", source: str = "checkpoint"
) -> tuple[nn.Module, ModelInfo]:
    """Rebuild the model from its ModelInfo and load the weights; returned in eval mode.
    `source` (the file) names it in errors."""
    if state_key == "ema_state_dict" and state_key not in ckpt:
        state_key = "state_dict"  # EMA weights are stored as state_dict (module docstring)
    info = ModelInfo.from_metadata(ckpt["info"], source=source)
    model = build_model(info.arch, **info.model_config)
    check_input_size(model, info.preprocess.height, info.preprocess.width)
    model.load_state_dict(ckpt[state_key])
    return model.eval(), info


def load_model(path: str | Path) -> tuple[nn.Module, ModelInfo]:
    """Checkpoint path -> (model in eval mode, ModelInfo).

    `state_dict` always holds the weights to deploy: the EMA weights when training kept an EMA
    (those are the ones validated and selected for best.pt), else the trained weights.
    """
    return model_from_checkpoint(load_checkpoint(path), source=str(path))
