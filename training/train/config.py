"""Training configuration: one YAML file per run (training/configs/<model>.yaml).

    model:   {name: unet, base: 16, depth: 4}          # any other keys go to build_model
    data:    {sources: [{root: data/sim, weight: 1.0}], height: 256, width: 512, ...}
    augment: {hflip: 0.5, scale: [0.85, 1.25], ...}     # AugmentConfig fields, or `false`
    loss:    {name: bce_dice, bce_weight: 1.0, dice_weight: 1.0}
    optim:   {lr: 0.002, weight_decay: 0.0001, warmup_steps: 100, min_lr_ratio: 0.02, ...}
    train:   {epochs: 10, batch_size: 8, seed: 0, ema: 0.0, out: runs/unet, ...}

Unknown keys are errors (a typo must not silently fall back to a default). Relative data roots
and `out` are resolved against the current directory.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lane_seg.artifact import LABELS, check_input_bounds
from lane_seg.errors import LaneSegError
from lane_seg.preprocess import PreprocessConfig
from lane_seg.settings import from_mapping, read_yaml, setting
from lane_seg.training.train.augment import AugmentConfig


@dataclass
class ModelSection:
    name: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Source:
    root: str
    weight: float = 1.0


@dataclass
class DataSection:
    sources: list[Source]
    height: int = 256
    width: int = 512
    resize: str = "stretch"
    train_split: str = "train"
    val_split: str = "val"
    val_limit: int = 0  # 0 = every val sample
    crop_height: int = 0  # train on random crops of the input-size frame (0 = whole frame)
    crop_width: int = 0
    cache: bool = True  # keep input-size frames in memory after the first read
    workers: int = 0
    labels: str = setting("paint", "label convention of the sources", choices=LABELS)


@dataclass
class LossSection:
    name: str = "bce_dice"
    bce_weight: float = 1.0
    dice_weight: float = 1.0
    smooth: float = 1.0


@dataclass
class OptimSection:
    lr: float = 2e-3
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 100
    min_lr_ratio: float = 0.02  # cosine decays to lr * min_lr_ratio
    grad_clip: float = 1.0  # max global grad norm; 0 = off


@dataclass
class TrainSection:
    epochs: int = 10
    batch_size: int = 8
    steps_per_epoch: int = 0  # 0 = one pass over the (weighted) train set
    seed: int = 0
    ema: float = 0.0  # EMA decay of the weights, e.g. 0.999; 0 = off
    out: str = "runs/train"
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # torch intra-op threads; 0 = torch's default
    init_from: str = ""  # start from this checkpoint's weights (fine-tuning); fresh optimizer


@dataclass
class TrainConfig:
    model: ModelSection
    data: DataSection
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)
    loss: LossSection = field(default_factory=LossSection)
    optim: OptimSection = field(default_factory=OptimSection)
    train: TrainSection = field(default_factory=TrainSection)

    @property
    def crop(self) -> tuple[int, int] | None:
        d = self.data
        return (d.crop_height, d.crop_width) if d.crop_height and d.crop_width else None

    @property
    def preprocess(self) -> PreprocessConfig:
        return PreprocessConfig(
            height=self.data.height, width=self.data.width, resize=self.data.resize
        )

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
    unknown = sorted(set(raw) - {"model", "data", "augment", "loss", "optim", "train"})
    if unknown:
        raise LaneSegError(f"{where}: unknown sections {unknown}")
    model = dict(raw.get("model") or {})
    if "name" not in model:
        raise LaneSegError(f"{where}: model.name is required (unet, enet, deeplabv3plus, ...)")
    data = dict(raw.get("data") or {})
    sources = data.pop("sources", None)
    if not sources:
        raise LaneSegError(f"{where}: data.sources needs at least one {{root: DIR, weight: W}}")
    data["sources"] = [  # plain strings are roots with weight 1
        Source(s) if isinstance(s, str) else _section(Source, s, f"{where}: data.sources")
        for s in sources
    ]
    if any(s.weight <= 0 for s in data["sources"]):
        raise LaneSegError(f"{where}: data.sources weights must be positive")
    parsed_sources = data.pop("sources")
    rest = _section(DataSection, {**data, "sources": []}, f"{where}: data")
    rest.sources = parsed_sources
    aug_raw = raw.get("augment", {})
    augment = None if aug_raw is False else _section(AugmentConfig, aug_raw, f"{where}: augment")
    cfg = TrainConfig(
        model=ModelSection(model.pop("name"), model),
        data=rest,
        augment=augment,
        loss=_section(LossSection, raw.get("loss"), f"{where}: loss"),
        optim=_section(OptimSection, raw.get("optim"), f"{where}: optim"),
        train=_section(TrainSection, raw.get("train"), f"{where}: train"),
    )
    _validate(cfg, where)
    return cfg


def _validate(cfg: TrainConfig, where: str) -> None:
    t, o = cfg.train, cfg.optim
    if t.epochs < 1 or t.batch_size < 1:
        raise LaneSegError(f"{where}: train.epochs and train.batch_size must be >= 1")
    if not 0.0 <= t.ema < 1.0:
        raise LaneSegError(f"{where}: train.ema must be in [0, 1)")
    if o.lr <= 0 or not 0 <= o.min_lr_ratio <= 1:
        raise LaneSegError(f"{where}: optim.lr must be > 0 and min_lr_ratio in [0, 1]")
    d = cfg.data
    check_input_bounds({"data.height": d.height, "data.width": d.width}, where)
    if (d.crop_height or d.crop_width) and not (
        0 < d.crop_height <= d.height and 0 < d.crop_width <= d.width
    ):
        raise LaneSegError(f"{where}: data.crop_height/crop_width must fit inside height/width")
    try:
        cfg.preprocess  # noqa: B018 (validates resize mode)
    except ValueError as exc:
        raise LaneSegError(f"{where}: data: {exc}") from exc


def load_config(path: str | Path) -> TrainConfig:
    path = Path(path)
    if not path.is_file():
        raise LaneSegError(f"config {path} not found; see training/configs/ for examples")
    return config_from_dict(read_yaml(path, "training config"), str(path))
