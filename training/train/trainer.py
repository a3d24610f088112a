"""Training loop: `lane-seg train --config training/configs/unet.yaml`, or under torchrun

    torchrun --nproc_per_node 2 -m lane_seg.cli train --config training/configs/unet.yaml

DDP uses gloo on CPU and nccl on GPU, a DistributedSampler (or its weighted counterpart for
mixed datasets), and only rank 0 writes files. Each epoch ends with validation (lane IoU at
probability 0.5, `lane_seg.metrics`), `last.pt`, and `best.pt` when the validation lane IoU
improved. `--resume` restores model, optimizer, EMA, step counter and RNG states from
`last.pt`; with augmentations seeded per (seed, epoch, index) the continued run reproduces the
losses of an uninterrupted one. A run killed in the middle of an epoch (Ctrl-C, SIGTERM, even
SIGKILL) resumes from the end of its last completed epoch: that epoch's partial steps are run
again and the log rows past `last.pt` are dropped.

Files in train.out: config.yaml, last.pt, best.pt, epochs.csv, steps.csv, curves.png.
"""

from __future__ import annotations

import csv
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import yaml
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from lane_seg.artifact import ModelInfo
from lane_seg.data.importers.real import real_frames_of
from lane_seg.errors import LaneSegError
from lane_seg.metrics import MetricAccumulator, batch_confusion
from lane_seg.models import build_model, check_input_size, complexity
from lane_seg.models.checkpoint import load_checkpoint, save_checkpoint
from lane_seg.outputs import lock_folder, naming, remove_stale_temps, temp_path
from lane_seg.training.train.augment import style_bank
from lane_seg.training.train.config import TrainConfig
from lane_seg.training.train.data import (
    SegmentationSet,
    WeightedDistributedSampler,
    build_sampler,
    gather_samples,
)
from lane_seg.training.train.distill import Teacher, TeacherFrames
from lane_seg.training.train.losses import build_loss, distill_loss
from lane_seg.training.train.schedule import ModelEMA, lr_factor, seed_everything

EPOCH_FIELDS = [
    "epoch",
    "step",
    "lr",
    "train_loss",
    "val_loss",
    "val_lane_iou",
    "val_dice",
    "val_precision",
    "val_recall",
    "val_miou",
    "epoch_s",
    "elapsed_s",
    "cpu_s",  # CPU time of the training process (rank 0), summed over resumed runs
]


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def setup_distributed(device: str = "auto") -> DistContext:
    """Join the torchrun process group when WORLD_SIZE > 1 (nccl on GPU, gloo on CPU)."""
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise LaneSegError("train.device is cuda but no CUDA device is available; use cpu")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1 and not dist.is_initialized():
        return DistContext(0, 1, torch.device("cuda" if use_cuda else "cpu"))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    rank = dist.get_rank()
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", rank % torch.cuda.device_count()))
        torch.cuda.set_device(local)
        return DistContext(rank, dist.get_world_size(), torch.device("cuda", local))
    return DistContext(rank, dist.get_world_size(), torch.device("cpu"))


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on biases and norm scales (1-D parameters)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def _train_data_identity(cfg: TrainConfig, n_train: int) -> str:
    parts = [f"{s.root} (weight {s.weight:g})" for s in cfg.data.sources]
    text = f"{'; '.join(parts)}; split {cfg.data.train_split}, {n_train} samples"
    text += f"; fine-tuned from {cfg.train.init_from}" if cfg.train.init_from else ""
    if cfg.distill:  # training/train/distill.py
        frames = f" and unlabelled frames {list(cfg.distill.frames)}" if cfg.distill.frames else ""
        d = cfg.distill
        flip = ", mirror-averaged" if d.flip else ""
        text += f"; distilled from {d.teacher} (weight {d.weight:g}{flip}){frames}"
    return text


