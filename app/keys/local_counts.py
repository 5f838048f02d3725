"""The counts of RATE_LIMIT_STORAGE_URI=memory://: fixed windows in this process's memory, swept as they expire.

A plain dict under one lock, with the `get`/`incr` calls `Counters` makes of a `limits` storage. limits' own memory
storage restarts a timer thread on most increments (one thread start per request at typical request rates).
"""

from __future__ import annotations

import threading
import time

SWEEP_EVERY = 10.0  # seconds between passes that drop expired windows


class LocalCounts:
    """Counters that expire: `incr` starts a window with its expiry, `get` reads 0 once it has passed."""

    key_prefix = ""

    def __init__(self):
        self._counts: dict[str, list[float]] = {}  # key -> [count, expires at (time.time())]
        self._lock = threading.Lock()
        self._next_sweep = time.time() + SWEEP_EVERY

    def get(self, key: str) -> int:
        entry = self._counts.get(key)
        if entry is None or entry[1] <= time.time():
            return 0
        return int(entry[0])

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        now = time.time()
        with self._lock:
            if now >= self._next_sweep:
                self._sweep(now)
            entry = self._counts.get(key)
            if entry is None or entry[1] <= now:
                entry = self._counts[key] = [0, now + expiry]
            entry[0] += amount
            return int(entry[0])

    def _sweep(self, now: float) -> None:
        for key in [key for key, entry in self._counts.items() if entry[1] <= now]:
            del self._counts[key]
        self._next_sweep = now + SWEEP_EVERY
