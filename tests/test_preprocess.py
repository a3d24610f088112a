import numpy as np
import pytest

from lane_seg.preprocess import PreprocessConfig, to_input, to_mask


@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
def test_mask_comes_back_at_source_resolution_in_place(resize):
    cfg = PreprocessConfig(height=64, width=128, resize=resize)
    frame = np.zeros((90, 320, 3), np.uint8)
    x = to_input(frame, cfg)
    assert x.shape == (1, 3, 64, 128) and x.dtype == np.float32
    # Logits that mark a vertical band in the source frame's coordinates survive the round trip.
    from lane_seg.preprocess import placement

    pl = placement(90, 320, cfg)
    logits = np.full((64, 128), -10.0, np.float32)
    u0 = round(100 * pl.scale_x) + pl.pad_x
    u1 = round(140 * pl.scale_x) + pl.pad_x
    logits[:, u0:u1] = 10.0
    mask = to_mask(logits, (90, 320), cfg)
    assert mask.shape == (90, 320)
    cols = np.nonzero(mask[45])[0]
    assert abs(cols.min() - 100) <= 3 and abs(cols.max() - 139) <= 3


def test_normalisation_and_colour_order():
    frame = np.zeros((4, 4, 3), np.uint8)
    frame[..., 0] = 255  # pure red
    rgb = to_input(frame, PreprocessConfig(height=4, width=4))
    bgr = to_input(frame, PreprocessConfig(height=4, width=4, color_order="bgr"))
    assert rgb[0, 0, 0, 0] == pytest.approx((1 - 0.485) / 0.229, rel=1e-5)
    assert bgr[0, 2, 0, 0] == pytest.approx(rgb[0, 0, 0, 0])


def test_threshold_is_probability_half():
    cfg = PreprocessConfig(height=2, width=2)
    logits = np.array([[-0.01, 0.01], [3.0, -3.0]], np.float32)
    assert to_mask(logits, (2, 2), cfg).tolist() == [[0, 255], [255, 0]]