class Run:
    """State of one training run (one process of a distributed run)."""

    def __init__(self, cfg: TrainConfig, ctx: DistContext, progress: bool = True) -> None:
        self.cfg, self.ctx, self.progress = cfg, ctx, progress and ctx.is_main
        self.out = Path(cfg.train.out)
        t = cfg.train
        if t.threads:
            torch.set_num_threads(t.threads)
        seed_everything(t.seed)  # same initial weights on every rank (DDP also broadcasts)
        pre = cfg.preprocess
        labels = cfg.data.labels
        dc = cfg.distill  # its teacher is checked before any data is read
        self.teacher = Teacher(dc.teacher, dc.threads or t.threads, dc.flip) if dc else None
        train_samples, weights = gather_samples(cfg.data.sources, cfg.data.train_split, labels)
        val_samples, _ = gather_samples(cfg.data.sources, cfg.data.val_split)
        self.real_frames = real_frames_of(train_samples)
        if cfg.augment and cfg.augment.style:  # find the style frames now, not mid-epoch
            style_bank(cfg.augment.style_frames, pre.height, pre.width)
        if cfg.data.val_limit:
            val_samples = val_samples[: cfg.data.val_limit]
        self.train_set = SegmentationSet(
            train_samples,
            pre,
            cfg.augment,
            seed=t.seed,
            cache=cfg.data.cache,
            crop=cfg.crop,
            teacher=self.teacher,
        )
        self.val_set = SegmentationSet(val_samples, pre, None, cache=cfg.data.cache)
        per_epoch = t.steps_per_epoch * t.batch_size * ctx.world_size
        self.sampler = build_sampler(
            weights,
            len(cfg.data.sources),
            per_epoch,
            ctx.rank,
            ctx.world_size,
            t.seed,
            self.train_set,
        )
        self.steps_per_epoch = len(self.sampler) // t.batch_size
        if self.steps_per_epoch == 0:
            raise LaneSegError(
                f"{len(train_samples)} training samples give no full batch of {t.batch_size} "
                f"per process; lower train.batch_size or add data"
            )
        self.total_steps = self.steps_per_epoch * t.epochs
        self.real_set, self.real_sampler = None, None
        if dc and self.teacher and dc.frames and dc.batch_size:
            self.real_set = TeacherFrames(
                dc.frames, self.teacher, pre, cfg.augment, t.seed, dc.video_stride
            )
            self.real_sampler = WeightedDistributedSampler(
                [1.0] * len(self.real_set),
                self.steps_per_epoch * dc.batch_size * ctx.world_size,
                ctx.rank,
                ctx.world_size,
                t.seed,
            )

        self.model = build_model(cfg.model.name, **cfg.model.options)
        check_input_size(self.model, pre.height, pre.width)
        if cfg.crop:
            check_input_size(self.model, *cfg.crop)
        if t.init_from:
            self._init_from(Path(t.init_from))
        self.complexity = complexity(self.model, pre.height, pre.width)
        self.model.to(ctx.device)
        self.ema = ModelEMA(self.model, t.ema) if t.ema else None
        o = cfg.optim
        self.optimizer = torch.optim.AdamW(
            _param_groups(self.model, o.weight_decay), lr=o.lr, betas=o.betas
        )
        self.loss_fn = build_loss(
            cfg.loss.name,
            bce_weight=cfg.loss.bce_weight,
            dice_weight=cfg.loss.dice_weight,
            smooth=cfg.loss.smooth,
        )
        self.ddp = (
            DistributedDataParallel(
                self.model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None
            )
            if ctx.distributed
            else self.model
        )
        self.epoch, self.step, self.best_iou, self.best_epoch = 0, 0, -1.0, 0
        self.last_iou = "-"  # shown in the progress bar
        self.elapsed = 0.0
        self.cpu = 0.0
        self.n_train = len(train_samples)

    # ---- checkpoints -------------------------------------------------------------------

    def _init_from(self, path: Path) -> None:
        """Fine-tuning: the deployable weights of another run, same architecture and options."""
        ckpt = load_checkpoint(path)
        info = ModelInfo.from_metadata(ckpt["info"], source=str(path))
        if (info.arch, info.model_config) != (self.cfg.model.name, self.cfg.model.options):
            raise LaneSegError(
                f"train.init_from {path} holds {info.arch} {info.model_config}, the config "
                f"builds {self.cfg.model.name} {self.cfg.model.options}"
            )
        self.model.load_state_dict(ckpt["state_dict"])

    def eval_model(self) -> nn.Module:
        return self.ema.module if self.ema else self.model

    def model_info(self, metrics: dict[str, Any]) -> ModelInfo:
        return ModelInfo(
            arch=self.cfg.model.name,
            model_config=self.cfg.model.options,
            preprocess=self.cfg.preprocess,
            train_data=_train_data_identity(self.cfg, self.n_train),
            metrics=metrics,
            labels=self.cfg.data.labels,
            real_frames=self.real_frames,
        )

    def _rng_states(self) -> list[torch.Tensor]:
        state = [torch.get_rng_state()]
        if self.ctx.device.type == "cuda":
            state.append(torch.cuda.get_rng_state(self.ctx.device))
        if not self.ctx.distributed:
            return state
        gathered: list[Any] = [None] * self.ctx.world_size
        dist.all_gather_object(gathered, [s.tolist() for s in state])
        return [torch.tensor(s, dtype=torch.uint8) for rank in gathered for s in rank]

    def save(self, paths: list[Path], metrics: dict[str, Any]) -> None:
        """Every rank calls this (RNG states are gathered); only rank 0 writes."""
        rng = self._rng_states()
        if not self.ctx.is_main:
            return
        extra: dict[str, Any] = {
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "best_iou": self.best_iou,
            "best_epoch": self.best_epoch,  # equal to epoch: this file is best.pt's twin
            "elapsed_s": self.elapsed,
            "cpu_s": self.cpu,
            "rng": rng,
            "world_size": self.ctx.world_size,
            "config": self.cfg.to_dict(),
            "eval_weights": "ema" if self.ema else "raw",
        }
        if self.ema:  # state_dict holds the weights to deploy (EMA); raw ones to resume
            extra["train_state_dict"] = self.model.state_dict()
            extra["ema_updates"] = self.ema.updates
        for path in paths:
            save_checkpoint(path, self.eval_model(), self.model_info(metrics), **extra)

    def resume(self, path: Path) -> None:
        ckpt = load_checkpoint(path)
        saved_model = ckpt.get("config", {}).get("model")
        if saved_model != self.cfg.to_dict()["model"]:
            raise LaneSegError(
                f"{path} was trained with model {saved_model}, the config says "
                f"{self.cfg.to_dict()['model']}; use the original config or a new train.out"
            )
        if self.ema:
            self.model.load_state_dict(ckpt["train_state_dict"])
            self.ema.module.load_state_dict(ckpt["state_dict"])
            self.ema.updates = int(ckpt["ema_updates"])
        else:
            self.model.load_state_dict(ckpt.get("train_state_dict", ckpt["state_dict"]))
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.epoch, self.step = int(ckpt["epoch"]), int(ckpt["step"])
        self.best_iou, self.elapsed = float(ckpt["best_iou"]), float(ckpt["elapsed_s"])
        self.best_epoch = int(ckpt.get("best_epoch", _best_epoch_of_old(ckpt)))
        self.cpu = float(ckpt.get("cpu_s", 0.0))
        per_rank = 2 if self.ctx.device.type == "cuda" else 1
        states = ckpt["rng"]
        if int(ckpt.get("world_size", 1)) == self.ctx.world_size and len(states) == (
            per_rank * self.ctx.world_size
        ):
            mine = states[self.ctx.rank * per_rank : (self.ctx.rank + 1) * per_rank]
            torch.set_rng_state(mine[0])
            if per_rank == 2:
                torch.cuda.set_rng_state(mine[1], self.ctx.device)

    # ---- one epoch ---------------------------------------------------------------------

    def _loader(
        self, dataset: Any, sampler: Any, shuffle_free: bool, batch_size: int = 0
    ) -> DataLoader:
        workers = self.cfg.data.workers
        return DataLoader(
            dataset,
            batch_size=batch_size or self.cfg.train.batch_size,
            sampler=sampler,
            shuffle=False,
            drop_last=not shuffle_free,
            num_workers=workers,
            pin_memory=self.ctx.device.type == "cuda",
        )

    def train_epoch(self, steps_log: csv.writer | None) -> float:
        self.train_set.set_epoch(self.epoch)
        self.sampler.set_epoch(self.epoch)
        self.ddp.train()
        loader = self._loader(self.train_set, self.sampler, shuffle_free=False)
        real = None
        if self.real_set is not None and self.cfg.distill:
            self.real_set.set_epoch(self.epoch)
            self.real_sampler.set_epoch(self.epoch)
            batch = self.cfg.distill.batch_size
            real = iter(self._loader(self.real_set, self.real_sampler, False, batch))
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(
                total=self.steps_per_epoch,
                desc=f"epoch {self.epoch + 1}/{self.cfg.train.epochs}",
                dynamic_ncols=True,
                file=sys.stderr,
            )
        o = self.cfg.optim
        total, count = 0.0, 0
        for batch in loader:
            lr = o.lr * lr_factor(self.step, self.total_steps, o.warmup_steps, o.min_lr_ratio)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            loss = self.batch_loss(batch, real)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if o.grad_clip:
                nn.utils.clip_grad_norm_(self.model.parameters(), o.grad_clip)
            self.optimizer.step()
            if self.ema:
                self.ema.update(self.model)
            value = float(loss.detach())
            total, count = total + value, count + 1
            self.step += 1
            if steps_log is not None:
                with naming(self.out / "steps.csv"):
                    steps_log.writerow([self.epoch + 1, self.step, f"{lr:.6g}", f"{value:.6f}"])
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{value:.4f}", lr=f"{lr:.2e}", val_iou=self.last_iou)
        if bar is not None:
            bar.close()
        mean = torch.tensor([total, count], dtype=torch.float64, device=self.ctx.device)
        if self.ctx.distributed:
            dist.all_reduce(mean)
        return float(mean[0] / max(1.0, float(mean[1])))

    def batch_loss(self, batch: list[torch.Tensor], real: Any = None) -> torch.Tensor:
        """The configured loss on (input, label); with a teacher, plus `distill.weight` x BCE
        against its probabilities on these frames and on a batch of unlabelled real frames
        (one forward pass over both, so BatchNorm sees the real frames too)."""
        dev = self.ctx.device
        x, y = batch[0].to(dev, non_blocking=True), batch[1].to(dev)
        if len(batch) == 2 or not self.cfg.distill:
            return self.loss_fn(self.ddp(x), y)
        inputs, soft = [x], [batch[2]]
        if real is not None:
            xr, tr = next(real)
            inputs.append(xr)
            soft.append(tr)
        logits = self.ddp(torch.cat(inputs).to(dev))
        kd = distill_loss(logits, torch.cat(soft).to(dev))
        return self.loss_fn(logits[: len(x)], y) + self.cfg.distill.weight * kd

    @torch.inference_mode()
    def validate(self) -> dict[str, float]:
        """Validation on rank 0's process: eval mode, inference mode, threshold 0.5."""
        model = self.eval_model().eval()
        acc = MetricAccumulator()
        loss_sum, batches = 0.0, 0
        for x, y in self._loader(self.val_set, None, shuffle_free=True):
            x, y = x.to(self.ctx.device), y.to(self.ctx.device)
            logits = model(x)
            loss_sum += float(self.loss_fn(logits, y))
            batches += 1
            for counts in batch_confusion(logits, y):
                acc.add(counts)
        if not batches:
            return {}
        s = acc.summary()
        return {
            "val_loss": loss_sum / batches,
            "val_lane_iou": s["lane_iou"],
            "val_dice": s["dice"],
            "val_precision": s["precision"],
            "val_recall": s["recall"],
            "val_miou": s["miou"],
        }


