"""Benchmark: the gateway against a bare pass-through and the fixed-reply upstream itself, with wrk.

    python tests/bench/run.py [--duration 10] [--rounds 3] [--no-mcp] [--redis] [--metrics-off] [--root PATH]

Needs Debian's `wrk` and `nginx-light`. Everything listens on 127.0.0.1 and stops at the end.
Prints req/s, p50/p99, overhead over direct, peak RSS per worker and the target ratios.

`gateway-mcp50` is the gateway with one stdio MCP server of 50 tools (tests/mcp/servers/fifty_tools.py of
this tree), so every chat request is offered those tools; the upstream's fixed reply calls none, so its
c1 p50 minus the plain gateway's is what offering them costs per request. `--redis` adds `gateway-redis` and
`gateway-redis-cache-hit`: the same with REDIS_URL at a redis-server of its own (limits and cache there).
`--metrics-off` adds `gateway-no-metrics` (METRICS_ENABLED=false): the difference is what counting costs.
`--root` runs the gateway targets from another checkout (e.g. a `git worktree` of an earlier commit), with
this tree's bench files.
"""

from __future__ import annotations

import argparse
import itertools
import json
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
MCP_SERVER = HERE.parent / "mcp" / "servers" / "fifty_tools.py"
MCP_TOOLS = 50
AUTH = {"Authorization": "Bearer sk-bench"}


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


def wait_for_mcp(url: str, tools: int, timeout: float = 60) -> None:
    """Poll the gateway's MCP server list until every server is ready and they offer ``tools`` tools in all."""
    deadline = time.monotonic() + timeout
    states: list = []
    while time.monotonic() < deadline:
        try:
            states = requests.get(url + "/v1/mcp/servers", headers=AUTH, timeout=2).json()["servers"]
        except (requests.RequestException, ValueError, KeyError):
            states = []
        if states and all(s["status"] == "ready" for s in states) and sum(s["tool_count"] for s in states) == tools:
            return
        time.sleep(0.2)
    raise SystemExit(f"the MCP servers of {url} did not get ready with {tools} tools: {states}")


