"""The `mcp:` section and runtime server entries: the Go original's format, messages with key paths, ${VAR}, env overrides."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from loguru import logger

from app.mcp import MCPSettings
from app.mcp import ServerConfig
from app.settings import ConfigError
from app.settings import load_settings
from app.settings.mcp import load_mcp_section
from app.settings.mcp import parse_server_entry

ORIGINAL_YAML = """
mcp:
  enabled: true
  max_tool_rounds: 5
  allow_tools: ["filesystem.*", "mcp.web.*"]
  cache_ttl: 5m
  servers:
    - name: filesystem
      enabled: true
      transport: stdio
      command: npx
      args: ["-y", "@modelcontextprotocol/server-filesystem", "${HOME}"]
      env: {NODE_ENV: production}
    - name: web
      transport: http
      url: http://localhost:3000/mcp
      headers: {Authorization: "Bearer ${WEB_TOKEN}"}
      timeout: 45s
    - name: legacy-sse
      transport: sse
      url: https://example.com/sse
"""


def load(section, environ=None):
    return load_mcp_section(section, environ or {}, "llamagate.yaml")


def load_file(tmp_path, section: dict, environ: dict | None = None) -> dict:
    """load_settings() with `section` as the `mcp:` of the config file (written as YAML)."""
    path = tmp_path / "llamagate.yaml"
    path.write_text(yaml.safe_dump({"mcp": section}))
    return load_settings({"ENV_FILE": "", "CONFIG_FILE": str(path), **(environ or {})})


@pytest.fixture()
def log_records():
    """Every loguru record emitted during the test."""
    records: list[dict[str, Any]] = []
    handler = logger.add(lambda message: records.append(message.record), level="DEBUG", format="{message}")
    yield records
    logger.remove(handler)


def test_defaults_without_a_section():
    assert load(None) == MCPSettings()
    settings = load({})
    assert settings.enabled and settings.max_tool_rounds == 10 and settings.max_tool_calls_per_round == 10
    assert settings.default_tool_timeout == 30.0 and settings.max_tool_result_size == 1048576
    assert settings.allow_tools == settings.deny_tools == settings.servers == ()
    assert settings.allow_runtime_stdio is False


def test_original_yaml_format_loads():
    section = yaml.safe_load(ORIGINAL_YAML)["mcp"]
    settings = load(section, {"HOME": "/home/gw", "WEB_TOKEN": "s3cret-token"})
    fs, web, sse = settings.servers
    assert settings.max_tool_rounds == 5
    assert settings.allow_tools == ("filesystem.*", "mcp.web.*")
    assert (fs.transport, fs.command, fs.args) == (
        "stdio",
        "npx",
        ("-y", "@modelcontextprotocol/server-filesystem", "/home/gw"),
    )
    assert dict(fs.env) == {"NODE_ENV": "production"}
    assert (web.transport, web.url, web.timeout) == ("http", "http://localhost:3000/mcp", 45.0)
    assert dict(web.headers) == {"Authorization": "Bearer s3cret-token"}
    assert (sse.transport, sse.enabled, sse.timeout) == ("sse", True, 30.0)


def test_mapping_form_type_alias_and_inferred_transport():
    settings = load(
        {
            "servers": {
                "a": {"command": "python3"},
                "b": {"url": "http://127.0.0.1:1/mcp"},
                "c": {"url": "http://127.0.0.1:1/sse"},
                "d": {"type": "streamable-http", "url": "https://h/x"},
                "e": {"type": "STDIO", "command": "x", "protocol": "legacy", "max_concurrency": 2, "enabled": "false"},
            }
        }
    )
    assert [(s.name, s.transport) for s in settings.servers] == [
        ("a", "stdio"),
        ("b", "http"),
        ("c", "sse"),
        ("d", "http"),
        ("e", "stdio"),
    ]
    e = settings.servers[-1]
    assert (e.protocol, e.max_concurrency, e.enabled) == ("legacy", 2, False)


BAD_SECTIONS = [
    ({"tyop": 1}, "llamagate.yaml: mcp.tyop: unknown key; allowed keys are"),
    ({"max_tool_rounds": 0}, "mcp.max_tool_rounds: must be a whole number of at least 1; got 0"),
    ({"max_tool_rounds": True}, "mcp.max_tool_rounds: must be a whole number"),
    ({"max_tool_result_size": "1MB"}, "mcp.max_tool_result_size: must be a whole number of at least 1; got '1MB'"),
    ({"default_tool_timeout": "10x"}, "mcp.default_tool_timeout: must be a positive duration"),
    ({"default_tool_timeout": 0}, "mcp.default_tool_timeout: must be a positive duration"),
    ({"enabled": "maybe"}, "mcp.enabled: must be true or false (or yes/no, on/off, 1/0); got 'maybe'"),
    ({"allow_tools": [1, None]}, "mcp.allow_tools[1]: must be a string"),
    ({"deny_tools": 5}, "mcp.deny_tools: must be a list of globs or one string of globs separated by commas or spaces; got 5"),
    ({"allow_tools": {"fs": True}}, "mcp.allow_tools: must be a list of globs"),
    ({"servers": [{"name": "a", "command": "x", "enabled": "perhaps"}]}, "mcp.servers[0].enabled: must be true or false"),
    ({"servers": "fs"}, "mcp.servers: must be a list of server entries or a mapping"),
    ({"servers": ["fs"]}, "mcp.servers[0]: must be a mapping; got 'fs'"),
    ({"servers": [{"command": "x"}]}, "mcp.servers[0].name: must be 1-64 characters"),
    (
        {"servers": [{"name": "a b", "command": "x"}]},
        "mcp.servers[0].name: must be 1-64 characters of letters, digits, '_' or '-'; got 'a b'",
    ),
    ({"servers": [{"name": "x" * 65, "command": "x"}]}, "mcp.servers[0].name: must be 1-64"),
    (
        {"servers": [{"name": "a", "command": "x"}, {"name": "a", "command": "y"}]},
        "mcp.servers[1].name: duplicate server name (also at mcp.servers[0]); got 'a'",
    ),
    (
        {"servers": [{"name": "a", "transport": "ws", "url": "ws://h"}]},
        "mcp.servers[0].transport: must be one of stdio, http, sse; got 'ws'",
    ),
    ({"servers": [{"name": "a"}]}, "mcp.servers[0].transport: is required: one of stdio, http, sse"),
    ({"servers": [{"name": "a", "transport": "stdio"}]}, "mcp.servers[0].command: is required for stdio servers"),
    ({"servers": [{"name": "a", "transport": "http"}]}, "mcp.servers[0].url: is required for http/sse servers"),
    ({"servers": [{"name": "a", "url": "ftp://h/x"}]}, "mcp.servers[0].url: must be an http:// or https:// URL"),
    ({"servers": [{"name": "a", "url": "http://h:99999/"}]}, "mcp.servers[0].url: must be an http:// or https:// URL"),
    (
        {"servers": [{"name": "a", "command": "x", "url": "http://h"}]},
        "mcp.servers[0].url: is not used with transport 'stdio'",
    ),
    (
        {"servers": [{"name": "a", "url": "http://h", "args": ["-v"]}]},
        "mcp.servers[0].args: is not used with transport 'http'",
    ),
    (
        {"servers": [{"name": "a", "command": "x", "commnd": "y"}]},
        "mcp.servers[0].commnd: unknown key; allowed keys are",
    ),
    ({"servers": [{"name": "a", "command": "x", "args": "-v"}]}, "mcp.servers[0].args: must be a list of strings"),
    ({"servers": [{"name": "a", "command": "x", "args": [{"k": 1}]}]}, "mcp.servers[0].args[0]: must be a string"),
    (
        {"servers": [{"name": "a", "command": "x", "env": ["A=1"]}]},
        "mcp.servers[0].env: must be a mapping of variable names to strings",
    ),
    (
        {"servers": [{"name": "a", "command": "x", "env": {"1A": "x"}}]},
        "mcp.servers[0].env: '1A' is not a valid variable name",
    ),
    (
        {"servers": [{"name": "a", "url": "http://h", "headers": {"X": "a\nb"}}]},
        "mcp.servers[0].headers.X: must not contain line breaks",
    ),
    (
        {"servers": [{"name": "a", "url": "http://h", "headers": {"Bad Name": "v"}}]},
        "mcp.servers[0].headers: 'Bad Name' is not a valid header name",
    ),
    (
        {"servers": [{"name": "a", "command": "x", "timeout": "soon"}]},
        "mcp.servers[0].timeout: must be a positive duration",
    ),
    (
        {"servers": [{"name": "a", "command": "x", "protocol": "2024"}]},
        "mcp.servers[0].protocol: must be one of auto, legacy; got '2024'",
    ),
    (
        {"servers": [{"name": "a", "command": "x", "max_concurrency": 0}]},
        "mcp.servers[0].max_concurrency: must be a whole number",
    ),
    (
        {"servers": [{"name": "a", "transport": "http", "type": "sse", "url": "http://h"}]},
        "mcp.servers[0].type: give either 'transport' or 'type'",
    ),
    ({"servers": {"a": {"name": "b", "command": "x"}}}, "mcp.servers.a.name: differs from its key 'a'; got 'b'"),
]


@pytest.mark.parametrize(("section", "message"), BAD_SECTIONS)
def test_invalid_values_name_source_path_and_value(section, message):
    with pytest.raises(ConfigError) as info:
        load(section)
    assert message in str(info.value)
    assert str(info.value).startswith("llamagate.yaml: mcp")
    assert str(info.value).startswith(f"llamagate.yaml: {info.value.param}: {info.value.problem}")
    assert info.value.param.startswith("mcp") and "\n" not in str(info.value)


@pytest.mark.parametrize(("section", "param", "problem"), [
    ({"servers": [{"name": "a", "command": "x"}, {"name": "b", "command": "y", "commnd": "z"}]}, "mcp.servers[1].commnd",
     "unknown key; allowed keys are args, command, cwd, enabled, env, headers, max_concurrency, name, protocol, timeout, "
     "transport, type, url"),
    ({"servers": {"docs": {"url": "http://h", "retries": 3}}}, "mcp.servers.docs.retries", "unknown key; allowed keys are"),
    ({"enabled": "maybe"}, "mcp.enabled", "must be true or false (or yes/no, on/off, 1/0)"),
    ({"allow_runtime_stdio": 2}, "mcp.allow_runtime_stdio", "must be true or false"),
    ({"servers": [{"name": "a", "url": "http://h", "enabled": "sometimes"}]}, "mcp.servers[0].enabled", "must be true or false"),
    ({"allow_tools": 5}, "mcp.allow_tools", "must be a list of globs or one string of globs separated by commas or spaces"),
    ({"deny_tools": [["nested"]]}, "mcp.deny_tools[0]", "must be a string"),
])
def test_file_errors_name_the_key_path(tmp_path, section, param, problem):
    with pytest.raises(ConfigError) as info:
        load_file(tmp_path, section)
    assert info.value.param == param and info.value.problem.startswith(problem)
    assert str(info.value).startswith(f"{tmp_path / 'llamagate.yaml'}: {param}: {problem}")


def test_globs_from_a_file_string_are_split_and_lists_are_kept(tmp_path):
    mcp = load_file(tmp_path, {"allow_tools": "fs__*, web.*  git__status", "deny_tools": ["*delete*"]})["MCP"]
    assert (mcp.allow_tools, mcp.deny_tools) == (("fs__*", "web.*", "git__status"), ("*delete*",))


def test_section_must_be_a_mapping():
    with pytest.raises(ConfigError, match=r"^llamagate.yaml: mcp: must be a mapping"):
        load(["servers"])


@pytest.mark.parametrize("server", [
    {"name": "a", "url": "http://h", "headers": {"Authorization": ["Bearer hunter2"]}},
    {"name": "a", "url": "http://h", "headers": {"Authorization": "Bearer hunter2\nX-Evil: 1"}},
    {"name": "a", "url": "http://h", "headers": ["Authorization: Bearer hunter2"]},
    {"name": "a", "command": "x", "env": {"TOKEN": "hunter2\n"}},
    {"name": "a", "command": "x", "env": {"TOKEN": True, "OTHER": "hunter2"}},
    {"name": "a", "url": "ftp://user:hunter2@h/mcp"},
    {"name": "a", "url": "https://h:99999/mcp?key=hunter2"},
])
def test_secret_values_are_not_echoed_in_errors(server):
    with pytest.raises(ConfigError) as info:
        load({"servers": [server]})
    assert "hunter2" not in str(info.value) and "hunter2" not in info.value.problem


def test_variable_expansion():
    environ = {"TOKEN": "abc", "PORT": "8080", "EMPTY": ""}
    settings = load(
        {
            "default_tool_timeout": "${TIMEOUT:-45s}",
            "servers": [
                {"name": "h", "url": "http://127.0.0.1:${PORT}/mcp", "headers": {"Authorization": "Bearer ${TOKEN}"}},
                {
                    "name": "s",
                    "command": "run",
                    "args": ["${EMPTY:-fallback}", "$${LITERAL}", "$$5 and $HOME"],
                    "env": {"K": "${TOKEN}"},
                },
            ],
        },
        environ,
    )
    http, stdio = settings.servers
    assert settings.default_tool_timeout == 45.0
    assert http.url == "http://127.0.0.1:8080/mcp" and http.headers["Authorization"] == "Bearer abc"
    assert stdio.args == ("fallback", "${LITERAL}", "$$5 and $HOME") and stdio.env["K"] == "abc"


def test_unset_variable_is_an_error_naming_it_and_the_key():
    with pytest.raises(ConfigError) as info:
        load({"servers": [{"name": "a", "url": "http://h", "headers": {"Authorization": "Bearer ${GITHUB_TOKEN}"}}]})
    assert str(info.value) == (
        "llamagate.yaml: mcp.servers[0].headers.Authorization: environment variable 'GITHUB_TOKEN' is not set "
        "(write ${GITHUB_TOKEN:-default} for a fallback)"
    )
    assert info.value.param == "mcp.servers[0].headers.Authorization"


def test_empty_variable_expands_to_empty_and_malformed_reference_fails():
    assert load({"servers": [{"name": "a", "command": "x", "args": ["${E}"]}]}, {"E": ""}).servers[0].args == ("",)
    with pytest.raises(ConfigError, match=r"mcp.servers\[0\].args\[0\]: malformed"):
        load({"servers": [{"name": "a", "command": "x", "args": ["${bad-name}"]}]})


ENV_OVERRIDES = [
    ("MCP_ENABLED", "off", "enabled", False),
    ("MCP_MAX_TOOL_ROUNDS", "3", "max_tool_rounds", 3),
    ("MCP_MAX_TOOL_CALLS_PER_ROUND", "4", "max_tool_calls_per_round", 4),
    ("MCP_MAX_TOTAL_TOOL_CALLS", "7", "max_total_tool_calls", 7),
    ("MCP_DEFAULT_TOOL_TIMEOUT", "2m30s", "default_tool_timeout", 150.0),
    ("MCP_DEFAULT_TOOL_TIMEOUT", "12.5", "default_tool_timeout", 12.5),
    ("MCP_MAX_TOOL_RESULT_SIZE", "2048", "max_tool_result_size", 2048),
    ("MCP_ALLOW_TOOLS", "fs__*, web.*  git__status", "allow_tools", ("fs__*", "web.*", "git__status")),
    ("MCP_DENY_TOOLS", "*delete*", "deny_tools", ("*delete*",)),
    ("MCP_ALLOW_RUNTIME_STDIO", "1", "allow_runtime_stdio", True),
]


@pytest.mark.parametrize(("variable", "value", "field", "expected"), ENV_OVERRIDES)
def test_environment_overrides_the_file(variable, value, field, expected):
    file_section = {"enabled": True, "max_tool_rounds": 9, "allow_tools": ["x"], "default_tool_timeout": "1s"}
    assert getattr(load(file_section, {variable: value}), field) == expected


def test_invalid_environment_override_names_the_variable():
    with pytest.raises(ConfigError, match=r"^environment: MCP_MAX_TOOL_ROUNDS: must be a whole number.*got 'ten'$") as info:
        load({}, {"MCP_MAX_TOOL_ROUNDS": "ten"})
    assert info.value.param == "MCP_MAX_TOOL_ROUNDS"


def test_environment_overrides_apply_through_load_settings_without_a_section(tmp_path):
    mcp = load_settings({"ENV_FILE": "", "CONFIG_FILE": "", "MCP_DENY_TOOLS": "a__*,b__*", "MCP_ENABLED": "no"})["MCP"]
    assert (mcp.deny_tools, mcp.enabled) == (("a__*", "b__*"), False)
    with pytest.raises(ConfigError, match=r"^environment: MCP_ALLOW_RUNTIME_STDIO: must be true or false"):
        load_file(tmp_path, {"allow_runtime_stdio": True}, {"MCP_ALLOW_RUNTIME_STDIO": "sure"})


def test_ignored_keys_of_the_original_are_accepted_with_a_warning(log_records):
    settings = load({"cache_ttl": "5m", "health_check_interval": "60s"})
    assert settings == MCPSettings()
    warnings = [r["message"] for r in log_records if r["level"].name == "WARNING"]
    assert any("llamagate.yaml: mcp.cache_ttl is not used" in w for w in warnings)


def test_runtime_entries_do_not_expand_variables():
    cfg = parse_server_entry({"name": "rt", "url": "http://h/mcp?k=${SECRET}"})
    assert cfg.url == "http://h/mcp?k=${SECRET}"
    assert parse_server_entry({"name": "rt", "command": "${BIN}"}).command == "${BIN}"


@pytest.mark.parametrize(("entry", "param", "message"), [
    ({}, "name", "name: must be 1-64 characters of letters, digits, '_' or '-'"),
    ({"name": "has space", "url": "http://127.0.0.1:9/mcp"}, "name", "name: must be 1-64 characters"),
    ({"name": "rt", "url": "file:///etc/passwd"}, "url", "url: must be an http:// or https:// URL"),
    ({"name": "h", "transport": "http", "url": "http://127.0.0.1:9/mcp", "command": "x"}, "command",
     "command: is not used with transport 'http'"),
    ({"name": "h", "url": "http://127.0.0.1:9/mcp", "bogus": 1}, "bogus", "bogus: unknown key; allowed keys are"),
    ({"name": "h", "transport": "carrier-pigeon"}, "transport", "transport: must be one of stdio, http, sse; got 'carrier-pigeon'"),
    ({"name": "h", "url": "http://127.0.0.1:9/mcp", "timeout": "soon"}, "timeout", "timeout: must be a positive duration"),
    ({"name": "h", "command": "x", "args": ["ok", {"no": 1}]}, "args[1]", "args[1]: must be a string"),
    ({"name": "h", "url": "http://h", "headers": {"X-Key": "a\rb"}}, "headers.X-Key", "headers.X-Key: must not contain line breaks"),
    ({"name": "h", "url": "http://h", "enabled": "maybe"}, "enabled", "enabled: must be true or false"),
    ({"name": "h", "url": "http://h", "max_concurrency": "many"}, "max_concurrency", "max_concurrency: must be a whole number"),
])
def test_runtime_entry_errors_name_the_path_inside_the_entry(entry, param, message):
    with pytest.raises(ConfigError) as info:
        parse_server_entry(entry)
    assert info.value.param == param and str(info.value).startswith(message)
    assert not str(info.value).startswith("<runtime>") and str(info.value).startswith(f"{param}: {info.value.problem}")


def test_runtime_entry_must_be_a_mapping():
    with pytest.raises(ConfigError, match="must be a mapping") as info:
        parse_server_entry(["name", "x"])  # type: ignore[arg-type]
    assert info.value.param == ""


def test_public_dict_and_repr_hide_secrets():
    cfg = parse_server_entry(
        {"name": "w", "url": "https://user:pw@h:8443/mcp?token=t0k", "headers": {"Authorization": "Bearer b3arer"}}
    )
    public = cfg.public_dict()
    assert public["url"] == "https://h:8443/mcp?…" and public["header_names"] == ["Authorization"]
    stdio = parse_server_entry(
        {"name": "s", "command": "srv", "args": ["--key", "argsecret"], "env": {"K": "envsecret"}}
    )
    text = repr(cfg) + repr(stdio) + repr(public) + repr(stdio.public_dict())
    for secret in ("pw", "t0k", "b3arer", "argsecret", "envsecret"):
        assert secret not in text.replace("https", "")
    assert isinstance(stdio, ServerConfig) and stdio.public_dict()["env_keys"] == ["K"]


def test_empty_environment_override_counts_as_unset():
    assert (
        load({"max_tool_rounds": 4, "enabled": True}, {"MCP_MAX_TOOL_ROUNDS": "", "MCP_ENABLED": " "}).max_tool_rounds
        == 4
    )


def test_entries_are_frozen_and_read_only():
    cfg = parse_server_entry({"name": "s", "command": "srv", "env": {"K": "v"}, "args": [1, 2.5]})
    assert cfg.args == ("1", "2.5") and cfg.cwd is None
    with pytest.raises(TypeError):
        cfg.env["K"] = "changed"  # type: ignore[index]


def test_null_values_in_the_file(tmp_path):
    assert load_file(tmp_path, {"servers": None})["MCP"].servers == ()
    with pytest.raises(ConfigError, match=r"mcp.servers\[0\].timeout: must have a value$"):
        load_file(tmp_path, {"servers": [{"name": "a", "command": "x", "timeout": None}]})
