"""Installs without `-e`: `pip install .` into a fresh venv and a colcon build without
--symlink-install. Each copy must run from its own files, far from the checkout: `lane-seg sim`
(the standard scenarios and controller config), `lane-seg demo --help`, `lane-seg collect`, and
`seg_node` on the shipped model, all found under share/lane_seg by lane_seg.resources."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from lane_seg.runtime.shipped_model import shipped_int8

REPO = Path(__file__).resolve().parents[1]
PY = f"python{sys.version_info.major}.{sys.version_info.minor}"
# What travels: the repository without builds, caches, data, runs and the workspace link.
# Top-level folders only (lane_seg/data is code); caches at any depth.
TOP_SKIP = {".git", ".venv", "runs", "data", "build", "install", "log", "ros2_ws"}
SKIP = ("*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache")


def _ignore(folder: str, names: list[str]) -> set[str]:
    top = TOP_SKIP if Path(folder) == REPO else set()
    return (top & set(names)) | shutil.ignore_patterns(*SKIP)(folder, names)


def _env(**extra: str) -> dict[str, str]:
    """This process's environment (ROS libraries on LD_LIBRARY_PATH, loopback DDS) without any
    PYTHONPATH that could lead back to the checkout."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {**env, **extra}


def _run(cmd: list, cwd: Path, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    r = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert r.returncode == 0, f"{cmd}:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r


def check_installed_copy(python: Path, scripts: Path, prefix: Path, env: dict, work: Path):
    """The four commands a new user runs, from the copy installed under `prefix`."""
    where = _run(
        [python, "-c", "import lane_seg, lane_seg.resources as r; "
         "print(lane_seg.__file__); print(r.config_file('controller.yaml'))"],
        work, env,
    ).stdout.split()  # fmt: skip
    assert all(Path(p).resolve().is_relative_to(prefix.resolve()) for p in where), where
    lane_seg = scripts / "lane-seg"
    assert "usage: lane-seg demo" in _run([lane_seg, "demo", "--help"], work, env).stdout
    sim = ["sim", "--scenario", "tight_curves", "--distance", "15", "--no-video", "--out", "sim"]
    out = _run([lane_seg, *sim], work, env).stdout
    assert "| tight_curves |" in out and (work / "sim" / "summary.json").is_file()
    _run([lane_seg, "collect", "--out", "ds", "--frames", "2", "--workers", "1"], work, env)
    assert (work / "ds" / "dataset.json").is_file()
    check_seg_node(scripts / "seg_node", prefix, env, work)


def check_seg_node(exe: Path, prefix: Path, env: dict, work: Path) -> None:
    """`seg_node` without a model runs the shipped int8 model from the install's share/."""
    pytest.importorskip("rclpy")
    import node_process as np_

    from lane_seg.models.testing import stripes_rgb

    name = f"installed_seg_{os.getpid()}"
    cmd = [str(exe), "--ros-args", "-p", "engine:=onnxruntime-cpu", "-r", f"__node:={name}"]
    proc = np_.start(cmd, cwd=work, env=env)
    try:
        with np_.Client() as client:
            np_.segment_one_frame(client, f"/{name}", proc, stripes_rgb(64, 128))
    finally:
        log = np_.stop(proc)
        print(log)  # shown by pytest when the test fails
    assert proc.returncode == 0
    # model:=auto picked one of the shipped int8 files, and loaded it from the install's share/
    shipped = prefix / "share" / "lane_seg" / "models"
    picked = [m.path.name for m in shipped_int8(shipped / "shipped.json")]
    assert any(
        f"model {shipped / name} (" in log or f"model {(shipped / name).resolve()} (" in log
        for name in picked
    ), log


def test_pip_install_without_editable_runs_from_its_own_files(tmp_path):
    """A fresh venv whose only route to the dependencies is a path to this venv's site-packages
    (no downloads); lane_seg itself is installed, not linked."""
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=_ignore, symlinks=True)
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path, _env())
    site = venv / "lib" / PY / "site-packages"
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    python = venv / "bin" / "python"
    pip = [python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index"]
    _run([*pip, "--quiet", src], tmp_path, _env())
    assert (site / "lane_seg" / "sim" / "world" / "render.py").is_file()
    assert not (site / "lane_seg").is_symlink()
    shutil.rmtree(src)  # nothing may be read from the source tree any more
    work = tmp_path / "work"
    work.mkdir()
    check_installed_copy(python, venv / "bin", venv, _env(), work)


def test_colcon_build_installs_package(colcon_install):
    """conftest.py's colcon_install: ros2_ws built without --symlink-install."""
    pkg = colcon_install / "lane_seg"
    assert (pkg / "share/ament_index/resource_index/packages/lane_seg").is_file()
    assert (pkg / "share/lane_seg/package.xml").is_file()
    for f in (
        "config/sim.yaml",
        "config/seg.yaml",
        "config/controller.yaml",
        "config/scenarios/tight_curves.yaml",
        "launch/seg.launch.py",
        "models/lane_unet_int8.onnx",  # the node's default model
        "models/shipped.json",  # what its model auto picks from
    ):
        assert (pkg / "share/lane_seg" / f).is_file(), f
    for exe in ("lane-seg", "seg_node", "lane_controller"):  # where `ros2 run lane_seg` looks
        assert (pkg / "lib/lane_seg" / exe).is_file(), exe
    site = pkg / "lib" / PY / "site-packages"
    assert (site / "lane_seg/sim/world/render.py").is_file()
    assert not (site / "lane_seg").is_symlink()
    assert (site / "lane_seg/training/__init__.py").is_file()
    assert not (site / "sim").exists() and not (site / "training").exists()


def test_colcon_install_runs_from_its_own_files(colcon_install, tmp_path):
    """What `. install/setup.sh` gives: the install's site-packages first on the path."""
    pkg = colcon_install / "lane_seg"
    site = pkg / "lib" / PY / "site-packages"
    env = _env(PYTHONPATH=str(site), AMENT_PREFIX_PATH=str(pkg))
    check_installed_copy(Path(sys.executable), pkg / "lib" / "lane_seg", pkg, env, tmp_path)
