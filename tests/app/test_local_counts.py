"""The in-process window counts behind RATE_LIMIT_STORAGE_URI=memory://."""

import threading

import pytest

from app.keys import local_counts
from app.keys.counters import Counters
from app.keys.counters import Window
from app.keys.counters import counters_for
from app.keys.counters import storage_for
from app.keys.local_counts import LocalCounts


@pytest.fixture
def clock(monkeypatch):
    now = [1_000_000.0]
    monkeypatch.setattr(local_counts.time, "time", lambda: now[0])
    return now


def test_a_window_counts_until_it_expires_then_starts_again(clock):
    counts = LocalCounts()
    assert counts.get("w") == 0
    assert [counts.incr("w", 2) for _ in range(3)] == [1, 2, 3]
    assert counts.incr("w", 2, 5) == 8
    clock[0] += 1.9
    assert counts.get("w") == 8
    clock[0] += 0.1
    assert counts.get("w") == 0
    assert counts.incr("w", 2) == 1  # a new window, with a new expiry


def test_expired_windows_are_swept_and_live_ones_kept(clock):
    counts = LocalCounts()
    for second in range(50):
        counts.incr(f"rps:{second}", 1)
        clock[0] += 1
    counts.incr("minute", 60)
    clock[0] += local_counts.SWEEP_EVERY
    counts.incr("now", 1)
    assert set(counts._counts) == {"minute", "now"}


def test_memory_uris_count_in_process_without_a_timer_thread():
    storage = storage_for("memory://")
    assert isinstance(storage, LocalCounts)
    counters = counters_for(storage)
    assert type(counters) is Counters
    threads = threading.active_count()
    windows = [Window("llamagate:rps:1", 3, 0)]
    admitted = [counters.admit(windows, None, None, 0.0).refused for _ in range(4)]
    assert admitted == [0, 0, 0, 1]  # the fourth is refused by the window's limit of 3
    assert threading.active_count() == threads
