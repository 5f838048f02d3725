"""Benchmark: what plugin hooks cost per call, in process (no HTTP): a stream's chunks through no `on_chunk`
plugin and through one that returns None, and an `on_response` over a whole answer.

    python tests/bench/plugin_hooks.py [--chunks 20000]

Prints microseconds per chunk (or answer) for each case and the difference, which is the hook's own cost:
the hop to the plugin's thread that lets its timeout hold.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))
from app.plugins.registry import PluginRegistry  # noqa: E402
from app.plugins.spec import PluginSpec  # noqa: E402
from app.plugins.spec import PluginsSettings  # noqa: E402
from app.plugins.testing import chat_completion  # noqa: E402
from app.plugins.testing import chunk  # noqa: E402


class Passthrough:
    def on_chunk(self, ctx, item):
        return None

    def on_response(self, ctx, answer):
        return None


def per_item_us(registry: PluginRegistry, count: int, hook: str) -> float:
    if hook == "on_chunk":
        items = [chunk(f"tok{i} ") for i in range(count)]
        started = time.perf_counter()
        for _ in registry.run_chunks(registry.table.chunk, iter(items), "bench", "m", {}):
            pass
    else:
        answer = chat_completion("hello")
        started = time.perf_counter()
        for _ in range(count):
            registry.run_response(registry.table.response, answer, "bench", "m", False, {})
    return (time.perf_counter() - started) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=20000, help="chunks (and answers) per run")
    parser.add_argument("--rounds", type=int, default=5, help="runs per case; medians are reported")
    args = parser.parse_args()
    none = PluginRegistry(PluginsSettings())
    one = PluginRegistry(PluginsSettings(items=(PluginSpec("pass", "bench", Passthrough),)))
    try:
        for hook in ("on_chunk", "on_response"):
            without = statistics.median(per_item_us(none, args.chunks, hook) for _ in range(args.rounds))
            with_one = statistics.median(per_item_us(one, args.chunks, hook) for _ in range(args.rounds))
            print(f"{hook:<12} no plugin {without:8.2f} µs   one plugin {with_one:8.2f} µs   "
                  f"hook cost {with_one - without:8.2f} µs per call")
    finally:
        one.close()


if __name__ == "__main__":
    main()
