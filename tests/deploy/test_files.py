"""The deployment files that cannot run here (Docker, systemd, IIS, Windows) checked as far as this machine allows."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from app.settings import load_settings
from app.settings.mcp import load_mcp_section
from app.settings.schema import SETTING_NAMES
from tests.gateway import ROOT

DEPLOY = ROOT / "deploy"
SETTINGS = sorted(SETTING_NAMES)
DEFAULT_SHUTDOWN = load_settings({"ENV_FILE": "", "CONFIG_FILE": ""})["SHUTDOWN_TIMEOUT"]


def test_env_example_covers_every_setting_with_its_default():
    names = set(re.findall(r"(?m)^#? ?([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text()))
    assert not set(SETTINGS) - names, f".env.example lacks {sorted(set(SETTINGS) - names)}"
    assert_defaults({"ENV_FILE": str(ROOT / ".env.example"), "CONFIG_FILE": ""})


def test_yaml_example_covers_every_setting_with_its_default():
    data = yaml.safe_load((ROOT / "llamagate.example.yaml").read_text())
    assert not {s.lower() for s in SETTINGS} - set(data), f"missing {sorted({s.lower() for s in SETTINGS} - set(data))}"
    assert_defaults({"ENV_FILE": "", "CONFIG_FILE": str(ROOT / "llamagate.example.yaml")})


def assert_defaults(environ: dict) -> None:
    loaded, defaults = load_settings(environ), load_settings({"ENV_FILE": "", "CONFIG_FILE": ""})
    assert {k: loaded[k] for k in SETTINGS} == {k: defaults[k] for k in SETTINGS}


def test_the_commented_mcp_example_is_valid():
    text = (ROOT / "llamagate.example.yaml").read_text()
    block = [line[2:] for line in text[text.index("# mcp:"):].splitlines() if line.startswith("# ")]
    section = yaml.safe_load("\n".join(block))["mcp"]
    settings = load_mcp_section(section, {"SEARCH_TOKEN": "x"}, "llamagate.example.yaml")
    assert [s.name for s in settings.servers] == ["time", "search"]


def test_dockerfile_multi_stage_non_root_healthcheck():
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"(?m)^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text)
    assert len(stages) == 2 and stages[0][1] == "build" and "slim" in stages[1][0]
    runtime = text[text.rindex("\nFROM "):]
    assert re.search(r"(?m)^USER\s+(?!root\b|0\b)\w+", runtime)
    assert re.search(r"(?m)^HEALTHCHECK .*\n?.*/health", runtime)
    assert "OLLAMA_HOST=http://ollama:11434" in runtime
    assert '"-r", "/tmp/requirements.txt"' in runtime or "-r /tmp/requirements.txt" in runtime
    assert 'CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]' in runtime
    for source in re.findall(r"(?m)^COPY\s+(?!--from)(?:--\S+\s+)*(.+)\s+\S+$", text):
        for path in source.split():
            assert (ROOT / path).exists(), f"COPY {path}: not in the repository"
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text()
    for path in ("requirements.txt", "app/", "gunicorn.conf.py", "wsgi.py"):
        assert f"!{path}" in ignored


def test_compose_file_parses_and_wires_gateway_to_ollama():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"ollama", "gateway", "redis"} <= set(services)
    gateway = services["gateway"]
    assert (ROOT / gateway["build"]["dockerfile"]).is_file() and gateway["build"]["context"] == ".."
    assert gateway["environment"]["OLLAMA_HOST"] == "http://ollama:11434"
    assert gateway["depends_on"]["ollama"]["condition"] == "service_healthy"
    assert int(gateway["stop_grace_period"].rstrip("s")) > DEFAULT_SHUTDOWN
    assert services["redis"]["profiles"] == ["redis"]
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        result = subprocess.run(["docker", "compose", "-f", str(DEPLOY / "docker-compose.yml"), "config", "-q"],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr


def test_systemd_unit_is_hardened_and_verifies():
    text = (DEPLOY / "systemd" / "llamagate.service").read_text()
    for line in ("User=llamagate", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes",
                 "EnvironmentFile=-/etc/llamagate/llamagate.env", "KillSignal=SIGTERM", "Type=notify"):
        assert re.search(rf"(?m)^{re.escape(line)}$", text), line
    assert int(re.search(r"(?m)^TimeoutStopSec=(\d+)$", text).group(1)) > DEFAULT_SHUTDOWN
    assert "-c /opt/llamagate/gunicorn.conf.py wsgi:app" in text
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    gunicorn = Path(sys.executable).with_name("gunicorn")
    unit = Path(sys.prefix) / "llamagate-verify.service"
    try:
        unit.write_text(text.replace("/opt/llamagate/.venv/bin/gunicorn", str(gunicorn)))
        result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    finally:
        unit.unlink(missing_ok=True)
    assert result.returncode == 0 and "llamagate" not in result.stderr, result.stderr


def test_iis_web_config_proxies_the_api_unbuffered():
    root = ET.parse(DEPLOY / "iis" / "web.config").getroot()
    server = root.find("system.webServer")
    admin, *rules = server.findall("rewrite/rules/rule")
    assert len(rules) == 2
    admin_pattern = re.compile(admin.find("match").get("url"))
    assert all(admin_pattern.fullmatch(p) for p in ("v1/mcp/servers", "v1/plugins", "v1/plugins/x/disable"))
    assert not any(admin_pattern.fullmatch(p) for p in ("v1/plugins/x/ping", "v1/models", "v1/mcpx"))
    loopback = re.compile(admin.find("conditions/add").get("pattern"))
    assert admin.find("conditions/add").get("negate") == "true" and loopback.match("127.0.0.1") and loopback.match("::1")
    assert admin.find("action").get("statusCode") == "403"
    for rule in rules:
        pattern = re.compile(rule.find("match").get("url"))
        assert all(pattern.fullmatch(p) for p in ("v1/chat/completions", "v1/models", "health", "health/live"))
        assert not any(pattern.fullmatch(p) for p in ("admin", "healthz", "v1"))
        assert rule.find("action").get("url") == "http://127.0.0.1:11435/{R:1}"
        assert rule.find("serverVariables/set").get("name") == "HTTP_X_FORWARDED_PROTO"
    assert server.find("urlCompression").get("doDynamicCompression") == "false"
    assert server.find("httpErrors").get("existingResponse") == "PassThrough"
    comment = (DEPLOY / "iis" / "web.config").read_text()
    assert '/responseBufferLimit:"0"' in comment and '/includePortInXForwardedFor:"False"' in comment


def test_windows_scripts():
    scripts = {p.name: p.read_bytes() for p in (DEPLOY / "windows").glob("*.cmd")}
    assert set(scripts) == {"run.cmd", "run-with-auth.cmd", "run-debug.cmd", "install-service.cmd",
                            "remove-service.cmd"}
    for name, data in scripts.items():
        assert data.count(b"\n") == data.count(b"\r\n"), f"{name}: cmd.exe wants CRLF line ends"
        assert data.startswith(b"@echo off\r\n")
    assert b".venv\\Scripts\\python.exe\" wsgi.py" in scripts["run.cmd"]
    install = scripts["install-service.cmd"].decode()
    stop_wait = int(re.search(r"AppStopMethodConsole (\d+)", install).group(1))
    assert stop_wait > DEFAULT_SHUTDOWN * 1000, "NSSM must wait longer than the drain"
    assert "AppDirectory" in install and "remove" in scripts["remove-service.cmd"].decode()


API_PATHS = ["/v1/chat/completions", "/v1/models/hf.co/org/repo:q4", "/health", "/health/live", "/api/chat"]
OTHER_PATHS = ["/", "/admin", "/healthz", "/v1", "/v2/chat", "/static/x.js", "/metrics"]


def test_apache_and_nginx_send_only_the_api():
    apache = (DEPLOY / "apache" / "llamagate.conf").read_text()
    assert "flushpackets=on" in apache and "no-gzip" in apache and "ProxyTimeout" in apache
    prefixes = re.findall(r'^\s*ProxyPass\s+"([^"]+)"', apache, re.M)
    patterns = re.findall(r'^\s*ProxyPassMatch\s+"([^"]+)"', apache, re.M)
    assert prefixes == ["/v1/", "/api/"] and len(patterns) == 1

    def apache_routes(path: str) -> bool:
        return any(path.startswith(p) for p in prefixes) or any(re.search(p, path) for p in patterns)

    nginx = (DEPLOY / "nginx" / "llamagate.conf").read_text()
    assert "proxy_buffering off;" in nginx and "X-Forwarded-For $proxy_add_x_forwarded_for" in nginx
    locations = re.findall(r"^\s*location\s+(.+?)\s*\{", nginx, re.M)
    assert len(locations) == 3 and locations[-1].startswith("~ "), locations  # admin, its refusal, the API
    nginx_pattern = locations[-1][2:]

    for path in API_PATHS:
        assert apache_routes(path) and re.search(nginx_pattern, path), path
    for path in OTHER_PATHS:
        assert not apache_routes(path) and not re.search(nginx_pattern, path), path
