"""The node's counters and latency windows (no ROS needed)."""

from __future__ import annotations

import math

from lane_seg.ros.stats import NodeStats, SequenceGaps


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


def test_bad_share_is_over_the_messages_since_the_last_look():
    s = NodeStats()
    assert s.bad_since_last() == 0.0  # nothing received: not a division by zero
    s.received, s.bad_inputs = 10, 9
    assert s.bad_since_last() == 0.9
    s.received += 10  # the next period: all good
    assert s.bad_since_last() == 0.0


def _info(gid: bytes, seq: int | None) -> dict:
    """rclpy's MessageInfo, the fields SequenceGaps reads."""
    return {"publication_sequence_number": seq, "publisher_gid": {"data": gid}}


def test_sequence_gaps_count_messages_that_never_arrived_per_publisher():
    gaps = SequenceGaps()
    for seq in (7, 8, 11, 12):  # 7: the first seen; what came before was not sent to us
        gaps.see(_info(b"camera", seq))
    assert gaps.missed == 2  # 9 and 10
    gaps.see(_info(b"other", 500))  # another publisher's numbers are its own
    gaps.see(_info(b"other", 502))
    gaps.see(_info(b"camera", 13))
    assert gaps.missed == 3
    gaps.see(_info(b"camera", 12))  # not newer: no gap, and nothing undone
    gaps.see(_info(b"camera", None))  # an rmw that does not number messages
    assert gaps.missed == 3
