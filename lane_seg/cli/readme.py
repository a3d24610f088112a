"""Sections of a README that a command writes: between `<!-- lane-seg NAME: start -->` and
`<!-- lane-seg NAME: end -->`, opened by the command line that regenerates them, so no table of
measured figures is typed by hand (`lane-seg bench --readme`, `lane-seg baselines --readme`)."""

from __future__ import annotations

from pathlib import Path

from lane_seg.data.dataset import atomic_write
from lane_seg.errors import LaneSegError


def markers(name: str) -> tuple[str, str]:
    return f"<!-- lane-seg {name}: start -->", f"<!-- lane-seg {name}: end -->"


def check_section(readme: Path, name: str) -> None:
    """A README with both markers of section `name`, or a LaneSegError saying how to add them."""
    start, end = markers(name)
    if not readme.is_file():
        raise LaneSegError(f"--readme {readme} not found")
    text = readme.read_text()
    if start in text and end in text:
        return
    raise LaneSegError(
        f"{readme} has no {name} section to update; add the two lines {start!r} and {end!r} "
        "where it should go"
    )


def replace_section(readme: Path, name: str, command: str, body: str) -> Path:
    """Section `name` becomes "Regenerate with `command`." and `body`; the rest stays."""
    check_section(readme, name)
    start, end = markers(name)
    head, rest = readme.read_text().split(start, 1)
    _, tail = rest.split(end, 1)
    section = f"\nRegenerate with `{command}`.\n\n{body.rstrip()}\n"
    atomic_write(readme, (head + start + section + end + tail).encode())
    return readme
