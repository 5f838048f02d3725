"""Settings: precedence of the sources, one clear message for each bad value, one load per process."""

from __future__ import annotations

import runpy
import subprocess
import sys

import pytest

import app
import app.settings
from app.durations import parse_duration
from app.launch import build_app
from app.logs import settings_for_logging
from app.settings import ConfigError
from app.settings import load_settings
from app.settings import process_settings
from app.settings import reload_process_settings
from tests.gateway import ROOT


@pytest.fixture(autouse=True)
def in_empty_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no llamagate.yaml or .env from the developer's checkout


def test_defaults():
    s = load_settings({})
    assert (s["OLLAMA_HOST"], s["PORT"], s["RATE_LIMIT_RPS"], s["TIMEOUT"], s["SHUTDOWN_TIMEOUT"]) == (
        "http://localhost:11434", 11435, 50.0, 300.0, 30.0)
    assert (s["CACHE_ENABLED"], s["CACHE_TTL"], s["CACHE_MAX_ENTRIES"], s["API_KEY"], s["DEBUG"]) == (
        True, 3600.0, 1000, "", False)
    assert s["MAX_REQUEST_BODY"] == 20_000_000 and s["WORKERS"] == 1
    assert s["MAX_UPSTREAM_LINE"] == 32_000_000 and s["HEALTH_SHOW_UPSTREAM"] is True
    assert s["PLUGINS_ENABLED"] is True and s["PLUGINS"].items == ()


def test_precedence_defaults_yaml_dotenv_environment(tmp_path):
    (tmp_path / "llamagate.yaml").write_text("port: 1000\ntimeout: 1m\ndebug: true\nrate_limit_rps: 7\n")
    (tmp_path / ".env").write_text("PORT=2000\nTIMEOUT=2m\n")
    s = load_settings({"PORT": "3000"})
    assert (s["PORT"], s["TIMEOUT"], s["DEBUG"], s["RATE_LIMIT_RPS"]) == (3000, 120.0, True, 7.0)


def test_config_file_named_by_env_and_mcp_section_kept(tmp_path):
    path = tmp_path / "other.yaml"
    path.write_text("OLLAMA_HOST: http://gpu-box:11434\nmcp:\n  enabled: true\n  max_tool_rounds: 4\n  servers: []\n")
    s = load_settings({"CONFIG_FILE": str(path), "MCP_MAX_TOOL_CALLS_PER_ROUND": "3"})
    assert s["OLLAMA_HOST"] == "http://gpu-box:11434"
    assert (s["MCP"].max_tool_rounds, s["MCP"].max_tool_calls_per_round, s["MCP"].servers) == (4, 3, ())


def test_bad_mcp_section_is_a_config_error_naming_file_and_key(tmp_path):
    path = tmp_path / "mcp.yaml"
    path.write_text("mcp:\n  servers:\n    - name: docs\n      transport: http\n      url: ftp://x\n")
    with pytest.raises(ConfigError) as caught:
        load_settings({"CONFIG_FILE": str(path)})
    assert str(path) in str(caught.value) and "mcp.servers[0].url" in str(caught.value)


@pytest.mark.parametrize(("environ", "message"), [
    ({"PORT": "0"}, "PORT='0'"),
    ({"PORT": "http"}, "PORT='http': must be a whole number"),
    ({"OLLAMA_HOST": "localhost:11434"}, "OLLAMA_HOST='localhost:11434': must be an http:// or https:// URL"),
    ({"RATE_LIMIT_RPS": "-1"}, "RATE_LIMIT_RPS='-1'"),
    ({"RATE_LIMIT_SCOPE": "user"}, "RATE_LIMIT_SCOPE='user'"),
    ({"RATE_LIMIT_STORAGE_URI": "redis"}, "must be a storage URI"),
    ({"DEBUG": "maybe"}, "DEBUG='maybe': must be true or false"),
    ({"PLUGINS_ENABLED": "maybe"}, "PLUGINS_ENABLED='maybe': must be true or false"),
    ({"TIMEOUT": "45m"}, "TIMEOUT='45m': must be more than 0 and at most 30m"),
    ({"TIMEOUT": "0s"}, "TIMEOUT='0s'"),
    ({"TIMEOUT": "5 minutes"}, "TIMEOUT='5 minutes': must be a duration"),
    ({"SHUTDOWN_TIMEOUT": "-5s"}, "SHUTDOWN_TIMEOUT='-5s'"),
    ({"CACHE_TTL": "0"}, "CACHE_TTL='0': must be greater than 0"),
    ({"CACHE_MAX_ENTRIES": "1.5"}, "CACHE_MAX_ENTRIES='1.5': must be a whole number"),
    ({"MAX_REQUEST_BODY": "lots"}, "MAX_REQUEST_BODY='lots': must be a size"),
    ({"MAX_UPSTREAM_LINE": "512"}, "MAX_UPSTREAM_LINE='512': must be at least 1KB"),
    ({"HEALTH_SHOW_UPSTREAM": "hidden"}, "HEALTH_SHOW_UPSTREAM='hidden': must be true or false"),
    ({"THREADS": "0"}, "THREADS='0'"),
    ({"TLS_ENABLED": "true"}, "TLS_CERT_FILE='': is required when TLS_ENABLED=true"),
    ({"TLS_ENABLED": "true", "TLS_CERT_FILE": "/nonexistent.pem", "TLS_KEY_FILE": "/nonexistent.key"},
     "'/nonexistent.pem' is not a readable file"),
])
def test_each_bad_value_names_setting_value_and_rule(environ, message):
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_secret_values_are_not_echoed(tmp_path):
    (tmp_path / "llamagate.yaml").write_text("api_key: [1, 2]\n")
    with pytest.raises(ConfigError) as caught:
        load_settings({})
    assert "API_KEY=***" in str(caught.value)