def _best_epoch_of_old(ckpt: dict[str, Any]) -> int:
    """A checkpoint written before `best_epoch` was recorded: its own epoch if its score is the
    best one it records (then it is best.pt's twin), else 0 (unknown)."""
    info = ModelInfo.from_metadata(ckpt["info"], source="last.pt")
    own = info.metrics.get("val_lane_iou")
    return int(ckpt["epoch"]) if own is not None and own == round(ckpt["best_iou"], 6) else 0


def _open_logs(out: Path, step: int, epoch: int) -> tuple[Any, Any]:
    """Open epochs.csv/steps.csv for appending, keeping only the rows up to the resumed point
    (a killed run may have left rows past it, or half a row)."""
    files = []
    for name, header, key, limit in (
        ("epochs.csv", EPOCH_FIELDS, "epoch", epoch),
        ("steps.csv", ["epoch", "step", "lr", "loss"], "step", step),
    ):
        path = out / name
        rows: list[dict[str, str]] = []
        if path.exists() and (step or epoch):
            with open(path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if _row_through(r, key, limit)]
        with naming(path), open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=header)
            w.writeheader()
            w.writerows(rows)
        files.append(open(path, "a", newline=""))  # noqa: SIM115 (closed by the caller)
    return files[0], files[1]


def _row_through(row: dict[str, str | None], key: str, limit: int) -> bool:
    """A whole log row (no field missing) whose `key` is at most `limit`."""
    if None in row.values():
        return False
    try:
        return int(row[key] or "") <= limit
    except ValueError:
        return False


