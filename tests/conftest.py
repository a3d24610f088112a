"""Test-wide settings: DDS stays on loopback, each run on its own ROS domain; shared data paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Before any rclpy import: discovery only on this host, and a per-run domain so that parallel
# runs on one machine never see each other's topics.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["ROS_LOCALHOST_ONLY"] = "1"
os.environ.setdefault("ROS_DOMAIN_ID", str(os.getpid() % 100 + 1))

REPO = Path(__file__).resolve().parents[1]
# LANE_SEG_REAL_DATA points elsewhere (a git worktree has no shared/ beside it).
REAL_DATA = Path(os.environ.get("LANE_SEG_REAL_DATA", REPO.parent / "shared" / "data" / "real"))


@pytest.fixture
def real_data() -> Path:
    """../shared/data/real beside the checkout; tests using it skip when it is absent."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real road frames not found at {REAL_DATA} (see shared/data/real/README.md)")
    return REAL_DATA


@pytest.fixture(scope="session")
def colcon_install(tmp_path_factory) -> Path:
    """ros2_ws built once per run, as the README says (colcon_ws.py): its install folder."""
    import colcon_ws

    return colcon_ws.build(tmp_path_factory.mktemp("colcon"))