@pytest.mark.parametrize(("text", "message"), [
    ("port: 1\ntimeout: [1\n", "line 3"),
    ("port: 1\n  bad: indent\n", "line 2"),
    ("- a\n- b\n", "top level must be a mapping"),
    ("prot: 1\n", "unknown setting 'prot'"),
    ("mcp: 3\n", "'mcp' must be a mapping"),
    ("plugins: [shout]\n", "'plugins' must be a mapping"),
])
def test_bad_config_files(tmp_path, text, message):
    (tmp_path / "llamagate.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings({})
    assert message in str(caught.value) and "llamagate.yaml" in str(caught.value)


@pytest.mark.parametrize("text", ["", "\n\n", "  \r\n  \n"])
def test_blank_config_file_is_no_settings(tmp_path, text):
    path = tmp_path / "blank.yaml"
    path.write_bytes(text.encode())
    assert load_settings({"CONFIG_FILE": str(path)}) == {**load_settings({}), "CONFIG_FILE": str(path)}


@pytest.mark.parametrize("text", ["\t\n", "\x0c", "\x01: 1\n"])
def test_config_file_of_invisible_characters_is_still_parsed(tmp_path, text):
    (tmp_path / "llamagate.yaml").write_text(text)
    with pytest.raises(ConfigError, match="llamagate.yaml"):
        load_settings({})


def test_missing_named_config_file():
    with pytest.raises(ConfigError, match="cannot read config file /nope.yaml"):
        load_settings({"CONFIG_FILE": "/nope.yaml"})


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("5m", 300), ("2m30s", 150), ("1h", 3600),
                                               ("250ms", 0.25), ("1.5h", 5400), ("90", 90)])
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5x", "m5", "-1s", "1s2", "five"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(("text", "size"), [("20MB", 20_000_000), ("512KiB", 524_288), ("1048576", 1_048_576),
                                            ("1.5mb", 1_500_000), ("2 GiB", 2 * 1024**3)])
def test_sizes(text, size):
    assert load_settings({"MAX_REQUEST_BODY": text})["MAX_REQUEST_BODY"] == size


def test_only_settings_are_kept_not_the_environment(tmp_path):
    (tmp_path / ".env").write_text("UNRELATED=1\n")
    s = load_settings({"PATH": "/bin", "HOME": "/home/gw", "PORT": "3000"})
    assert "ENVIRON" not in s and "PATH" not in s and "UNRELATED" not in s
    assert s["PORT"] == 3000 and s["CONFIG_FILE"] == ""


def test_overrides_beat_the_environment_and_extra_keys_pass_through():
    s = load_settings({"PORT": "3000"}, overrides={"PORT": 4000, "TESTING": True})
    assert (s["PORT"], s["TESTING"]) == (4000, True)


def test_dotenv_feeds_mcp_variables_and_expansion(tmp_path):
    (tmp_path / ".env").write_text("MCP_MAX_TOOL_ROUNDS=6\nDOCS_PORT=8081\n")
    (tmp_path / "llamagate.yaml").write_text("mcp:\n  servers:\n    docs:\n      url: http://127.0.0.1:${DOCS_PORT}/mcp\n")
    s = load_settings({})
    assert s["MCP"].max_tool_rounds == 6 and s["MCP"].servers[0].url == "http://127.0.0.1:8081/mcp"
    assert s["CONFIG_FILE"] == "llamagate.yaml"
    assert load_settings({"MCP_MAX_TOOL_ROUNDS": "2"})["MCP"].max_tool_rounds == 2  # environment beats .env


