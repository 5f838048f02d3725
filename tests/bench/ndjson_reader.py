"""Benchmark: splitting Ollama's NDJSON stream into lines, over a real loopback HTTP connection (chunked encoding,
one chunk per short line, 16 KiB chunks for a long one), with the gateway's reader (`app.upstream.body.lines`)
and with requests' `iter_lines()`, which the gateway used before.

    python tests/bench/ndjson_reader.py [--lines 100000] [--big 10MB] [--old-big 1MB]

Prints lines per second for short lines and seconds for one long line. requests' reader re-joins what is pending
at every 512-byte piece, so a long line costs it quadratic time: it is timed on `--old-big` (and twice that), and
its time for `--big` is extrapolated from those (run it with `--old-big 10MB` to wait for the real figure).
"""

from __future__ import annotations

import argparse
import json
import math
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))
from app.settings.fields import ByteSize  # noqa: E402
from app.upstream.body import lines as gateway_lines  # noqa: E402


def chunked(pieces: list[bytes]) -> bytes:
    return b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in pieces) + b"0\r\n\r\n"


def short_body(count: int) -> bytes:
    line = json.dumps({"model": "llama3.2", "created_at": "2026-01-01T00:00:00.000000Z",
                       "message": {"role": "assistant", "content": " token"}, "done": False}).encode() + b"\n"
    return chunked([line] * count)


def long_body(size: int) -> bytes:
    line = json.dumps({"message": {"role": "assistant", "content": "x" * size}, "done": False}).encode() + b"\n"
    return chunked([line[i:i + 16384] for i in range(0, len(line), 16384)])


class Server:
    """Answers every request on 127.0.0.1 with `body` as a chunked NDJSON reply."""

    def __init__(self):
        self.body = b""
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/api/chat"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            sock, _ = self.listener.accept()
            with sock:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += sock.recv(65536)
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n"
                             b"Connection: close\r\n\r\n" + self.body)


def timed(server: Server, body: bytes, reader: str) -> tuple[float, int]:
    """Seconds to read every line of `body`, and how many there were."""
    server.body = body
    with requests.Session() as session:
        response = session.get(server.url, stream=True, timeout=600)
        started = time.perf_counter()
        found = response.iter_lines() if reader == "requests" else gateway_lines(response, 64 * 1000**2)
        count = sum(1 for _ in found)
        elapsed = time.perf_counter() - started
        response.close()
    return elapsed, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=100000, help="short lines per run")
    parser.add_argument("--big", default="10MB", help="the long line")
    parser.add_argument("--old-big", default="1MB", help="the long line requests' reader is timed on")
    parser.add_argument("--rounds", type=int, default=3, help="runs of the short lines; the median is reported")
    args = parser.parse_args()
    size = ByteSize()
    big, old_big = size.deserialize(args.big), size.deserialize(args.old_big)
    server = Server()
    short = short_body(args.lines)
    for reader in ("requests", "gateway"):
        runs = [timed(server, short, reader) for _ in range(args.rounds)]
        assert all(count == args.lines for _, count in runs)
        rate = args.lines / statistics.median(seconds for seconds, _ in runs)
        print(f"short lines   {reader:<9} {rate:12,.0f} lines/s")
    new, _ = timed(server, long_body(big), "gateway")
    print(f"{args.big} line   gateway   {new:12.3f} s")
    first, _ = timed(server, long_body(old_big), "requests")
    second, _ = timed(server, long_body(2 * old_big), "requests")
    print(f"{args.old_big} line    requests  {first:12.3f} s   (twice that: {second:.3f} s)")
    if big != old_big:
        factor = second / first if first else 4.0
        exponent = max(1.0, min(2.5, math.log2(factor)))
        print(f"{args.big} line   requests  {first * (big / old_big) ** exponent:12.1f} s  (extrapolated, "
              f"growth x{factor:.1f} per doubling)")


if __name__ == "__main__":
    main()
