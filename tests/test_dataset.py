import json

import numpy as np
import pytest

from lane_seg.dataset import DatasetWriter, encode_image, encode_mask, load_dataset
from lane_seg.errors import LaneSegError


def _sample():
    img = np.random.default_rng(0).integers(0, 255, (8, 16, 3), dtype=np.uint8)
    mask = np.zeros((8, 16), np.uint8)
    mask[:, 4] = 200
    return encode_image(img), encode_mask(mask), img


def test_round_trip_and_binary_mask(tmp_path):
    img_b, mask_b, img = _sample()
    with DatasetWriter(tmp_path, "test") as w:
        w.add("a", "train", "unit", img_b, mask_b, camera={"fx": 1.0})
    (s,) = load_dataset(tmp_path).samples
    image, mask = s.load()
    assert np.array_equal(image, img)  # PNG is lossless and RGB order is kept
    assert set(np.unique(mask)) == {0, 255}
    assert json.loads((tmp_path / "dataset.json").read_text())["counts"]["train"] == 1


def test_rejects_bad_split_and_path_like_ids(tmp_path):
    img_b, mask_b, _ = _sample()
    with DatasetWriter(tmp_path, "test") as w:
        with pytest.raises(ValueError):
            w.add("a", "holdout", "unit", img_b, mask_b)
        with pytest.raises(ValueError):
            w.add("../evil", "train", "unit", img_b, mask_b)


def test_not_a_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(LaneSegError, match="not a lane_seg dataset"):
        load_dataset(tmp_path)
