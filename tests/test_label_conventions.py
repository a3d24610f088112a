"""Label conventions travel from the data to the model and on to what it is scored against."""

import numpy as np
import pytest

from lane_seg.artifact import ModelInfo
from lane_seg.camera import Camera
from lane_seg.errors import LaneSegError
from lane_seg.sim.world.collect import collect_planar
from lane_seg.sim.world.drive import drive
from lane_seg.sim.world.scene import SimConfig, sample_scene
from lane_seg.training.train.config import Source
from lane_seg.training.train.data import gather_samples


def test_model_metadata_carries_its_convention_and_old_files_read_as_paint():
    info = ModelInfo("unet", labels="lines")
    assert ModelInfo.from_metadata(info.to_metadata()).labels == "lines"
    meta = info.to_metadata()
    del meta["labels"]
    assert ModelInfo.from_metadata(meta).labels == "paint"


def test_training_refuses_a_dataset_of_the_other_convention(tmp_path):
    collect_planar(tmp_path / "lines", 4, cfg=SimConfig(label="lines"), val_fraction=0.0)
    collect_planar(tmp_path / "paint", 4, cfg=SimConfig(), val_fraction=0.0)
    samples, _ = gather_samples([Source(str(tmp_path / "lines"))], "train", "lines")
    assert len(samples) == 4
    with pytest.raises(LaneSegError, match="labelled as paint"):
        gather_samples([Source(str(tmp_path / "paint"))], "train", "lines")


def test_a_drive_renders_the_exact_mask_in_the_convention_asked():
    scene = sample_scene(np.random.default_rng(2), SimConfig(lanes=(2, 2)))
    cam = Camera.from_fov(256, 128, 60, height_m=1.5, pitch_deg=3.0)
    masks = {
        label: next(iter(drive(scene, cam, 0.1, fps=10, label=label))).mask
        for label in ("paint", "lines")
    }
    assert masks["lines"].any() and not np.array_equal(masks["paint"], masks["lines"])
