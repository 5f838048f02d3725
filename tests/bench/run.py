"""Benchmark: the gateway against a bare pass-through and the fixed-reply upstream itself, with wrk.

    python tests/bench/run.py [--duration 10] [--rounds 3]

Needs Debian's `wrk` and `nginx-light`. Everything listens on 127.0.0.1 and stops at the end.
Prints req/s, p50/p99, overhead over direct, peak RSS per worker and the target ratios.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))
from tests.gateway import clean_env  # noqa: E402
from tests.gateway import free_port  # noqa: E402

BIN = Path(sys.executable).parent


def wrk(url: str, body: str, connections: int, duration: int) -> dict:
    """One wrk run of chat.lua with the `openai` or `ollama` body."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(HERE / "chat.lua"), url, "--", body]
    out = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60).stdout
    if "Non-2xx or 3xx responses" in out:
        raise SystemExit(f"failed requests against {url}:\n{out}")
    fields = dict(re.findall(r"(\w+)=([\d.]+)", out.split("RESULT", 1)[1]))
    return {k: float(v) for k, v in fields.items()}


def start_upstream(workdir: Path) -> tuple[str, Path]:
    port = free_port()
    (workdir / "logs").mkdir(parents=True)
    conf = workdir / "nginx.conf"
    conf.write_text((HERE / "upstream-nginx.conf.template").read_text().replace("__PORT__", str(port)))
    subprocess.run(["nginx", "-c", str(conf), "-p", str(workdir)], check=True)
    url = f"http://127.0.0.1:{port}"
    wait_for(url + "/api/version")
    return url, conf


def wait_for(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Server:
    """A gunicorn process; `worker_rss()` is the peak RSS of its (first) worker."""

    def __init__(self, command: list[str], env: dict, port: int, cwd: Path):
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.url + "/health/live" if cwd == ROOT else self.url + "/")

    def worker_rss(self) -> float:
        return max((peak_rss_mb(pid) for pid in children(self.process.pid)), default=0.0)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed (apt-get install wrk nginx-light)")
    workdir = Path(tempfile.mkdtemp(prefix="llamagate-bench-"))
    upstream, conf = start_upstream(workdir / "nginx")
    servers: dict[str, Server] = {}
    samples: dict = {}
    try:
        port = free_port()
        servers["ceiling"] = Server([str(BIN / "gunicorn"), "-k", "gthread", "-w", "1", "--threads", "16",
                                     "-b", f"127.0.0.1:{port}", "baseline:app"],
                                    {**clean_env({}), "UPSTREAM": upstream}, port, HERE)
        gateway_settings = {"OLLAMA_HOST": upstream, "API_KEY": "sk-bench", "RATE_LIMIT_RPS": "1000000"}
        for name, cache in (("gateway", "false"), ("gateway-cache-hit", "true")):
            port = free_port()
            env = clean_env({**gateway_settings, "PORT": port, "CACHE_ENABLED": cache})
            env["CONFIG_FILE"] = ""
            servers[name] = Server([str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"], env, port, ROOT)
        # Rounds interleave the targets, so that a noisy moment on the machine hits all of them alike.
        for _ in range(args.rounds):
            for c in (1, 16):
                samples.setdefault(("direct", c), []).append(wrk(upstream + "/api/chat", "ollama", c, args.duration))
                for name, server in servers.items():
                    url = server.url + "/v1/chat/completions"
                    wrk(url, "openai", c, 1)  # warm-up
                    samples.setdefault((name, c), []).append(wrk(url, "openai", c, args.duration))
        rss = {name: server.worker_rss() for name, server in servers.items()}
    finally:
        for server in servers.values():
            server.stop()
        subprocess.run(["nginx", "-c", str(conf), "-p", str(workdir / "nginx"), "-s", "quit"], check=False,
                       stderr=subprocess.DEVNULL)
    order = ["direct", *servers]
    rows = {key: {field: statistics.median(run[field] for run in samples[key]) for field in samples[key][0]}
            for key in sorted(samples, key=lambda key: (order.index(key[0]), key[1]))}
    report(rows, rss)


def report(rows: dict, rss: dict) -> None:
    direct_p50 = rows[("direct", 1)]["p50_ms"]
    print(f"{'target':<20}{'c':>4}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'over direct ms':>16}{'peak RSS MB':>13}")
    for (name, c), row in rows.items():
        overhead = f"{row['p50_ms'] - direct_p50:.3f}" if c == 1 and name != "direct" else ""
        peak = f"{rss[name]:.1f}" if name in rss else ""
        print(f"{name:<20}{c:>4}{row['rps']:>10.0f}{row['p50_ms']:>9.3f}{row['p99_ms']:>9.3f}{overhead:>16}{peak:>13}")
    ceiling_overhead = rows[("ceiling", 1)]["p50_ms"] - direct_p50
    gateway_overhead = rows[("gateway", 1)]["p50_ms"] - direct_p50
    checks = [
        ("c1 added latency / ceiling's", gateway_overhead / ceiling_overhead, "<= 1.25"),
        ("c16 throughput / ceiling's", rows[("gateway", 16)]["rps"] / rows[("ceiling", 16)]["rps"], ">= 0.80"),
        ("cache-hit c16 throughput / ceiling's", rows[("gateway-cache-hit", 16)]["rps"] / rows[("ceiling", 16)]["rps"], ">= 2.00"),
        ("gateway peak RSS per worker (MB)", max(rss["gateway"], rss["gateway-cache-hit"]), "<= 60"),
    ]
    print()
    for label, value, target in checks:
        op, bound = target.split()
        ok = value <= float(bound) if op == "<=" else value >= float(bound)
        print(f"{label:<40}{value:>8.2f}   target {target:<8} {'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