@pytest.mark.parametrize(("environ", "param", "problem"), [
    ({"TIMEOUT": "45m"}, "TIMEOUT", "must be more than 0 and at most 30m"),
    ({"MCP_ENABLED": "maybe"}, "MCP_ENABLED", "must be true or false (or yes/no, on/off, 1/0)"),
    ({"CONFIG_FILE": "/nope.yaml"}, "CONFIG_FILE", "No such file or directory"),
])
def test_config_errors_carry_the_param_and_the_problem(environ, param, problem):
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    assert (caught.value.param, caught.value.problem) == (param, problem) and problem in str(caught.value)


def test_file_errors_carry_the_key_path(tmp_path):
    (tmp_path / "llamagate.yaml").write_text("mcp:\n  servers:\n    - name: a\n      url: http://h\n    - {name: b, url: ftp://h}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings({})
    assert caught.value.param == "mcp.servers[1].url"
    assert caught.value.problem.startswith("must be an http:// or https:// URL")
    assert str(caught.value) == f"llamagate.yaml: mcp.servers[1].url: {caught.value.problem}; got 'ftp://h'"


@pytest.mark.parametrize("text", ["admin_api_key: {a: 1}\n", "api_key: [hunter2-secret]\n"])
def test_secret_settings_are_masked(tmp_path, text):
    (tmp_path / "llamagate.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings({})
    assert "=***: must be a string" in str(caught.value) and "hunter2" not in str(caught.value)


def test_url_credentials_in_a_rejected_value_are_masked():
    with pytest.raises(ConfigError) as caught:
        load_settings({"OLLAMA_HOST": "ftp://admin:hunter2@gpu-box/x?token=t0ken"})
    assert "hunter2" not in str(caught.value) and "t0ken" not in str(caught.value)
    assert "OLLAMA_HOST='ftp://***@gpu-box/x?…'" in str(caught.value)


@pytest.fixture()
def fresh_process_settings(monkeypatch, tmp_path):
    """process_settings() starting from nothing, reading a clean environment; the memo is restored afterwards."""
    monkeypatch.setattr(app.settings, "_process", None)
    monkeypatch.setenv("ENV_FILE", "")
    monkeypatch.setenv("CONFIG_FILE", "")
    monkeypatch.setenv("PORT", "3001")


def test_process_settings_loads_once_and_returns_the_same_dict(fresh_process_settings, monkeypatch):
    first = process_settings()
    monkeypatch.setenv("PORT", "3002")  # not read again
    assert process_settings() is first and first["PORT"] == 3001


def test_reload_process_settings_replaces_the_memo(fresh_process_settings, monkeypatch):
    first = process_settings()
    monkeypatch.setenv("PORT", "3002")
    second = reload_process_settings()
    assert second is not first and second["PORT"] == 3002 and process_settings() is second


def test_a_failed_load_is_not_remembered(fresh_process_settings, monkeypatch):
    monkeypatch.setenv("PORT", "0")
    with pytest.raises(ConfigError):
        process_settings()
    monkeypatch.setenv("PORT", "3003")
    assert process_settings()["PORT"] == 3003


def test_a_gunicorn_start_loads_the_settings_once(fresh_process_settings, monkeypatch):
    loads = []
    real_load = app.settings.load_settings
    monkeypatch.setattr(app.settings, "load_settings", lambda *args, **kwargs: loads.append(1) or real_load(*args, **kwargs))
    monkeypatch.setattr(sys, "path", list(sys.path))
    built = {}
    monkeypatch.setattr(app, "create_app", lambda **kwargs: built.update(kwargs) or "the app")
    monkeypatch.setattr("app.logs.configure_logging", lambda settings: built.setdefault("logged", settings))

    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))  # the master
    assert settings_for_logging() is conf["_settings"]  # GunicornLogger.setup
    assert build_app() == "the app"  # a worker, forked from the master
    assert built == {"settings": conf["_settings"], "logged": conf["_settings"]} and len(loads) == 1


def test_loading_settings_does_not_import_the_mcp_sdk(tmp_path):
    code = "import sys, app.settings; app.settings.load_settings({}); print(sorted(m for m in sys.modules if m.split('.')[0] == 'mcp'))"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