def plot_curves(epochs_csv: Path, out_png: Path) -> None:
    """Training curves (loss, validation lane IoU) from epochs.csv, drawn with matplotlib Agg."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(epochs_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    ep = [int(r["epoch"]) for r in rows]

    def col(name: str) -> list[float]:
        return [float(r[name]) if r[name] else float("nan") for r in rows]

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    a.plot(ep, col("train_loss"), "o-", label="train")
    a.plot(ep, col("val_loss"), "o-", label="val")
    a.set_xlabel("epoch")
    a.set_ylabel("loss")
    a.legend()
    a.grid(alpha=0.3)
    b.plot(ep, col("val_lane_iou"), "o-", label="lane IoU")
    b.plot(ep, col("val_dice"), "o-", label="Dice")
    b.set_xlabel("epoch")
    b.set_ylabel("validation (p > 0.5)")
    b.set_ylim(0, 1)
    b.legend()
    b.grid(alpha=0.3)
    fig.tight_layout()
    tmp = out_png.with_name(f".{out_png.name}.tmp.png")
    try:
        with naming(out_png):
            fig.savefig(tmp, dpi=90)
            os.replace(tmp, out_png)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)


def train(
    cfg: TrainConfig,
    resume: bool = False,
    ctx: DistContext | None = None,
    progress: bool = True,
    stop_after: int = 0,
) -> Run:
    """Run (or continue) training as configured; returns the Run.

    `stop_after` > 0 pauses after that many epochs of this call, as if the run had been killed
    there; `resume=True` continues it with an unchanged schedule.
    """
    ctx = ctx or setup_distributed(cfg.train.device)
    out = Path(cfg.train.out)
    last = out / "last.pt"
    if resume and not last.is_file():
        raise LaneSegError(f"--resume: {last} not found; start without --resume")
    if not resume and last.is_file():
        raise LaneSegError(
            f"{out} already holds a run (last.pt); continue it with --resume, "
            "or choose a new train.out / --out"
        )
    if ctx.is_main:
        lock_folder(out)  # checked before any data is read; this run's alone (lane_seg.outputs)
        stale = remove_stale_temps(out) if out.is_dir() else []
        if stale:
            names = ", ".join(p.name for p in stale)
            print(f"removed what killed runs left half-written: {names}", file=sys.stderr)
    run = Run(cfg, ctx, progress)
    if resume:
        run.resume(last)
        if ctx.is_main:
            restore_best(out, run.best_epoch, run.epoch)
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        with naming(out / "config.yaml"):
            (out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        c = run.complexity
        print(
            f"{cfg.model.name}: {c.params:,} params, {c.gmacs:.3f} GMACs at "
            f"{cfg.data.width}x{cfg.data.height}; {run.n_train} train / {len(run.val_set)} val "
            f"samples; {run.steps_per_epoch} steps/epoch x {cfg.train.epochs} epochs on "
            f"{ctx.device} x{ctx.world_size}"
            + (f"; resuming after epoch {run.epoch}" if resume else ""),
            file=sys.stderr,
        )
        if cfg.data.cache and cfg.data.workers:
            run.train_set.preload(progress)
            run.val_set.preload(progress)
        epochs_f, steps_f = _open_logs(out, run.step, run.epoch)
    ctx.barrier()
    stop_at = min(cfg.train.epochs, run.epoch + stop_after) if stop_after else cfg.train.epochs
    try:
        while run.epoch < stop_at:
            t0, cpu0 = time.perf_counter(), time.process_time()
            steps_log = csv.writer(steps_f) if ctx.is_main else None
            train_loss = run.train_epoch(steps_log)
            metrics = run.validate() if ctx.is_main else {}
            run.epoch += 1
            run.elapsed += time.perf_counter() - t0
            run.cpu += time.process_time() - cpu0
            improved = ctx.is_main and metrics.get("val_lane_iou", -1.0) > run.best_iou
            if improved:
                run.best_iou, run.best_epoch = metrics["val_lane_iou"], run.epoch
            run.last_iou = f"{metrics.get('val_lane_iou', float('nan')):.3f}"
            if ctx.is_main:  # logs first: a resume drops rows past the checkpoint it loads
                lr = run.optimizer.param_groups[0]["lr"]
                row = {"epoch": run.epoch, "step": run.step, "lr": f"{lr:.6g}"}
                row |= {
                    "train_loss": f"{train_loss:.6f}",
                    "epoch_s": f"{time.perf_counter() - t0:.1f}",
                }
                row |= {"elapsed_s": f"{run.elapsed:.1f}", "cpu_s": f"{run.cpu:.1f}"}
                row |= {k: f"{v:.6f}" for k, v in metrics.items()}
                with naming(out / "epochs.csv"):
                    csv.DictWriter(epochs_f, fieldnames=EPOCH_FIELDS).writerow(row)
                    epochs_f.flush()
                with naming(out / "steps.csv"):
                    steps_f.flush()
            ckpt_metrics = {k: round(v, 6) for k, v in metrics.items()} | {"epoch": run.epoch}
            # last.pt first: until best.pt is written too, last.pt is the best one's twin and
            # a resume copies it (restore_best).
            run.save([last, out / "best.pt"] if improved else [last], ckpt_metrics)
            if ctx.is_main:
                plot_curves(out / "epochs.csv", out / "curves.png")
                print(
                    f"epoch {run.epoch}: train loss {train_loss:.4f}, val loss "
                    f"{metrics.get('val_loss', float('nan')):.4f}, val lane IoU "
                    f"{metrics.get('val_lane_iou', float('nan')):.4f} (best {run.best_iou:.4f})",
                    file=sys.stderr,
                )
            ctx.barrier()
    finally:
        if ctx.is_main:
            with naming(out / "epochs.csv"):
                epochs_f.close()
            with naming(out / "steps.csv"):
                steps_f.close()
    return run


def restore_best(out: Path, best_epoch: int, last_epoch: int) -> None:
    """Make best.pt the checkpoint of the best epoch `last.pt` records, before a resumed run
    goes on: a run killed between writing last.pt and best.pt (train, which writes last.pt
    first) has a last.pt that is the best epoch's checkpoint and a best.pt that is older or
    missing; the copy is atomic, as every checkpoint write is."""
    last, best = out / "last.pt", out / "best.pt"
    if not best_epoch or best_epoch != last_epoch:
        return  # last.pt is not the best epoch's twin: best.pt was written after it
    if best.is_file() and int(load_checkpoint(best).get("epoch", -1)) == best_epoch:
        return
    tmp = temp_path(best)
    try:
        with naming(best):
            shutil.copyfile(last, tmp)
            os.replace(tmp, best)
    finally:
        tmp.unlink(missing_ok=True)
    print(f"{best}: restored from last.pt (epoch {best_epoch}, the best so far)", file=sys.stderr)


def run_training(
    cfg: TrainConfig, resume: bool = False, progress: bool = True, stop_after: int = 0
) -> Run:
    """`train` as one process of a run: alone, or one rank under torchrun (it joins the process
    group and leaves it on every exit path); rank 0 prints the summary line."""
    ctx = setup_distributed(cfg.train.device)
    try:
        run = train(cfg, resume=resume, ctx=ctx, progress=progress, stop_after=stop_after)
        if ctx.is_main:
            print(
                f"done: best val lane IoU {run.best_iou:.4f}; {run.step} steps in "
                f"{run.elapsed:.0f} s; checkpoints in {cfg.train.out}"
            )
    finally:
        if ctx.distributed:
            dist.destroy_process_group()
    return run
