"""Benchmark: the gateway against a bare Flask pass-through (the ceiling) and the fixed-reply upstream itself.

    python tests/bench/run.py [--duration 10] [--rounds 3] [--no-mcp] [--redis] [--metrics-off] [--root PATH]
                              [--base PATH]

Needs Debian's `wrk` and `nginx-light`. Everything listens on 127.0.0.1 and stops at the end.
Prints req/s, p50/p99, overhead over direct, peak RSS per worker, the streamed relay's events/s and time to first
event, the start-up time, and each target ratio with whether it is met.

Non-streamed chats are driven by wrk at 1 and 16 connections, against one worker and (`-w2`) two of each. Streamed
chats (an upstream that sends a 1,000-line NDJSON answer at once, relayed as 1,000 SSE events) are driven by
tests/bench/sse_client.py at 1 and 8 connections. Rounds interleave every target (every other round in reverse order),
medians are reported. At c1 each round's run is C1_SLICES short runs of every target one after the other (direct,
ceiling, gateways, the order reversed every other slice), and the c1 ratio is the median of the slices' own ratios:
a shared machine's speed drifts within seconds, and the ratio of two runs far apart measures the drift too.

`gateway-mcp50` is the gateway with one stdio MCP server of 50 tools (tests/mcp/servers/fifty_tools.py of
this tree), so every chat request is offered those tools; the upstream's fixed reply calls none, so its
c1 p50 minus the plain gateway's is what offering them costs per request. `--redis` adds `gateway-redis` and
`gateway-redis-cache-hit`: the same with REDIS_URL at a redis-server of its own (limits and cache there).
`--metrics-off` adds `gateway-no-metrics` (METRICS_ENABLED=false): the difference is what counting costs.
`--root` runs the gateway targets from another checkout (e.g. a `git worktree` of an earlier commit), with
this tree's bench files; `--base` adds another checkout's gateway to the same rounds as `base-*` targets.
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
from dataclasses import dataclass
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))
import sse_client  # noqa: E402

from tests.gateway import clean_env  # noqa: E402
from tests.gateway import free_port  # noqa: E402

BIN = Path(sys.executable).parent
MCP_SERVER = HERE.parent / "mcp" / "servers" / "fifty_tools.py"
MCP_TOOLS = 50
AUTH = {"Authorization": "Bearer sk-bench"}
STREAM_LINES = 1000
STARTUP_TRIES = 3
C1_SLICES = 5


def wrk(url: str, body: str, connections: int, duration: int) -> dict:
    """One wrk run of chat.lua with the `openai` or `ollama` body."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(HERE / "chat.lua"), url, "--", body]
    out = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60).stdout
    if "Non-2xx or 3xx responses" in out:
        raise SystemExit(f"failed requests against {url}:\n{out}")
    fields = dict(re.findall(r"(\w+)=([\d.]+)", out.split("RESULT", 1)[1]))
    return {k: float(v) for k, v in fields.items()}


@dataclass
class Upstream:
    """The nginx upstream: `url` answers /api/chat with one fixed line, `stream_url` with STREAM_LINES lines."""

    url: str
    stream_url: str
    workdir: Path
    served: Path  # the directory of stream.ndjson

    def stop(self) -> None:
        subprocess.run(["nginx", "-c", str(self.workdir / "nginx.conf"), "-p", str(self.workdir), "-s", "quit"],
                       check=False, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.served, ignore_errors=True)


def stream_answer(lines: int = STREAM_LINES) -> str:
    """Ollama's NDJSON for an answer of `lines` lines: content lines, then the done line with its counts."""
    part = {"model": "llama3.2", "created_at": "2026-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": "tok "}, "done": False}
    done = {"model": "llama3.2", "created_at": "2026-01-01T00:00:00Z", "message": {"role": "assistant", "content": ""},
            "done": True, "done_reason": "stop", "prompt_eval_count": 26, "eval_count": lines - 1}
    return "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in [*[part] * (lines - 1), done])


