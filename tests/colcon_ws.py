"""ros2_ws built by colcon as the README says, and commands run in the shell a user has after
`. .venv/bin/activate` and `. install/setup.sh`: what `ros2 launch` and `ros2 run` need."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def colcon() -> str:
    found = shutil.which("colcon", path=str(VENV_BIN))
    if found is None:
        pytest.skip("colcon is not installed (pip install colcon-core colcon-ros)")
    return found


def user_env() -> dict[str, str]:
    """This environment (loopback DDS, conftest.py) as an activated venv has it: its bin/ first
    on PATH, and no PYTHONPATH that could lead back to the checkout."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def build(base: Path) -> Path:
    """`colcon build` of ros2_ws (copies: no --symlink-install) with everything it writes under
    `base`; the install folder, which holds setup.sh."""
    cmd = [colcon(), "--log-base", base / "log", "build"]
    cmd += ["--build-base", base / "build", "--install-base", base / "install"]
    r = subprocess.run(
        [str(c) for c in cmd],
        cwd=REPO / "ros2_ws",
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, f"{cmd}:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return base / "install"


def sourced(install: Path, command: str) -> list[str]:
    """`command` in a shell that sourced `install`/setup.sh; exec, so signals reach it."""
    return ["sh", "-c", f'. "{install}/setup.sh" && exec {command}']
