"""GET /metrics through real gunicorn: values move as requests are made, every worker counts, auth and settings."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
import yaml
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from app import metrics
from tests.conftest import BASE_SETTINGS
from tests.gateway import ROOT
from tests.gateway import Gateway

SERVERS = Path(__file__).parent / "mcp" / "servers"
DASHBOARD = ROOT / "deploy" / "grafana" / "llamagate.json"
KEY = "sk-metrics-test-key-0123456789"
SUFFIXES = {"counter": ("_total", "_created"), "gauge": ("",),
            "histogram": ("_bucket", "_count", "_sum", "_created")}


class Scrape:
    """One /metrics answer, parsed by prometheus_client's own parser."""

    def __init__(self, text: str):
        self.families = list(text_string_to_metric_families(text))
        self.samples = [sample for family in self.families for sample in family.samples]

    def value(self, name: str, **labels) -> float:
        """The sum of the samples of `name` whose labels include `labels`."""
        return sum(s.value for s in self.samples
                   if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def scrape(gateway, headers: dict | None = None) -> Scrape:
    response = requests.get(gateway.url + "/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return Scrape(response.text)


def wait_for(gateway, name: str, expected: float, timeout: float = 10.0, **labels) -> Scrape:
    """Scrape until `name` (with `labels`) has the expected value: responses are counted when they close."""
    deadline = time.monotonic() + timeout
    while True:
        now = scrape(gateway)
        if now.value(name, **labels) == expected or time.monotonic() > deadline:
            assert now.value(name, **labels) == expected, (name, labels, now.value(name, **labels))
            return now
        time.sleep(0.05)


def chat(gateway, content: str, headers: dict | None = None, **body) -> requests.Response:
    payload = {"model": "llama3.2", "messages": [{"role": "user", "content": content}], **body}
    return requests.post(gateway.url + "/v1/chat/completions", json=payload, headers=headers, timeout=30)


def unique(text: str = "") -> str:
    return f"{text} {uuid.uuid4().hex}".strip()


@pytest.fixture(scope="module")
def metered(start_gateway):
    return start_gateway(CACHE_ENABLED="true")


@pytest.fixture(scope="module")
def tooled(start_gateway, tmp_path_factory):
    """Two MCP servers and the calculator plugin (answers with tools are never cached)."""
    config = tmp_path_factory.mktemp("metrics") / "llamagate.yaml"
    config.write_text(yaml.safe_dump({
        "mcp": {"default_tool_timeout": "1s", "deny_tools": ["tools__env_keys"], "servers": [
            {"name": "tools", "transport": "stdio", "command": sys.executable, "args": [str(SERVERS / "basic.py")]},
            {"name": "bad", "transport": "stdio", "command": sys.executable,
             "args": [str(SERVERS / "misbehaving.py")]}]},
        "plugins": {"dirs": [str(ROOT / "plugins")], "items": [{"name": "calculator"}]}}))
    gateway = start_gateway(CONFIG_FILE=str(config))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the MCP servers connect in the background
        listed = [requests.get(f"{gateway.url}/v1/mcp/servers/{name}/tools", timeout=10) for name in ("tools", "bad")]
        if all(response.status_code == 200 and response.json()["count"] for response in listed):
            return gateway
        time.sleep(0.2)
    raise AssertionError(f"MCP servers did not come up:\n{gateway.output()[-3000:]}")


def test_requests_and_the_latency_histogram_count_by_url_rule(metered):
    before = scrape(metered)
    for _ in range(3):
        assert requests.get(metered.url + "/v1/models", timeout=10).status_code == 200
    assert requests.get(metered.url + "/v1/models/no-such-model", timeout=10).status_code == 404
    assert requests.get(metered.url + f"/no/such/{uuid.uuid4().hex}", timeout=10).status_code == 404
    after = wait_for(metered, "llamagate_requests_total", before.value("llamagate_requests_total", route="unmatched") + 1,
                     route="unmatched")
    counted = {"route": "/v1/models", "method": "GET", "status": "200", "key": ""}
    assert after.value("llamagate_requests_total", **counted) - before.value("llamagate_requests_total", **counted) == 3
    rule = "/v1/models/<path:model_id>"
    assert after.value("llamagate_requests_total", route=rule, status="404") - \
        before.value("llamagate_requests_total", route=rule, status="404") == 1
    histogram = "llamagate_request_duration_seconds_count"
    assert after.value(histogram, route="/v1/models") - before.value(histogram, route="/v1/models") == 3
    assert after.value("llamagate_request_duration_seconds_bucket", route="/v1/models", le="+Inf") == \
        after.value(histogram, route="/v1/models")
    assert not [s for s in after.samples if "no/such" in s.labels.get("route", "")], "raw paths are never labels"


def test_tokens_by_model_are_the_upstream_usage(metered, fake_ollama):
    before = scrape(metered)
    answer = chat(metered, unique("count my tokens"))
    assert answer.status_code == 200, answer.text
    done = fake_ollama.done_lines[-1]
    usage = answer.json()["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (done["prompt_eval_count"], done["eval_count"])
    after = wait_for(metered, "llamagate_tokens_total", before.value("llamagate_tokens_total", direction="in") +
                     done["prompt_eval_count"], direction="in")
    for direction, count in (("in", done["prompt_eval_count"]), ("out", done["eval_count"])):
        labels = {"model": "llama3.2", "key": "", "direction": direction}
        assert after.value("llamagate_tokens_total", **labels) - before.value("llamagate_tokens_total", **labels) == count


def test_a_stream_counts_its_time_to_first_token_and_is_open_while_it_runs(metered):
    before = scrape(metered)
    assert before.value("llamagate_open_streams") == 0
    with chat_stream(metered, "[[slow 6 0.25]]") as response:
        lines = response.iter_lines()
        assert next(lines).startswith(b"data: ")
        assert scrape(metered).value("llamagate_open_streams") == 1
        rest = b"\n".join(lines)
    assert rest.rstrip().endswith(b"data: [DONE]")
    wait_for(metered, "llamagate_open_streams", 0)
    ttft = "llamagate_time_to_first_token_seconds_count"
    after = wait_for(metered, ttft, before.value(ttft, model="llama3.2") + 1, model="llama3.2")
    assert after.value("llamagate_time_to_first_token_seconds_sum", model="llama3.2") > \
        before.value("llamagate_time_to_first_token_seconds_sum", model="llama3.2")


def test_a_client_that_leaves_mid_stream_closes_its_count(metered):
    response = chat_stream(metered, "[[slow 20 0.2]]")
    with response:
        assert next(response.iter_lines()).startswith(b"data: ")
        assert scrape(metered).value("llamagate_open_streams") == 1
    wait_for(metered, "llamagate_open_streams", 0)


def test_the_native_ndjson_relay_counts_as_an_open_stream(metered):
    body = {"model": "llama3.2", "messages": [{"role": "user", "content": "[[slow 6 0.25]]"}], "stream": True}
    with requests.post(metered.url + "/api/chat", json=body, stream=True, timeout=30) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        assert json.loads(next(lines))["message"]["content"] == "tok0 "
        assert scrape(metered).value("llamagate_open_streams") == 1
        assert json.loads(list(lines)[-1])["done"] is True
    wait_for(metered, "llamagate_open_streams", 0)


def test_cache_hits_misses_and_bypasses(metered):
    before = scrape(metered)
    content = unique("cache me")
    first, second = chat(metered, content), chat(metered, content)
    bypassed = chat(metered, content, headers={"Cache-Control": "no-cache"})
    assert [r.headers["X-Cache"] for r in (first, second, bypassed)] == ["MISS", "HIT", "BYPASS"]
    after = wait_for(metered, "llamagate_cache_requests_total", before.value("llamagate_cache_requests_total") + 3)
    for outcome in ("miss", "hit", "bypass"):
        assert after.value("llamagate_cache_requests_total", outcome=outcome) - \
            before.value("llamagate_cache_requests_total", outcome=outcome) == 1


@pytest.mark.parametrize(("call", "server", "tool", "outcome"), [
    ('[[tool tools__echo {"message": "hi"}]]', "tools", "echo", "ok"),
    ('[[tool tools__fail {"reason": "no"}]]', "tools", "fail", "error"),
    ('[[tool bad__slow {"seconds": 5}]]', "bad", "slow", "timeout"),
    ('[[tool tools__env_keys {}]]', "tools", "env_keys", "rejected"),
    ('[[tool calculator__calculate {"expression": "(2+3)*4"}]]', "calculator", "calculate", "ok"),
])
def test_tool_calls_by_server_tool_and_outcome(tooled, call, server, tool, outcome):
    labels = {"server": server, "tool": tool, "outcome": outcome}
    before = scrape(tooled).value("llamagate_mcp_tool_calls_total", **labels)
    answer = chat(tooled, unique(call))
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"].startswith("Tool said: ")
    wait_for(tooled, "llamagate_mcp_tool_calls_total", before + 1, **labels)


def test_the_scrape_parses_and_declares_every_collector(metered):
    text = requests.get(metered.url + "/metrics", timeout=10).text
    families = {family.name: family.type for family in text_string_to_metric_families(text)}
    assert families["llamagate_requests"] == "counter"
    assert families["llamagate_request_duration_seconds"] == "histogram"
    assert families["llamagate_open_streams"] == "gauge"
    assert "# TYPE llamagate_open_streams gauge" in text


def chat_stream(gateway, content: str) -> requests.Response:
    payload = {"model": "llama3.2", "messages": [{"role": "user", "content": unique(content)}], "stream": True}
    response = requests.post(gateway.url + "/v1/chat/completions", json=payload, stream=True, timeout=30)
    assert response.status_code == 200
    return response


# -- every worker counts ------------------------------------------------------------------------------------------

def per_worker_counts(directory: Path, tmp_path: Path, labels: dict) -> dict[str, float]:
    """The requests each worker counted, read from its own file (one MultiProcessCollector per file)."""
    from prometheus_client import CollectorRegistry
    from prometheus_client import generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    counts = {}
    for path in directory.glob("counter_*.db"):
        alone = tmp_path / path.stem
        alone.mkdir(exist_ok=True)
        shutil.copy(path, alone / path.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))
        counts[path.stem] = Scrape(generate_latest(registry).decode()).value("llamagate_requests_total", **labels)
    return counts


def test_two_workers_are_summed_and_a_past_runs_files_are_cleared(start_gateway, tmp_path):
    directory = tmp_path / "multiproc"
    directory.mkdir()
    stale = "from app.metrics import REQUESTS; REQUESTS.labels('/health/live', 'HEAD', '200', '').inc(1000)"
    subprocess.run([sys.executable, "-c", stale], cwd=ROOT, check=True, timeout=60,
                   env={"PATH": os.environ["PATH"], "PROMETHEUS_MULTIPROC_DIR": str(directory)})
    assert list(directory.glob("counter_*.db")), "the past run left its file"
    gateway = start_gateway(WORKERS="2", PROMETHEUS_MULTIPROC_DIR=str(directory))
    labels = {"route": "/health/live", "method": "HEAD", "status": "200"}  # the start-up probes are GETs
    assert scrape(gateway).value("llamagate_requests_total", **labels) == 0
    sent = 0
    for _ in range(20):  # new connections, many at once, until both workers have answered some
        threads = [threading.Thread(target=lambda: requests.head(gateway.url + "/health/live", timeout=10).close())
                   for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        sent += len(threads)
        wait_for(gateway, "llamagate_requests_total", sent, **labels)
        counts = per_worker_counts(directory, tmp_path, labels)
        if sum(1 for count in counts.values() if count) >= 2:
            break
    assert sum(1 for count in counts.values() if count) == 2, counts
    assert sum(counts.values()) == sent
    assert scrape(gateway).value("llamagate_requests_total", **labels) == sent


def worker_pids(gateway) -> list[int]:
    pid = gateway.process.pid
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_a_killed_workers_open_streams_leave_the_total_and_its_directory_goes_at_exit(start_gateway):
    gateway = start_gateway()
    (worker,) = worker_pids(gateway)
    roots = {Path("/dev/shm"), Path(tempfile.gettempdir())}
    (directory,) = {path.parent for root in roots for path in root.glob(f"llamagate-metrics-*/*_{worker}.db")}
    assert directory.is_dir() and directory.stat().st_mode & 0o777 == 0o700
    response = chat_stream(gateway, "[[slow 50 0.2]]")
    with response:
        assert next(response.iter_lines()).startswith(b"data: ")
        assert scrape(gateway).value("llamagate_open_streams") == 1
        os.kill(worker, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while worker in worker_pids(gateway) or not worker_pids(gateway):
            assert time.monotonic() < deadline, "gunicorn did not replace the worker"
            time.sleep(0.05)
    wait_for(gateway, "llamagate_open_streams", 0, timeout=20)
    assert gateway.stop() == 0
    assert not directory.exists(), "the private directory is removed at exit"


def test_a_metric_file_still_at_zero_bytes_does_not_fail_the_scrape(start_gateway):
    """A worker's new file exists empty for a moment before it is sized (for good if the worker is killed then)."""
    gateway = start_gateway()
    (worker,) = worker_pids(gateway)
    roots = {Path("/dev/shm"), Path(tempfile.gettempdir())}
    deadline = time.monotonic() + 10
    while not (found := {p.parent for root in roots for p in root.glob(f"llamagate-metrics-*/*_{worker}.db")}):
        assert time.monotonic() < deadline, "the worker wrote no metric file"
        time.sleep(0.05)
    (directory,) = found
    (directory / "counter_4194000.db").touch()
    assert scrape(gateway).value("llamagate_requests_total", route="/health/live", method="GET") >= 1


def test_waitress_counts_in_its_one_process(fake_ollama):
    gateway = Gateway({**BASE_SETTINGS, "OLLAMA_HOST": fake_ollama.url}, command=[sys.executable, "wsgi.py"]).start()
    try:
        for _ in range(3):
            assert requests.head(gateway.url + "/health/live", timeout=10).status_code == 200
        counted = wait_for(gateway, "llamagate_requests_total", 3, route="/health/live", method="HEAD")
        assert counted.value("process_resident_memory_bytes") > 0, "the default registry, not multiprocess files"
    finally:
        assert gateway.stop() == 0


# -- auth and settings ----------------------------------------------------------------------------------------------

def test_metrics_need_the_api_key_by_default(start_gateway):
    gateway = start_gateway(API_KEY=KEY)
    refused = requests.get(gateway.url + "/metrics", timeout=10)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
    assert KEY not in refused.text
    keyed = {"Authorization": f"Bearer {KEY}"}
    deadline = time.monotonic() + 10
    while scrape(gateway, headers=keyed).value("llamagate_requests_total", route="/metrics", method="GET",
                                               status="401") != 1:  # refused before the view, counted all the same
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_metrics_public_serves_them_without_the_key(start_gateway):
    gateway = start_gateway(API_KEY=KEY, METRICS_PUBLIC="true")
    scraped = scrape(gateway)
    assert KEY not in json.dumps([s.labels for s in scraped.samples])
    assert requests.get(gateway.url + "/v1/models", timeout=10).status_code == 401, "only /metrics is public"


def test_metrics_disabled_is_a_404(start_gateway):
    gateway = start_gateway(METRICS_ENABLED="false")
    missing = requests.get(gateway.url + "/metrics", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "invalid_request_error"


# -- the dashboard --------------------------------------------------------------------------------------------------

def collectors() -> list[MetricWrapperBase]:
    return [value for value in vars(metrics).values() if isinstance(value, MetricWrapperBase)]


def exposed_names() -> set[str]:
    return {collector._name + suffix for collector in collectors() for suffix in SUFFIXES[collector._type]}


def test_the_dashboard_parses_and_queries_only_declared_metrics():
    dashboard = json.loads(DASHBOARD.read_text())
    variables = dashboard["templating"]["list"]
    assert any(v["type"] == "datasource" and v["query"] == "prometheus" for v in variables)
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    assert len(exprs) >= 10
    queried = {name for expr in exprs for name in re.findall(r"\bllamagate_[a-z_]+", expr)}
    assert queried and not queried - exposed_names(), sorted(queried - exposed_names())
    declared = {collector._name for collector in collectors()}
    assert len(declared) == 10
    assert all(any(name.startswith(family) for name in queried) for family in declared), "every metric has a panel"
    for panel in dashboard["panels"]:
        if panel.get("targets"):
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
