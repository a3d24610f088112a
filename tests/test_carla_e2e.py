"""End to end against a real CARLA server: runs only when CARLA_HOST is set and one answers.

    CARLA_HOST=127.0.0.1 CARLA_PORT=2000 pytest tests/test_carla_e2e.py

No fake server stands in for CARLA here: without one, the test is skipped and says why.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from lane_seg.cli.main import main
from lane_seg.data.dataset import load_dataset, verify_dataset
from lane_seg.errors import LaneSegError

pytestmark = pytest.mark.carla


@pytest.fixture(scope="module")
def server():
    host = os.environ.get("CARLA_HOST")
    if not host:
        pytest.skip("CARLA_HOST is not set: no CARLA server to test against")
    port = int(os.environ.get("CARLA_PORT", "2000"))
    pytest.importorskip("carla")
    from lane_seg.sim.carla.collect import connect

    try:
        client, version = connect(host, port, timeout=10.0)
    except LaneSegError as exc:
        pytest.skip(f"CARLA_HOST={host} is set but no server answers: {exc}")
    return host, port, client, version


def test_collect_from_a_live_server_restores_it_and_resumes(server, tmp_path):
    host, port, client, version = server
    world = client.get_world()
    town = world.get_map().name.rsplit("/", 1)[-1]
    before = world.get_settings()
    actors_before = {a.id for a in world.get_actors()}
    out = tmp_path / "carla"
    argv = [
        "collect", "--backend", "carla", "--host", host, "--port", str(port),
        "--out", str(out), "--towns", town, "--image-size", "320x180", "--npc", "2",
        "--warmup", "10", "--every", "2", "--frames-per-episode", "3", "--min-speed", "0",
    ]  # fmt: skip
    assert main([*argv, "--frames", "4"]) == 0
    assert verify_dataset(out).ok
    ds = load_dataset(out)
    assert len(ds) == 4
    masks = [s.load()[1] for s in ds]
    assert all(m.shape == (180, 320) for m in masks)
    assert sum(np.count_nonzero(m) for m in masks) > 0, "no RoadLine pixels in any frame"
    meta = ds.samples[0].meta
    assert {"fx", "fy", "cx", "cy", "height_m", "pitch_deg"} <= set(meta["camera"])
    assert meta["scene"]["server_version"] == version
    # The server is as we found it: settings back, nothing we spawned left behind.
    world = client.get_world()
    after = world.get_settings()
    assert after.synchronous_mode == before.synchronous_mode
    assert (after.fixed_delta_seconds or 0) == pytest.approx(before.fixed_delta_seconds or 0)
    leftover = {a.id for a in world.get_actors()} - actors_before
    assert not leftover, f"actors left behind: {sorted(leftover)}"
    # Resume: only the missing frames are collected.
    assert main([*argv, "--frames", "6"]) == 0
    assert len(load_dataset(out)) == 6 and verify_dataset(out).ok
