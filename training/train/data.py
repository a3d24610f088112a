"""Training data: lane_seg datasets -> aligned, augmented, normalised tensors.

Several datasets can be mixed (e.g. simulator + imported real frames): each source has a
sampling weight, and a sample of source i is drawn with probability weight_i / len(source_i)
(normalised), so a small real set is not drowned by a large simulator set.

Every frame goes through `lane_seg.preprocess` (resize to the input size, then the very same
`normalize` the node uses); augmentations happen between those two steps. The random draws for
sample `index` in epoch `epoch` come from `np.random.default_rng((seed, epoch, index))`, so they
are the same with any number of workers or processes and after `--resume`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler

from lane_seg.data import real_sources
from lane_seg.data.dataset import Sample, load_dataset
from lane_seg.errors import LaneSegError
from lane_seg.preprocess import PreprocessConfig, normalize, resize_image, resize_mask
from lane_seg.training.train.augment import AugmentConfig, augment
from lane_seg.training.train.config import Source
from lane_seg.training.train.distill import Teacher, augmented_pair


class SegmentationSet(Dataset):
    """Samples from one or more datasets, at the model's input size."""

    def __init__(
        self,
        samples: Sequence[Sample],
        cfg: PreprocessConfig,
        augment_cfg: AugmentConfig | None = None,
        seed: int = 0,
        cache: bool = True,
        crop: tuple[int, int] | None = None,
        teacher: Teacher | None = None,
    ) -> None:
        self.samples = list(samples)
        self.teacher = teacher  # items get its probabilities too (training/train/distill.py)
        self.soft: dict[int, np.ndarray] = {}
        self.crop = crop
        self.cfg = cfg
        self.augment_cfg = augment_cfg
        self.seed = seed
        self.epoch = 0
        self.cache: dict[int, tuple[np.ndarray, np.ndarray]] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def frame(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """RGB uint8 and 0/255 mask at the input size (through preprocess resize)."""
        if self.cache is not None and index in self.cache:
            return self.cache[index]
        rgb, mask = self.samples[index].load()
        pair = resize_image(rgb, self.cfg), resize_mask(mask, self.cfg)
        if self.cache is not None:
            self.cache[index] = pair
        if self.teacher is not None and index not in self.soft:
            self.soft[index] = self.teacher.soft_mask(rgb, self.cfg)
        return pair

    def preload(self, progress: bool = False) -> None:
        """Fill the cache in this process, so forked DataLoader workers share it."""
        if self.cache is None:
            return
        indices = range(len(self))
        if progress:
            from tqdm import tqdm

            indices = tqdm(indices, desc="loading frames", leave=False)
        for i in indices:
            self.frame(i)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        image, mask = self.frame(index)
        rng = np.random.default_rng((self.seed, self.epoch, index))
        if self.teacher is not None:
            return augmented_pair(image, mask, self.soft[index], rng, self.augment_cfg, self.cfg)
        if self.augment_cfg is not None:
            image, mask = augment(image, mask, rng, self.augment_cfg)
        if self.crop:
            image, mask = random_crop(image, mask, self.crop, rng)
        x = torch.from_numpy(normalize(image, self.cfg))
        y = torch.from_numpy((mask > 127).astype(np.float32))[None]
        return x, y


def random_crop(
    image: np.ndarray, mask: np.ndarray, size: tuple[int, int], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The same random (h, w) window of image and mask.

    Training on crops of the full-resolution input keeps thin far-away markings at the
    resolution the model sees at inference, for a fraction of the compute of whole frames; the
    models are fully convolutional, so they run on the whole frame afterwards.
    """
    h, w = size
    y = int(rng.integers(0, mask.shape[0] - h + 1))
    x = int(rng.integers(0, mask.shape[1] - w + 1))
    return image[y : y + h, x : x + w], mask[y : y + h, x : x + w]


# What each kind of dataset labels (docs/architecture.md, "Label conventions").
BACKEND_LABELS = {
    "import:tusimple": "lines",
    "import:culane": "lines",
    "carla": "paint",
    "pseudo": "lines",  # training.pseudo_labels
    "import:labelme": "lines",  # data.importers.labelme, drawn with lanes.drawing
    "import:cvat": "lines",
}


def dataset_labels(info: dict) -> str | None:
    """The label convention a dataset.json says its masks follow (None: it cannot tell)."""
    params = info.get("params", {})
    backend = params.get("backend", "")
    if backend == "planar":
        return params.get("config", {}).get("label", "paint")
    if backend == "import:real" and params.get("source") in real_sources.SOURCES:
        return real_sources.SOURCES[params["source"]].convention
    return BACKEND_LABELS.get(backend)


def gather_samples(
    sources: Sequence[Source], split: str, labels: str | None = None
) -> tuple[list[Sample], list[float]]:
    """All samples of `split` from every source, with per-sample sampling weights; a source
    whose masks follow another convention than `labels` is refused."""
    samples: list[Sample] = []
    weights: list[float] = []
    for src in sources:
        root = Path(src.root)
        dataset = load_dataset(root)
        found = dataset_labels(dataset.info)
        if labels is not None and found not in (None, labels):
            raise LaneSegError(
                f"{root} is labelled as {found}, the config's data.labels is {labels}; "
                "train one convention at a time (docs/architecture.md, Label conventions)"
            )
        picked = dataset.split(split)
        if not picked and split == "train":
            raise LaneSegError(
                f"{root} has no '{split}' samples; check the dataset (lane-seg verify {root})"
            )
        if src.limit and split == "train":
            picked = limited(picked, src.limit)
        samples += picked
        weights += [src.weight / len(picked)] * len(picked) if picked else []
    return samples, weights


def limited(samples: Sequence[Sample], limit: int, seed: int = 0) -> list[Sample]:
    """`limit` of `samples`: the first of a seeded permutation of them sorted by id, so a
    smaller limit picks a subset of a larger one's samples (a learning curve's runs nest)."""
    ordered = sorted(samples, key=lambda s: s.id)
    order = np.random.default_rng(seed).permutation(len(ordered))[:limit]
    return [ordered[i] for i in sorted(order)]


class WeightedDistributedSampler(Sampler[int]):
    """Draws `num_samples` indices (with replacement) by weight, split evenly across ranks.

    Like DistributedSampler it is seeded by (seed, epoch), so all ranks draw the same list and
    each takes every world_size-th entry; call `set_epoch` before each epoch.
    """

    def __init__(
        self,
        weights: Sequence[float],
        num_samples: int,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
    ) -> None:
        self.weights = torch.as_tensor(weights, dtype=torch.double)
        self.num_samples = math.ceil(num_samples / world_size) * world_size
        self.rank, self.world_size, self.seed, self.epoch = rank, world_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        idx = torch.multinomial(self.weights, self.num_samples, replacement=True, generator=g)
        return iter(idx[self.rank :: self.world_size].tolist())

    def __len__(self) -> int:
        return self.num_samples // self.world_size


def build_sampler(
    weights: Sequence[float],
    n_sources: int,
    samples_per_epoch: int,
    rank: int,
    world_size: int,
    seed: int,
    dataset: Dataset,
) -> Sampler[int]:
    """DistributedSampler for one source and one pass per epoch; weighted sampling otherwise."""
    if n_sources == 1 and samples_per_epoch in (0, len(weights)):
        return DistributedSampler(
            dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=True
        )
    return WeightedDistributedSampler(
        weights, samples_per_epoch or len(weights), rank, world_size, seed
    )
