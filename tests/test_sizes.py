"""One size convention on every command line: WIDTHxHEIGHT, bounded."""

from __future__ import annotations

import pytest

from lane_seg.cli.main import main
from lane_seg.errors import LaneSegError
from lane_seg.sizes import MAX_IMAGE_SIDE, parse_size


def test_width_comes_first_and_both_sides_are_bounded():
    assert parse_size("1280x720", "--size") == (1280, 720)
    assert parse_size(" 512X256 ", "--size") == (512, 256)
    for text in ("512", "512x", "x256", "-512x256", "512x256x3", "5.5x2"):
        with pytest.raises(LaneSegError, match="expected WIDTHxHEIGHT"):
            parse_size(text, "--size")
    with pytest.raises(LaneSegError, match=f"each be 1..{MAX_IMAGE_SIDE} px"):
        parse_size(f"{MAX_IMAGE_SIDE + 1}x10", "--size")
    with pytest.raises(LaneSegError, match="each be 8..100 px"):
        parse_size("7x50", "--size", minimum=8, maximum=100)


@pytest.mark.parametrize(
    "argv",
    [
        ["import", "--format", "masks", "SRC", "--out", "OUT", "--size", "99999999x99999999"],
        ["models", "--size", "99999999x99999999"],
        [
            "collect",
            "--backend",
            "carla",
            "--out",
            "OUT",
            "--frames",
            "1",
            "--image-size",
            "99999999x99999999",
        ],
    ],  # fmt: skip
)
def test_a_huge_size_is_one_line_before_any_work(tmp_path, capfd, argv):
    argv = [str(tmp_path / a) if a in ("SRC", "OUT") else a for a in argv]
    assert main(argv) == 2
    err = capfd.readouterr().err.strip()
    assert "\n" not in err and "99999999x99999999: width and height must each be" in err, err
    assert not (tmp_path / "OUT").exists()
