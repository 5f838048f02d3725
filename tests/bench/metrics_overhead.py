"""Benchmark: what counting metrics costs per request, in process (Flask's test client, no HTTP).

    python tests/bench/metrics_overhead.py [--requests 3000] [--rounds 5]

Runs once per collector mode: multiprocess (as under gunicorn: files in a temporary PROMETHEUS_MULTIPROC_DIR)
and single-process (waitress). Each prints the finisher alone on a full tally (tokens, first token, cache), and
cached chat answers and `/health/live` through apps with METRICS_ENABLED=true and false: the difference is what
counting adds to a request. Medians of the rounds; the fake Ollama answers the one uncached request.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
MODES = ("multiprocess", "single")


def per_request_us(client, method: str, path: str, count: int, **kwargs) -> float:
    started = time.perf_counter()
    for _ in range(count):
        with client.open(path, method=method, **kwargs) as response:
            assert response.status_code == 200, response.get_data(as_text=True)
    return (time.perf_counter() - started) / count * 1e6


def finisher_us(count: int) -> float:
    from app.metrics import record_request
    from app.tally import Tally

    tally = Tally(started=time.perf_counter(), key_name="team-a", model="llama3.2", cache="MISS", prompt_tokens=40,
                  completion_tokens=200, first_token_at=time.perf_counter())
    tally.method = "POST"  # type: ignore[attr-defined]
    started = time.perf_counter()
    for _ in range(count):
        record_request(tally, 200, "/v1/chat/completions")
    return (time.perf_counter() - started) / count * 1e6


def run(mode: str, count: int, rounds: int) -> None:
    sys.path.insert(0, str(ROOT))
    from loguru import logger

    from app import create_app
    from app.settings import load_settings
    from tests.fake_ollama import FakeOllama

    logger.remove()  # the access log line would dominate what is measured
    fake = FakeOllama().start()
    try:
        apps = {}
        for enabled in ("true", "false"):
            settings = load_settings({"ENV_FILE": "", "CONFIG_FILE": ""}, overrides={
                "OLLAMA_HOST": fake.url, "RATE_LIMIT_RPS": "0", "CACHE_ENABLED": "true", "METRICS_ENABLED": enabled})
            apps[enabled] = create_app(settings=settings).test_client()
        chat = {"json": {"model": "llama3.2", "messages": [{"role": "user", "content": "the cached question"}]}}
        for client in apps.values():
            per_request_us(client, "POST", "/v1/chat/completions", 1, **chat)  # fills each app's cache
        print(f"{mode}: finisher alone {statistics.median(finisher_us(count * 5) for _ in range(rounds)):6.2f} µs")
        for label, method, path, kwargs in (("cached chat", "POST", "/v1/chat/completions", chat),
                                            ("/health/live", "GET", "/health/live", {})):
            on, off = [], []
            for i in range(rounds):  # interleaved, each first in turn, so drift hits both alike
                for enabled in ("true", "false") if i % 2 else ("false", "true"):
                    (on if enabled == "true" else off).append(per_request_us(apps[enabled], method, path, count,
                                                                             **kwargs))
            on_us, off_us = statistics.median(on), statistics.median(off)
            print(f"{mode}: {label:<12} metrics on {on_us:7.1f} µs   off {off_us:7.1f} µs   "
                  f"counting adds {on_us - off_us:6.1f} µs per request")
    finally:
        fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="requests per round and case")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per case; medians are reported")
    parser.add_argument("--mode", choices=MODES, help="one mode in this process (default: each in a child)")
    args = parser.parse_args()
    if args.mode:
        run(args.mode, args.requests, args.rounds)
        return
    for mode in MODES:
        env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        with tempfile.TemporaryDirectory(prefix="llamagate-bench-metrics-") as directory:
            if mode == "multiprocess":  # set before prometheus_client is imported, as gunicorn.conf.py does
                env["PROMETHEUS_MULTIPROC_DIR"] = directory
            subprocess.run([sys.executable, __file__, "--mode", mode, "--requests", str(args.requests),
                            "--rounds", str(args.rounds)], env=env, check=True)


if __name__ == "__main__":
    main()