def start_upstream(workdir: Path) -> Upstream:
    port, stream_port = free_port(), free_port()
    (workdir / "logs").mkdir(parents=True)
    served = Path(tempfile.mkdtemp(prefix="llamagate-bench-stream-"))  # readable by nginx's unprivileged workers
    served.chmod(0o755)
    (served / "stream.ndjson").write_text(stream_answer())
    (served / "stream.ndjson").chmod(0o644)
    conf = (HERE / "upstream-nginx.conf.template").read_text().replace("__PORT__", str(port))
    conf = conf.replace("__STREAM_PORT__", str(stream_port)).replace("__STREAM_ROOT__", str(served))
    (workdir / "nginx.conf").write_text(conf)
    subprocess.run(["nginx", "-c", str(workdir / "nginx.conf"), "-p", str(workdir)], check=True)
    upstream = Upstream(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{stream_port}", workdir, served)
    wait_for(upstream.url + "/api/version")
    wait_for(upstream.stream_url + "/api/version")
    return upstream


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


def gateway_command() -> list[str]:
    """The gateway as shipped: its gunicorn.conf.py, every setting from the environment (WORKERS among them)."""
    return [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"]


def ceiling_command(port: int, workers: int = 1) -> list[str]:
    """The bare pass-through under the gateway's gunicorn shape: gthread, 16 threads."""
    return [str(BIN / "gunicorn"), "-k", "gthread", "-w", str(workers), "--threads", "16", "-b", f"127.0.0.1:{port}",
            "baseline:app"]


def in_round(targets: dict, backwards: bool) -> list:
    """The (name, server) pairs of one round, in order or in reverse."""
    pairs = list(targets.items())
    return pairs[::-1] if backwards else pairs


def startup_seconds(command: list[str], env: dict, port: int, cwd: Path) -> float:
    """Seconds from starting the server to its first chat answer (median of STARTUP_TRIES, polled every 5 ms)."""
    times = []
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    body = {"model": "llama3.2", "messages": [{"role": "user", "content": "Hello"}]}
    for _ in range(STARTUP_TRIES):
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while time.perf_counter() - started < 30:
                try:
                    if requests.post(url, json=body, headers=AUTH, timeout=5).status_code == 200:
                        break
                except requests.ConnectionError:
                    pass
                time.sleep(0.005)
            else:
                raise SystemExit(f"{command} gave no answer within 30 s")
            times.append(time.perf_counter() - started)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(30)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk or stream run")
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
    upstream = start_upstream(workdir / "nginx")
    servers: dict[str, Server] = {}
    streams: dict[str, Server] = {}  # targets whose upstream streams STREAM_LINES lines
    only_c16: set[str] = set()  # the two-worker targets, measured at c16 only
    samples: dict = {}
    c1_ratios: list[list[float]] = []  # per round, the ratio of each c1 slice
    redis = None
    try:
        for name, workers in (("ceiling", 1), ("ceiling-w2", 2)):
            port = free_port()
            servers[name] = Server(ceiling_command(port, workers), {**clean_env({}), "UPSTREAM": upstream.url}, port,
                                   HERE)
        only_c16.add("ceiling-w2")
        port = free_port()
        streams["ceiling"] = Server(ceiling_command(port), {**clean_env({}), "UPSTREAM": upstream.stream_url}, port,
                                    HERE)
        gateway_settings = {"OLLAMA_HOST": upstream.url, "API_KEY": "sk-bench", "RATE_LIMIT_RPS": "1000000"}
        targets = [("gateway", "false", "", {}), ("gateway-cache-hit", "true", "", {}),
                   ("gateway-w2", "false", "", {"WORKERS": "2"})]
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
            servers[name] = Server(gateway_command(), env, port, tree, ready="/health/live")
            if extra.get("WORKERS"):
                only_c16.add(name)
            if config_file:
                wait_for_mcp(servers[name].url, MCP_TOOLS)
        for prefix, tree in trees:
            port = free_port()
            env = clean_env({**gateway_settings, "OLLAMA_HOST": upstream.stream_url, "PORT": port,
                             "CACHE_ENABLED": "false"})
            streams[prefix + "gateway"] = Server(gateway_command(), env, port, tree, ready="/health/live")
        # Rounds interleave the targets, so that a noisy moment on the machine hits all of them alike, and every other
        # round takes them in reverse order, so that no target always runs right after the same other one.
        for number in range(args.rounds):
            backwards = number % 2 == 1
            c1_targets = {name: server for name, server in servers.items() if name not in only_c16}
            for server in c1_targets.values():
                wrk(server.url + "/v1/chat/completions", "openai", 1, 1)  # warm-up
            slices, seconds = [], max(1, args.duration // C1_SLICES)
            for part in range(C1_SLICES):
                runs = {"direct": wrk(upstream.url + "/api/chat", "ollama", 1, seconds)}
                for name, server in in_round(c1_targets, (number + part) % 2 == 1):
                    runs[name] = wrk(server.url + "/v1/chat/completions", "openai", 1, seconds)
                slices.append(runs)
            for name in slices[0]:
                samples.setdefault((name, 1), []).append(
                    {field: statistics.median(runs[name][field] for runs in slices) for field in slices[0][name]})
            c1_ratios.append([(runs["gateway"]["p50_ms"] - runs["direct"]["p50_ms"]) /
                              (runs["ceiling"]["p50_ms"] - runs["direct"]["p50_ms"]) for runs in slices])
            samples.setdefault(("direct", 16), []).append(wrk(upstream.url + "/api/chat", "ollama", 16, args.duration))
            for name, server in in_round(servers, backwards):
                url = server.url + "/v1/chat/completions"
                wrk(url, "openai", 16, 1)  # warm-up
                samples.setdefault((name, 16), []).append(wrk(url, "openai", 16, args.duration))
            for c in (1, 8):
                for name, server in in_round(streams, backwards):
                    url = server.url + "/v1/chat/completions"
                    sse_client.run(url, c, 1, key="sk-bench", expect=STREAM_LINES)  # warm-up
                    samples.setdefault((name, c, "stream"), []).append(
                        sse_client.run(url, c, args.duration, key="sk-bench", expect=STREAM_LINES))
        rss = {name: server.worker_rss() for name, server in servers.items()}
        rss.update({f"{name}-stream": server.worker_rss() for name, server in streams.items()})
    finally:
        for server in [*servers.values(), *streams.values()]:
            server.stop()
        if redis is not None:
            redis.terminate()
            redis.wait(10)
    try:  # with nothing else running
        startup = {}
        for label, tree in trees:
            port = free_port()
            env = clean_env({**gateway_settings, "PORT": port, "CACHE_ENABLED": "false"})
            startup[label + "gateway"] = startup_seconds(gateway_command(), env, port, tree)
        port = free_port()
        startup["ceiling"] = startup_seconds(ceiling_command(port), {**clean_env({}), "UPSTREAM": upstream.url},
                                             port, HERE)
    finally:
        upstream.stop()
    order = ["direct", *servers]
    rows = {key: {field: statistics.median(run[field] for run in samples[key]) for field in samples[key][0]}
            for key in sorted((key for key in samples if len(key) == 2), key=lambda key: (order.index(key[0]), key[1]))}
    stream_rows = {key[:2]: {field: statistics.median(run[field] for run in samples[key]) for field in samples[key][0]}
                   for key in samples if len(key) == 3}
    report(rows, stream_rows, rss, startup, c1_ratios)


def report(rows: dict, stream_rows: dict, rss: dict, startup: dict, c1_ratios: list[list[float]]) -> None:
    direct_p50 = rows[("direct", 1)]["p50_ms"]
    print(f"{'target':<20}{'c':>4}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'over direct ms':>16}{'peak RSS MB':>13}")
    for (name, c), row in rows.items():
        overhead = f"{row['p50_ms'] - direct_p50:.3f}" if c == 1 and name != "direct" else ""
        peak = f"{rss[name]:.1f}" if name in rss else ""
        print(f"{name:<20}{c:>4}{row['rps']:>10.0f}{row['p50_ms']:>9.3f}{row['p99_ms']:>9.3f}{overhead:>16}{peak:>13}")
    print(f"\nstreamed relay of {STREAM_LINES} events")
    print(f"{'target':<20}{'c':>4}{'events/s per stream':>21}{'events/s in all':>17}{'first event ms':>16}"
          f"{'streams':>9}{'peak RSS MB':>13}")
    for (name, c), row in sorted(stream_rows.items()):
        print(f"{name:<20}{c:>4}{row['stream_eps']:>21.0f}{row['aggregate_eps']:>17.0f}{row['ttfb_ms']:>16.3f}"
              f"{row['streams']:>9.0f}{rss.get(name + '-stream', 0):>13.1f}")
    print("\nstart-up to first answer: " + ", ".join(f"{name} {seconds:.3f} s" for name, seconds in startup.items()))
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
        for label, ours, theirs, key in [("c1 p50 ms", ("gateway", 1), ("base-gateway", 1), "p50_ms"),
                                         ("c16 req/s", ("gateway", 16), ("base-gateway", 16), "rps"),
                                         ("w2 c16 req/s", ("gateway-w2", 16), ("base-w2", 16), "rps"),
                                         ("cache-hit c16 req/s", ("gateway-cache-hit", 16), ("base-cache-hit", 16), "rps"),
                                         ("mcp50 c1 p50 ms", ("gateway-mcp50", 1), ("base-mcp50", 1), "p50_ms")]:
            if ours in rows and theirs in rows:
                a, b = rows[ours][key], rows[theirs][key]
                print(f"  {label:<26}{a:>10.3f} vs {b:>10.3f}  ({(a / b - 1) * 100:+.1f} %)")
        for label, c, key in [("stream c1 events/s", 1, "stream_eps"), ("stream c8 events/s", 8, "aggregate_eps"),
                              ("stream first event ms", 1, "ttfb_ms")]:
            a, b = stream_rows[("gateway", c)][key], stream_rows[("base-gateway", c)][key]
            print(f"  {label:<26}{a:>10.3f} vs {b:>10.3f}  ({(a / b - 1) * 100:+.1f} %)")
    by_round = [statistics.median(ratios) for ratios in c1_ratios]
    print("\nc1 added latency / ceiling's, slice by slice:")
    for number, (ratios, median) in enumerate(zip(c1_ratios, by_round, strict=True), 1):
        print(f"  round {number}: " + " ".join(f"{ratio:.2f}" for ratio in ratios) + f"  (median {median:.2f})")
    ceiling16 = rows[("ceiling", 16)]["rps"]
    stream, ceiling_stream = stream_rows[("gateway", 1)], stream_rows[("ceiling", 1)]
    checks = [
        ("c1 added latency / ceiling's", statistics.median(r for ratios in c1_ratios for r in ratios), "<= 1.0"),
        ("  spread of the rounds' medians of it", max(by_round) - min(by_round), "<= 0.1"),
        ("c16 throughput / ceiling's", rows[("gateway", 16)]["rps"] / ceiling16, ">= 1.0"),
        ("c16 throughput, 2 workers / ceiling's", rows[("gateway-w2", 16)]["rps"] / rows[("ceiling-w2", 16)]["rps"],
         ">= 1.0"),
        ("cache-hit c16 throughput / ceiling's", rows[("gateway-cache-hit", 16)]["rps"] / ceiling16, ">= 3.0"),
        ("stream c1 events/s / ceiling's", stream["stream_eps"] / ceiling_stream["stream_eps"], ">= 1.0"),
        ("stream c8 events/s in all / ceiling's",
         stream_rows[("gateway", 8)]["aggregate_eps"] / stream_rows[("ceiling", 8)]["aggregate_eps"], ">= 1.0"),
        ("stream first event − ceiling's (ms)", stream["ttfb_ms"] - ceiling_stream["ttfb_ms"], "<= 0.1"),
        ("gateway peak RSS per worker (MB)", max(rss["gateway"], rss["gateway-cache-hit"], rss["gateway-stream"]),
         "<= 45"),
        ("start-up to first answer (s)", startup["gateway"], "<= 0.5"),
    ]
    print()
    for label, value, target in checks:
        op, bound = target.split()
        ok = value <= float(bound) if op == "<=" else value >= float(bound)
        print(f"{label:<42}{value:>8.2f}   target {target:<8} {'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
