"""Training configuration: one YAML file per run (training/configs/<model>.yaml).

    model:   {name: unet, base: 16, depth: 4}          # any other keys go to build_model
    data:    {sources: [{root: data/sim, weight: 1.0}], height: 256, width: 512, ...}
    augment: {hflip: 0.5, scale: [0.85, 1.25], ...}     # AugmentConfig fields, or `false`
    loss:    {name: bce_dice, bce_weight: 1.0, dice_weight: 1.0}
    optim:   {lr: 0.002, weight_decay: 0.0001, warmup_steps: 100, min_lr_ratio: 0.02, ...}
    train:   {epochs: 10, batch_size: 8, seed: 0, ema: 0.0, out: runs/unet, ...}
    distill: {teacher: models/lane_unet_int8.onnx, weight: 1.0, frames: [GLOB, ...]}  # optional

Unknown keys are errors (a typo must not silently fall back to a default). Relative data roots
and `out` are resolved against the current directory.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lane_seg.artifact import LABELS
from lane_seg.errors import LaneSegError
from lane_seg.preprocess import MAX_CROP_TOP, RESIZE_MODES, PreprocessConfig
from lane_seg.settings import REQUIRED, from_mapping, read_yaml, setting
from lane_seg.sizes import MAX_INPUT_SIDE
from lane_seg.training.train.augment import AugmentConfig


@dataclass
class ModelSection:
    name: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Source:
    root: str
    weight: float = setting(1.0, "share of this source in the train draws", range=(1e-6, 1e6))
    limit: int = setting(
        0, "train on this many of its train samples (a seeded choice); 0 = all", range=(0, 10**9)
    )


LOSSES = ("bce", "dice", "bce_dice")  # losses.build_loss
SPLITS = ("train", "val", "test")  # docs/architecture.md, contract 1
MAX_WORKERS = 256


@dataclass
class DataSection:
    sources: list[Source]
    height: int = setting(256, "model input height, px", range=(1, MAX_INPUT_SIDE))
    width: int = setting(512, "model input width, px", range=(1, MAX_INPUT_SIDE))
    resize: str = setting("stretch", "to the input size", choices=RESIZE_MODES)
    crop_top: float = setting(
        0.0, "share of the frame's height cut from the top first", range=(0.0, MAX_CROP_TOP)
    )
    train_split: str = setting("train", "split trained on", choices=SPLITS)
    val_split: str = setting("val", "split validated on", choices=SPLITS)
    val_limit: int = setting(0, "first N val samples; 0 = every one", range=(0, 10**9))
    crop_height: int = setting(
        0, "train on random crops of the input-size frame; 0 = whole", range=(0, MAX_INPUT_SIDE)
    )
    crop_width: int = setting(0, "crop width, px; 0 = whole frame", range=(0, MAX_INPUT_SIDE))
    cache: bool = True  # keep input-size frames in memory after the first read
    workers: int = setting(0, "data loader processes; 0 = in this one", range=(0, MAX_WORKERS))
    labels: str = setting("paint", "label convention of the sources", choices=LABELS)


@dataclass
class LossSection:
    name: str = setting("bce_dice", "loss function", choices=LOSSES)
    bce_weight: float = setting(1.0, "weight of binary cross-entropy", range=(0.0, 100.0))
    dice_weight: float = setting(1.0, "weight of the soft Dice loss", range=(0.0, 100.0))
    smooth: float = setting(1.0, "Dice smoothing", range=(0.0, 1000.0))


@dataclass
class OptimSection:
    lr: float = setting(2e-3, "AdamW learning rate", range=(1e-9, 1.0))
    weight_decay: float = setting(1e-4, "AdamW weight decay", range=(0.0, 1.0))
    betas: tuple[float, float] = setting((0.9, 0.999), "AdamW betas", range=(0.0, 0.99999))
    warmup_steps: int = setting(100, "linear warm-up steps", range=(0, 10**9))
    min_lr_ratio: float = setting(0.02, "cosine decays to lr * min_lr_ratio", range=(0.0, 1.0))
    grad_clip: float = setting(1.0, "max global grad norm; 0 = off", range=(0.0, 1e6))


@dataclass
class TrainSection:
    epochs: int = setting(10, "epochs of the whole run", range=(1, 10**6))
    batch_size: int = setting(8, "samples per step and process", range=(1, 65536))
    steps_per_epoch: int = setting(
        0, "0 = one pass over the (weighted) train set", range=(0, 10**9)
    )
    seed: int = setting(0, "seed of weights, draws and augmentations", range=(0, 2**31 - 1))
    ema: float = setting(0.0, "EMA decay of the weights, e.g. 0.999; 0 = off", range=(0, 0.99999))
    out: str = "runs/train"
    device: str = setting("auto", "where to train", choices=("auto", "cpu", "cuda"))
    threads: int = setting(0, "torch intra-op threads; 0 = torch's default", range=(0, 1024))
    init_from: str = ""  # start from this checkpoint's weights (fine-tuning); fresh optimizer


@dataclass
class DistillSection:
    """Distillation from a trained model (training/train/distill.py): its sigmoid probabilities
    are soft labels on the simulator frames and on unlabelled real frames."""

    teacher: str = setting(REQUIRED, "teacher model, .onnx or .pt (its own preprocessing)")
    weight: float = setting(
        1.0, "weight of BCE against the teacher's probabilities", range=(0.0, 100.0)
    )
    frames: tuple[str, ...] = ()  # globs of unlabelled real frames (images or videos)
    batch_size: int = setting(2, "unlabelled real frames per step", range=(0, 65536))
    video_stride: int = setting(1, "every Nth frame of a video", range=(1, 10**6))
    threads: int = setting(0, "teacher threads; 0 = the runtime's default", range=(0, 1024))
    flip: bool = setting(False, "teacher: mean of its probabilities on the frame and its mirror")


@dataclass
class TrainConfig:
    model: ModelSection
    data: DataSection
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)
    loss: LossSection = field(default_factory=LossSection)
    optim: OptimSection = field(default_factory=OptimSection)
    train: TrainSection = field(default_factory=TrainSection)
    distill: DistillSection | None = None

    @property
    def crop(self) -> tuple[int, int] | None:
        d = self.data
        return (d.crop_height, d.crop_width) if d.crop_height and d.crop_width else None

    @property
    def preprocess(self) -> PreprocessConfig:
        d = self.data
        return PreprocessConfig(d.height, d.width, resize=d.resize, crop_top=d.crop_top)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["model"] = {"name": self.model.name, **self.model.options}
        d["augment"] = asdict(self.augment) if self.augment else False
        return d


def _section(cls: type, raw: Any, where: str) -> Any:
    return from_mapping(cls, {} if raw is None else raw, where)


def config_from_dict(raw: dict[str, Any], where: str = "config") -> TrainConfig:
    if not isinstance(raw, dict):
        raise LaneSegError(f"{where}: expected a YAML mapping at the top level")
    unknown = sorted(set(raw) - {"model", "data", "augment", "loss", "optim", "train", "distill"})
    if unknown:
        raise LaneSegError(f"{where}: unknown sections {unknown}")
    model = raw.get("model") or {}
    if not isinstance(model, dict):
        raise LaneSegError(f"{where}: model must be a mapping, got {model!r}")
    model = dict(model)
    if not isinstance(model.get("name"), str):
        raise LaneSegError(f"{where}: model.name is required (unet, enet, deeplabv3plus, ...)")
    data = raw.get("data") or {}
    if not isinstance(data, dict):
        raise LaneSegError(f"{where}: data must be a mapping, got {data!r}")
    rest = _section(DataSection, {**data, "sources": []}, f"{where}: data")
    rest.sources = _sources(data.get("sources"), where)
    aug_raw = raw.get("augment", {})
    augment = None if aug_raw is False else _section(AugmentConfig, aug_raw, f"{where}: augment")
    cfg = TrainConfig(
        model=ModelSection(model.pop("name"), model),
        data=rest,
        augment=augment,
        loss=_section(LossSection, raw.get("loss"), f"{where}: loss"),
        optim=_section(OptimSection, raw.get("optim"), f"{where}: optim"),
        train=_section(TrainSection, raw.get("train"), f"{where}: train"),
        distill=_distill(raw.get("distill"), where),
    )
    _validate(cfg, where)
    return cfg


def _distill(raw: Any, where: str) -> DistillSection | None:
    if raw is None or raw is False:
        return None
    return _section(DistillSection, raw, f"{where}: distill")


def _sources(sources: Any, where: str) -> list[Source]:
    """`data.sources`: a list of {root: DIR, weight: W}, or of plain roots (weight 1)."""
    if not sources or not isinstance(sources, list):
        raise LaneSegError(
            f"{where}: data.sources must be a list of at least one {{root: DIR, weight: W}} "
            f"or DIR, got {sources!r}"
        )
    return [
        Source(s) if isinstance(s, str) else _section(Source, s, f"{where}: data.sources")
        for s in sources
    ]


def _validate(cfg: TrainConfig, where: str) -> None:
    """What one field's range cannot say (each field's range is checked as it is read)."""
    d = cfg.data
    if (d.crop_height or d.crop_width) and not (
        0 < d.crop_height <= d.height and 0 < d.crop_width <= d.width
    ):
        raise LaneSegError(f"{where}: data.crop_height/crop_width must fit inside height/width")
    if cfg.distill and d.workers:
        raise LaneSegError(
            f"{where}: distill runs its teacher in the training process; set data.workers: 0"
        )
    if cfg.distill and cfg.crop:
        raise LaneSegError(f"{where}: distill trains on whole frames; drop data.crop_height/width")


def load_config(path: str | Path) -> TrainConfig:
    path = Path(path)
    if not path.is_file():
        raise LaneSegError(f"config {path} not found; see training/configs/ for examples")
    return config_from_dict(read_yaml(path, "training config"), str(path))