def mcp_config(path: Path) -> Path:
    """A config file that runs the 50-tool test server over stdio (JSON is valid YAML)."""
    server = {"name": "ws", "transport": "stdio", "command": sys.executable, "args": [str(MCP_SERVER)]}
    path.write_text(json.dumps({"mcp": {"servers": [server]}}, indent=2) + "\n")
    return path


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

    def __init__(self, command: list[str], env: dict, port: int, cwd: Path, ready: str = "/"):
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(self.url + ready)
        except BaseException:
            self.stop()
            raise

    def worker_rss(self) -> float:
        return max((peak_rss_mb(pid) for pid in children(self.process.pid)), default=0.0)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    parser.add_argument("--no-mcp", dest="mcp", action="store_false", help="leave out the gateway-mcp50 target")
    parser.add_argument("--redis", action="store_true", help="add targets with REDIS_URL (needs redis-server)")
    parser.add_argument("--metrics-off", action="store_true", help="add a target with METRICS_ENABLED=false")
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout whose gateway is measured (default: this one)")
    parser.add_argument("--base", type=Path, help="another checkout (e.g. a worktree of the previous commit) measured "
                                                  "in the same interleaved rounds, as base-* targets")
    args = parser.parse_args()
    root = args.root.resolve()
    for tree in filter(None, (root, args.base)):
        if not (tree / "gunicorn.conf.py").is_file() or not (tree / "wsgi.py").is_file():
            raise SystemExit(f"{tree} is not a gateway checkout (no gunicorn.conf.py and wsgi.py)")
    for tool in ("wrk", "nginx", *(["redis-server"] if args.redis else [])):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed (apt-get install wrk nginx-light)")
    print(f"gateway from {root}", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="llamagate-bench-"))
    upstream, conf = start_upstream(workdir / "nginx")
    servers: dict[str, Server] = {}
    samples: dict = {}
    redis = None
    try:
        port = free_port()
        servers["ceiling"] = Server([str(BIN / "gunicorn"), "-k", "gthread", "-w", "1", "--threads", "16",
                                     "-b", f"127.0.0.1:{port}", "baseline:app"],
                                    {**clean_env({}), "UPSTREAM": upstream}, port, HERE)
        gateway_settings = {"OLLAMA_HOST": upstream, "API_KEY": "sk-bench", "RATE_LIMIT_RPS": "1000000"}
        targets = [("gateway", "false", "", {}), ("gateway-cache-hit", "true", "", {})]
        if args.mcp:
            targets.append(("gateway-mcp50", "false", str(mcp_config(workdir / "mcp50.yaml")), {}))
        if args.redis:
            redis_port = free_port()
            redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no"], stdout=subprocess.DEVNULL)
            shared = {"REDIS_URL": f"redis://127.0.0.1:{redis_port}/0"}
            targets += [("gateway-redis", "false", "", shared), ("gateway-redis-cache-hit", "true", "", shared)]
        if args.metrics_off:
            targets.append(("gateway-no-metrics", "false", "", {"METRICS_ENABLED": "false"}))
        trees = [("", root)] + ([("base-", args.base.resolve())] if args.base else [])
        for (prefix, tree), (name, cache, config_file, extra) in itertools.product(trees, targets):
            name = prefix + (name.removeprefix("gateway-") if prefix else name)
            port = free_port()
            env = clean_env({**gateway_settings, **extra, "PORT": port, "CACHE_ENABLED": cache})
            env["CONFIG_FILE"] = config_file
            servers[name] = Server([str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"], env, port, tree,
                                   ready="/health/live")
            if config_file:
                wait_for_mcp(servers[name].url, MCP_TOOLS)
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
        if redis is not None:
            redis.terminate()
            redis.wait(10)
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
    if ("gateway-mcp50", 1) in rows:
        plain, mcp = rows[("gateway", 1)]["p50_ms"], rows[("gateway-mcp50", 1)]["p50_ms"]
        print(f"\n{MCP_TOOLS} MCP tools offered: c1 p50 {mcp:.3f} ms vs {plain:.3f} ms without, "
              f"{(mcp - plain) * 1000:.0f} µs per request")
    for label, ours, plain in [("REDIS_URL set", "gateway-redis", "gateway"),
                               ("REDIS_URL set, cache hits", "gateway-redis-cache-hit", "gateway-cache-hit"),
                               ("METRICS_ENABLED=false", "gateway-no-metrics", "gateway")]:
        if (ours, 1) in rows:
            a1, b1 = rows[(ours, 1)]["p50_ms"], rows[(plain, 1)]["p50_ms"]
            a16, b16 = rows[(ours, 16)]["rps"], rows[(plain, 16)]["rps"]
            print(f"\n{label}: c1 p50 {a1:.3f} vs {b1:.3f} ms ({(a1 - b1) * 1000:+.0f} µs), "
                  f"c16 {a16:.0f} vs {b16:.0f} req/s ({(a16 / b16 - 1) * 100:+.1f} %)")
    if ("base-gateway", 1) in rows:
        print("\nthis tree against the base tree, same rounds:")
        for label, ours, theirs, c, key in [("c1 p50 ms", "gateway", "base-gateway", 1, "p50_ms"),
                                            ("c16 req/s", "gateway", "base-gateway", 16, "rps"),
                                            ("cache-hit c16 req/s", "gateway-cache-hit", "base-cache-hit", 16, "rps"),
                                            ("mcp50 c1 p50 ms", "gateway-mcp50", "base-mcp50", 1, "p50_ms")]:
            if (ours, c) in rows and (theirs, c) in rows:
                a, b = rows[(ours, c)][key], rows[(theirs, c)][key]
                print(f"  {label:<22}{a:>10.3f} vs {b:>10.3f}  ({(a / b - 1) * 100:+.1f} %)")
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
