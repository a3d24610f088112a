"""Where the package's files live: `config/` (with `config/scenarios/`), `models/`, `launch/`.

The same relative layout sits in one of these places, searched in this order:

1. a checkout: the repository root, beside the `lane_seg/` folder (also `pip install -e`);
2. the prefix the package is installed under: `<prefix>/share/lane_seg` for
   `<prefix>/lib/pythonX.Y/site-packages/lane_seg` (a venv, `pip install --prefix`, a colcon
   install without `--symlink-install`), or `<dir>/share/lane_seg` for `pip install --target dir`;
3. `sys.prefix/share/lane_seg`;
4. the ament index (`ros2 run` after sourcing a colcon or apt install).

setup.py installs the files to `share/lane_seg` (data_files), so a wheel, a `pip install .` and
a colcon build all find them here without a checkout.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from lane_seg.errors import LaneSegError

PACKAGE = "lane_seg"
_HERE = Path(__file__).resolve().parent  # the lane_seg package folder


def checkout_root() -> Path | None:
    """The repository root when running from a checkout (or an editable install), else None."""
    root = _HERE.parent
    return root if (root / "package.xml").is_file() and (root / "config").is_dir() else None


def roots() -> list[Path]:
    """Every folder that may hold config/, models/ and launch/, most specific first."""
    found = [checkout_root()]
    found += [_HERE.parents[3] / "share" / PACKAGE] if len(_HERE.parents) > 3 else []
    found += [_HERE.parent / "share" / PACKAGE, Path(sys.prefix) / "share" / PACKAGE]
    with contextlib.suppress(Exception):  # no ament index (pip only), or lane_seg not in it
        from ament_index_python.packages import get_package_share_directory

        found.append(Path(get_package_share_directory(PACKAGE)))
    unique: list[Path] = []
    for root in found:
        if root is not None and root not in unique:
            unique.append(root)
    return unique


def find(*parts: str) -> Path:
    """The first existing `<root>/<parts...>`; a LaneSegError naming every place looked in."""
    for root in roots():
        path = root.joinpath(*parts)
        if path.exists():
            return path
    looked = ", ".join(str(r.joinpath(*parts)) for r in roots())
    raise LaneSegError(
        f"{'/'.join(parts)} is missing from this lane_seg installation (looked in {looked}); "
        "reinstall the package (pip install ., or colcon build)"
    )


def config_file(name: str) -> Path:
    """A file of the package's `config/` folder, e.g. `controller.yaml`."""
    return find("config", name)


def scenario_dir() -> Path:
    """The standard closed-loop scenarios (`config/scenarios/*.yaml`)."""
    return find("config", "scenarios")


def model_file(name: str) -> Path:
    """A file of the package's `models/` folder (the shipped default model)."""
    return find("models", name)
