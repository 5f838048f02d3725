"""Benchmark: how long a client waits for its answer when the upstream misbehaves, for each fault of
tests/fault_upstream.py, through the real gateway under gunicorn (loopback only).

    python tests/bench/upstream_faults.py [--rounds 3] [--timeout 2s] [--only stall,drip,...]

The gateway runs with TIMEOUT=--timeout, CONNECT_TIMEOUT=1s and MAX_UPSTREAM_LINE=16MB (so that the 10 MB line
passes and the 20 MB one does not). Prints the median wait, the status and the error code of each case; for the
drip-fed replies, the time from the client leaving until the gateway closed the upstream connection.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))
from app.settings.fields import Duration  # noqa: E402
from tests.conftest import BASE_SETTINGS  # noqa: E402
from tests.fault_upstream import FaultUpstream  # noqa: E402
from tests.fault_upstream import unaccepting_port  # noqa: E402
from tests.gateway import Gateway  # noqa: E402
from tests.gateway import free_port  # noqa: E402

LINE_CAP = 16 * 1000**2


def ask(url: str, path: str, stream: bool, timeout: float | tuple = 120) -> tuple[float, str]:
    """Seconds until the whole answer was read, and `status code`."""
    if path == "/v1/embeddings":
        body: dict = {"model": "m", "input": "x"}
    else:
        body = {"model": "llama3.2", "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    started = time.perf_counter()
    response = requests.post(url + path, json=body, timeout=timeout)
    elapsed = time.perf_counter() - started
    return elapsed, f"{response.status_code} {_code(response)}"


def _code(response: requests.Response) -> str:
    if response.headers.get("Content-Type", "").startswith("text/event-stream"):
        last = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")][-1]
        return "[DONE]" if last == "[DONE]" else "in-band " + str(json.loads(last)["error"]["code"])
    try:
        return str(response.json().get("error", {}).get("code") or "ok")
    except ValueError:
        return "not JSON"


def left_drip(url: str, fault: FaultUpstream, stream: bool) -> tuple[float, str]:
    """The client leaves a drip-fed reply (after the first event, or after 1 s of a whole answer); seconds from
    then until the upstream connection was closed."""
    body = {"model": "llama3.2", "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    if stream:
        with requests.post(url + "/v1/chat/completions", json=body, stream=True, timeout=60) as response:
            next(line for line in response.iter_lines() if line.startswith(b"data: "))
    else:
        try:
            requests.post(url + "/v1/chat/completions", json=body, timeout=(5, 1))
        except requests.ReadTimeout:
            pass
    left = time.perf_counter()
    closed = fault.wait_closed(60)
    return time.perf_counter() - left, "upstream closed" if closed else "upstream NOT closed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs per case; the median is printed")
    parser.add_argument("--timeout", default="2s", help="the gateway's TIMEOUT")
    parser.add_argument("--only", default="", help="comma-separated cases to run (default: all)")
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))
    fault = FaultUpstream().start()
    listener, fillers = unaccepting_port()
    base = {**BASE_SETTINGS, "TIMEOUT": args.timeout, "CONNECT_TIMEOUT": "1s", "MAX_UPSTREAM_LINE": str(LINE_CAP)}
    gateways = {"fault": Gateway({**base, "OLLAMA_HOST": fault.url}),
                "refused": Gateway({**base, "OLLAMA_HOST": f"http://127.0.0.1:{free_port()}"}),
                "no-accept": Gateway({**base, "OLLAMA_HOST": f"http://127.0.0.1:{listener.getsockname()[1]}"})}
    try:
        for gateway in gateways.values():
            gateway.start()
        print(f"TIMEOUT={Duration().deserialize(args.timeout):g}s CONNECT_TIMEOUT=1s MAX_UPSTREAM_LINE=16MB, "
              f"median of {args.rounds}")
        chat = "/v1/chat/completions"
        cases = [("ok", "fault", chat), ("stall", "fault", chat), ("html500", "fault", chat), ("reset", "fault", chat),
                 ("big-line", "fault", chat), ("long-first", "fault", chat), ("long-line", "fault", chat),
                 ("big-json", "fault", "/v1/embeddings"), ("refused", "refused", chat),
                 ("connect-timeout", "no-accept", chat)]
        for name, where, path in cases:
            if only and name not in only:
                continue
            for stream in ((False,) if path == "/v1/embeddings" else (False, True)):
                runs = []
                for _ in range(args.rounds):
                    fault.reset(name if where == "fault" else "ok")
                    fault.line_size = 20 * 1000**2 if name.startswith("long") else 2 * LINE_CAP
                    runs.append(ask(gateways[where].url, path, stream))
                print(f"{name:<16} {'stream' if stream else 'whole':<7} {statistics.median(r[0] for r in runs):8.3f} s"
                      f"   {runs[-1][1]}")
        for stream in (False, True) if not only or "drip" in only else ():
            runs = []
            for _ in range(args.rounds):
                fault.reset("drip")
                runs.append(left_drip(gateways["fault"].url, fault, stream))
            print(f"{'drip (left)':<16} {'stream' if stream else 'whole':<7} "
                  f"{statistics.median(r[0] for r in runs):8.3f} s   {runs[-1][1]}")
    finally:
        for gateway in gateways.values():
            gateway.stop()
        fault.stop()
        for sock in (listener, *fillers):
            sock.close()


if __name__ == "__main__":
    main()
