"""The node's counters and latency windows (no ROS needed)."""

from __future__ import annotations

import math

from lane_seg.ros.stats import NodeStats


def test_percentiles_over_the_window_only():
    s = NodeStats(window=100)
    for ms in range(1, 201):  # only the last 100 (101..200) stay in the window
        s.frame_done(float(ms), 1.0)
    snap = s.snapshot()
    assert snap["processed"] == 200
    assert snap["latency_ms_p50"] == 150.5
    assert 199 <= snap["latency_ms_p99"] <= 200
    assert snap["inference_ms_p50"] == 1.0


def test_empty_snapshot_is_nan_not_an_error():
    snap = NodeStats().snapshot()
    assert math.isnan(snap["latency_ms_p50"]) and snap["fps"] == 0.0
    assert snap["dropped"] == snap["bad_inputs"] == 0


def test_fps_counts_recent_frames(monkeypatch):
    import lane_seg.ros.stats as ns

    now = [1000.0]
    monkeypatch.setattr(ns.time, "monotonic", lambda: now[0])
    s = NodeStats()
    for _ in range(21):  # 21 frames 50 ms apart: 20 intervals in 1 s -> 20 fps
        s.frame_done(5.0, 1.0)
        now[0] += 0.05
    now[0] -= 0.05
    assert abs(s.snapshot()["fps"] - 20.0) < 1e-6
    now[0] += 10.0  # nothing for 10 s: the 5 s horizon is empty
    assert s.snapshot()["fps"] == 0.0


def test_loss_share_is_over_the_frames_since_the_last_look():
    s = NodeStats()
    assert s.loss_since_last() == 0.0
    s.received, s.lost = 2, 98
    assert s.loss_since_last() == 0.98
    s.received += 30  # the next period: nothing lost
    assert s.loss_since_last() == 0.0 and s.snapshot()["lost"] == 98
