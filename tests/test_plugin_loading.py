"""The `plugins:` section and plugin discovery: dirs, entry points, safe mode, Config checks and one-line errors."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from app.plugins.spec import PluginsSettings
from app.settings import ConfigError
from app.settings import load_settings
from app.settings.plugins import load_plugins_section
from tests.gateway import ROOT

PLAIN = "class Plugin:\n    def on_request(self, ctx, request):\n        return None\n"


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """An empty working dir, and the plugin modules a test imported forgotten afterwards."""
    monkeypatch.chdir(tmp_path)
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith(("llamagate_plugins.", "lgtest_")):
            del sys.modules[name]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def marker_module(marker: Path, body: str = PLAIN) -> str:
    """Module text that leaves ``marker`` behind when it is imported."""
    return f"open({str(marker)!r}, 'w').close()\n" + body


def load(tmp_path: Path, plugins: dict | None, environ: dict | None = None, **sections) -> dict:
    """load_settings() with a llamagate.yaml in tmp_path holding `plugins` (and other sections)."""
    path = tmp_path / "llamagate.yaml"
    path.write_text(yaml.safe_dump({**({"plugins": plugins} if plugins is not None else {}), **sections}))
    return load_settings({"ENV_FILE": "", "CONFIG_FILE": str(path), **(environ or {})})


def fails(tmp_path: Path, plugins: dict, environ: dict | None = None, **sections) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, plugins, environ, **sections)
    assert "\n" not in str(caught.value)
    return caught.value


@pytest.fixture()
def install(tmp_path, monkeypatch):
    """Factory: an installed-looking distribution (dist-info with entry points, plus modules) on sys.path."""
    site = tmp_path / "site"

    def make(dist: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
        info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
        write(info / "METADATA", f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
        write(info / "entry_points.txt", "[llamagate.plugins]\n" + lines)
        for module, text in modules.items():
            write(site / f"{module}.py", text)
        monkeypatch.syspath_prepend(str(site))
        importlib.invalidate_caches()

    return make


# -- finding and importing -----------------------------------------------------------------------


def test_a_dir_plugin_file_with_its_options(tmp_path):
    path = write(tmp_path / "plugins" / "shout.py", PLAIN)
    settings = load(tmp_path, {"dirs": ["plugins"], "items": [
        {"name": "shout", "priority": 10, "timeout": "500ms", "on_error": "fail_open", "config": {"suffix": "!"}}]})
    plugins = settings["PLUGINS"]
    assert isinstance(plugins, PluginsSettings) and plugins.enabled and settings["PLUGINS_ENABLED"] is True
    assert plugins.dirs == (str(tmp_path / "plugins"),)
    [spec] = plugins.items
    assert (spec.name, spec.source, spec.error, spec.priority, spec.timeout, spec.on_error, dict(spec.config)) == (
        "shout", str(path), None, 10, 0.5, "fail_open", {"suffix": "!"})
    assert spec.cls.__name__ == "Plugin" and spec.cls.__module__.startswith("llamagate_plugins.shout_")
    assert "shout" not in sys.modules


def test_defaults_of_an_entry(tmp_path):
    write(tmp_path / "plugins" / "shout.py", PLAIN)
    [spec] = load(tmp_path, {"dirs": ["plugins"], "items": [{"name": "shout", "config": None}]})["PLUGINS"].items
    assert (spec.priority, spec.timeout, spec.on_error, dict(spec.config)) == (0, 2.0, "fail_closed", {})


def test_a_dir_package_imports_its_submodules(tmp_path):
    package = tmp_path / "plugins" / "redact"
    write(package / "patterns.py", "DEFAULT = ['secret']\n")
    write(package / "__init__.py", """
        from . import patterns
        from .patterns import DEFAULT


        class Plugin:
            defaults = DEFAULT

            def lazy(self):
                from .patterns import DEFAULT as again
                return again + patterns.DEFAULT
        """)
    [spec] = load(tmp_path, {"dirs": ["plugins"], "items": [{"name": "redact"}]})["PLUGINS"].items
    assert spec.error is None and spec.source == str(package / "__init__.py")
    assert spec.cls.defaults == ["secret"] and spec.cls().lazy() == ["secret", "secret"]


def test_the_first_dir_that_has_the_name_wins_and_relative_dirs_follow_the_config_file(tmp_path):
    conf = tmp_path / "conf"
    write(conf / "b" / "shout.py", PLAIN)
    write(conf / "a" / "shout.py", PLAIN)
    write(conf / "llamagate.yaml", "plugins:\n  dirs: [missing, a, b, /nonexistent]\n  items: [{name: shout}]\n")
    settings = load_settings({"ENV_FILE": "", "CONFIG_FILE": "conf/llamagate.yaml"})  # relative to the working dir
    plugins = settings["PLUGINS"]
    assert plugins.dirs == (str(conf / "missing"), str(conf / "a"), str(conf / "b"), "/nonexistent")
    assert plugins.items[0].source == str(conf / "a" / "shout.py")


def test_two_gateways_with_same_named_plugins_do_not_share_modules(tmp_path):
    for side, value in (("one", 1), ("two", 2)):
        write(tmp_path / side / "plugins" / "shout" / "helper.py", f"VALUE = {value}\n")
        write(tmp_path / side / "plugins" / "shout" / "__init__.py",
              "class Plugin:\n    def value(self):\n        from .helper import VALUE\n        return VALUE\n")
    one = load(tmp_path / "one", {"dirs": ["plugins"], "items": [{"name": "shout"}]})["PLUGINS"].items[0].cls
    two = load(tmp_path / "two", {"dirs": ["plugins"], "items": [{"name": "shout"}]})["PLUGINS"].items[0].cls
    assert one.__module__ != two.__module__ and (one().value(), two().value()) == (1, 2)


def test_loading_again_imports_the_file_afresh(tmp_path):
    path = write(tmp_path / "plugins" / "shout.py", "class Plugin:\n    version = 1\n")
    section = {"dirs": ["plugins"], "items": [{"name": "shout"}]}
    assert load(tmp_path, section)["PLUGINS"].items[0].cls.version == 1
    path.write_text("class Plugin:\n    version = 2\n")
    importlib.invalidate_caches()
    assert load(tmp_path, section)["PLUGINS"].items[0].cls.version == 2


def test_an_entry_point_plugin_and_unlisted_ones_are_never_imported(tmp_path, install):
    marker = tmp_path / "other-imported"
    install("shout-dist", {"shout": "lgtest_shout:Shout", "other": "lgtest_other:Plugin"},
            {"lgtest_shout": "class Shout:\n    greeting = 'hi'\n", "lgtest_other": marker_module(marker)})
    [spec] = load(tmp_path, {"items": [{"name": "shout", "priority": 3}]})["PLUGINS"].items
    assert (spec.source, spec.cls.greeting, spec.priority, spec.error) == ("entry point lgtest_shout:Shout", "hi", 3, None)
    assert not marker.exists() and "lgtest_other" not in sys.modules


def test_an_entry_point_that_is_not_a_class_or_fails_to_import_shows_as_failed(tmp_path, install):
    install("bad-dist", {"func": "lgtest_func:make", "boom": "lgtest_boom:Plugin"},
            {"lgtest_func": "def make():\n    pass\n", "lgtest_boom": "raise ImportError('needs libfoo')\n"})
    func, boom = load(tmp_path, {"items": [{"name": "func"}, {"name": "boom"}]})["PLUGINS"].items
    assert func.cls is None and func.error == "entry point lgtest_func:make is a function, not a class"
    assert boom.cls is None and boom.error == "import failed: ImportError: needs libfoo"


def test_a_name_in_a_dir_and_as_an_entry_point_stops_start_up(tmp_path, install):
    path = write(tmp_path / "plugins" / "shout.py", PLAIN)
    install("shout-dist", {"shout": "lgtest_shout:Plugin"}, {"lgtest_shout": PLAIN})
    err = fails(tmp_path, {"dirs": ["plugins"], "items": [{"name": "shout"}]})
    assert err.param == "plugins.shout"
    assert str(err) == (f"{tmp_path / 'llamagate.yaml'}: plugins.shout: is both {path} and the entry point "
                        "shout = lgtest_shout:Plugin of shout-dist; remove one")


def test_an_unknown_name_lists_the_available_ones(tmp_path, install):
    write(tmp_path / "plugins" / "shout.py", PLAIN)
    write(tmp_path / "plugins" / "redact" / "__init__.py", PLAIN)
    write(tmp_path / "plugins" / "notes.txt", "")
    install("ep-dist", {"weather": "lgtest_weather:Plugin"}, {"lgtest_weather": PLAIN})
    marker = tmp_path / "imported"
    write(tmp_path / "plugins" / "early.py", marker_module(marker))
    err = fails(tmp_path, {"dirs": ["plugins"], "items": [{"name": "early"}, {"name": "shuot"}]})
    assert err.param == "plugins.shuot"
    assert err.problem == (f"not found in {tmp_path / 'plugins'} nor as a 'llamagate.plugins' entry point; "
                           "available: early, redact, shout, weather")
    assert not marker.exists()  # every name is found before anything is imported


def test_an_unknown_name_with_the_default_dirs(tmp_path):
    err = fails(tmp_path, {"items": [{"name": "shout"}]})
    assert f"plugins.shout: not found in {tmp_path / 'plugins'} nor as a 'llamagate.plugins' entry point; available:" in str(err)


@pytest.mark.parametrize(("text", "error"), [
    ("raise ValueError('boom\\nsecond line')\n", "import failed: ValueError: boom"),
    ("import sys\nsys.exit(3)\n", "import failed: SystemExit: 3"),
    ("import lgtest_not_installed\n", "import failed: ModuleNotFoundError: No module named 'lgtest_not_installed'"),
    ("class Shout:\n    pass\n", "has no top-level class Plugin"),
    ("Plugin = 'not a class'\n", "has no top-level class Plugin"),
    ("from app.plugins import Plugin\n", "has no top-level class Plugin"),
])
def test_a_failing_import_is_not_a_start_up_error(tmp_path, text, error):
    path = write(tmp_path / "plugins" / "shout.py", text)
    write(tmp_path / "plugins" / "ok.py", PLAIN)
    settings = load(tmp_path, {"dirs": ["plugins"], "items": [{"name": "shout", "config": {"a": 1}}, {"name": "ok"}]})
    shout, ok = settings["PLUGINS"].items
    assert shout.cls is None and error in shout.error and "\n" not in shout.error
    assert shout.source == str(path) and dict(shout.config) == {"a": 1} and ok.error is None
    assert not [name for name in sys.modules if name.startswith("llamagate_plugins.shout_")]


# -- Config --------------------------------------------------------------------------------------

REDACT = """
from marshmallow import Schema
from marshmallow import fields
from marshmallow import validate


class Plugin:
    class Config(Schema):
        patterns = fields.List(fields.String(), required=True)
        limit = fields.Integer(load_default=3)
        api_key = fields.String(validate=validate.Length(min=20))
        pin = fields.String(metadata={"secret": True}, validate=validate.Length(equal=4))
"""


def test_config_is_loaded_by_the_plugins_schema(tmp_path):
    write(tmp_path / "plugins" / "redact.py", REDACT)
    [spec] = load(tmp_path, {"dirs": ["plugins"], "items": [{"name": "redact", "config": {"patterns": ["\\d{16}"]}}]}
                  )["PLUGINS"].items
    assert spec.error is None and spec.config == {"patterns": ["\\d{16}"], "limit": 3}


@pytest.mark.parametrize(("config", "param", "message"), [
    ({}, "patterns", "invalid setting plugins.redact.config.patterns: Missing data for required field."),
    ({"patterns": "x"}, "patterns", "invalid setting plugins.redact.config.patterns='x': Not a valid list."),
    ({"patterns": [1]}, "patterns[0]", "invalid setting plugins.redact.config.patterns[0]=1: Not a valid string."),
    ({"patterns": [], "limit": "lots"}, "limit",
     "invalid setting plugins.redact.config.limit='lots': Not a valid integer."),
    ({"patterns": [], "colour": "red"}, "colour", "invalid setting plugins.redact.config.colour: Unknown field."),
])
def test_config_errors_name_the_field(tmp_path, config, param, message):
    write(tmp_path / "plugins" / "redact.py", REDACT)
    err = fails(tmp_path, {"dirs": ["plugins"], "items": [{"name": "redact", "config": config}]})
    assert str(err) == message
    assert err.param == f"plugins.redact.config.{param}" and message.endswith(f": {err.problem}")


@pytest.mark.parametrize("config", [
    {"patterns": [], "api_key": "hunter2"},
    {"patterns": [], "pin": "hunter2"},
    {"patterns": [], "api_kye": "hunter2"},
])
def test_secret_config_values_are_not_echoed(tmp_path, config):
    write(tmp_path / "plugins" / "redact.py", REDACT)
    err = fails(tmp_path, {"dirs": ["plugins"], "items": [{"name": "redact", "config": config}]})
    assert "hunter2" not in str(err) and "hunter2" not in err.problem
    assert str(err).startswith(f"invalid setting {err.param}")


def test_config_strings_expand_variables(tmp_path):
    write(tmp_path / "plugins" / "weather.py", PLAIN)
    section = {"dirs": ["${PLUGIN_DIR}"], "items": [{"name": "weather", "config": {"api_key": "${WEATHER_KEY}",
                                                                                   "units": ["${UNITS:-metric}"]}}]}
    [spec] = load(tmp_path, section, {"WEATHER_KEY": "k-123", "PLUGIN_DIR": "plugins"})["PLUGINS"].items
    assert spec.config == {"api_key": "k-123", "units": ["metric"]}
    err = fails(tmp_path, section, {"PLUGIN_DIR": "plugins"})
    assert err.param == "plugins.weather.config.api_key" and "'WEATHER_KEY' is not set" in str(err)


@pytest.mark.parametrize(("body", "error"), [
    ("class Config(Schema):\n        def __init__(self):\n            raise RuntimeError('broken')\n",
     "Config failed: RuntimeError: broken"),
    ("class Config(Schema):\n        @post_load\n        def make(self, data, **kwargs):\n            return [data]\n",
     "Config loaded a list, expected a mapping"),
])
def test_a_broken_config_schema_shows_the_plugin_as_failed(tmp_path, body, error):
    write(tmp_path / "plugins" / "odd.py", "from marshmallow import Schema, post_load\n\n\nclass Plugin:\n    " + body)
    [spec] = load(tmp_path, {"dirs": ["plugins"], "items": [{"name": "odd"}]})["PLUGINS"].items
    assert spec.cls is None and spec.error == error


# -- safe mode and clashes -----------------------------------------------------------------------


@pytest.mark.parametrize(("enabled", "environ", "dotenv"), [
    (None, {"PLUGINS_ENABLED": "false"}, ""),
    (True, {"PLUGINS_ENABLED": "off"}, ""),
    (None, {}, "PLUGINS_ENABLED=no\n"),
    (False, {}, ""),
    (True, {}, "PLUGINS_ENABLED=false\n"),
])
def test_safe_mode_imports_nothing(tmp_path, install, enabled, environ, dotenv):
    marker = tmp_path / "imported"
    write(tmp_path / "plugins" / "shout.py", marker_module(marker))
    install("ep-dist", {"weather": "lgtest_weather:Plugin"}, {"lgtest_weather": marker_module(marker)})
    (tmp_path / ".env").write_text(dotenv)
    section = {"dirs": ["plugins"], "items": [{"name": "shout"}, {"name": "weather"}, {"name": "nowhere"}],
               **({"enabled": enabled} if enabled is not None else {})}
    settings = load(tmp_path, section, {"ENV_FILE": str(tmp_path / ".env"), **environ})
    assert settings["PLUGINS"] == PluginsSettings(enabled=False) and settings["PLUGINS_ENABLED"] is False
    assert not marker.exists()


def test_the_environment_beats_the_files_enabled(tmp_path):
    write(tmp_path / "plugins" / "shout.py", PLAIN)
    section = {"enabled": False, "dirs": ["plugins"], "items": [{"name": "shout"}]}
    settings = load(tmp_path, section, {"PLUGINS_ENABLED": "true"})
    assert settings["PLUGINS_ENABLED"] is True and settings["PLUGINS"].items[0].cls is not None


def test_entry_points_are_not_read_without_listed_plugins(tmp_path, monkeypatch):
    monkeypatch.setattr("importlib.metadata.entry_points", lambda **kwargs: pytest.fail("entry points were read"))
    assert load(tmp_path, {"dirs": ["plugins"]})["PLUGINS"] == PluginsSettings(enabled=True, dirs=(str(tmp_path / "plugins"),))
    (tmp_path / "llamagate.yaml").unlink()
    assert load_settings({"ENV_FILE": "", "CONFIG_FILE": ""})["PLUGINS"].items == ()


def test_a_plugin_named_like_an_mcp_server_stops_start_up(tmp_path):
    marker = tmp_path / "imported"
    write(tmp_path / "plugins" / "time.py", marker_module(marker))
    err = fails(tmp_path, {"dirs": ["plugins"], "items": [{"name": "time"}]},
                mcp={"servers": [{"name": "time", "command": "uvx"}]})
    assert err.param == "plugins.time" and "MCP server in mcp.servers" in str(err) and "time__*" in str(err)
    assert not marker.exists()


# -- bad entries ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("section", "param", "problem"), [
    ({"items": [{"name": "shout", "timeout": "0s"}]}, "plugins.shout.timeout",
     "must be a duration of more than 0 and at most 10m, e.g. 2s, 500ms or 1m30s; got '0s'"),
    ({"items": [{"name": "shout", "timeout": "11m"}]}, "plugins.shout.timeout", "must be a duration of more than 0"),
    ({"items": [{"name": "shout", "timeout": "soon"}]}, "plugins.shout.timeout", "must be a duration of more than 0"),
    ({"items": [{"name": "shout", "timeout": None}]}, "plugins.shout.timeout", "must have a value"),
    ({"items": [{"name": "shout", "on_error": "ignore"}]}, "plugins.shout.on_error",
     "must be one of fail_closed, fail_open; got 'ignore'"),
    ({"items": [{"name": "shout", "priority": "high"}]}, "plugins.shout.priority", "must be a whole number; got 'high'"),
    ({"items": [{"name": "shout", "priority": 1.5}]}, "plugins.shout.priority", "must be a whole number"),
    ({"items": [{"name": "shout", "config": "hunter2"}]}, "plugins.shout.config", "must be a mapping of option names"),
    ({"items": [{"name": "shout", "config": {1: "x"}}]}, "plugins.shout.config", "1 is not a valid option name"),
    ({"items": [{"name": "shout", "prio": 1}]}, "plugins.shout.prio",
     "unknown key; allowed keys are config, name, on_error, priority, timeout"),
    ({"items": [{"name": "ok"}, {"name": "b", "timeout": "x"}]}, "plugins.b.timeout", "must be a duration"),
    ({"items": [{"name": "Shout"}]}, "plugins.items[0].name",
     "must be 1-64 characters of lower-case letters, digits, '_' or '-'; got 'Shout'"),
    ({"items": [{"name": "a.b"}]}, "plugins.items[0].name", "must be 1-64 characters"),
    ({"items": [{"name": 7}]}, "plugins.items[0].name", "must be 1-64 characters"),
    ({"items": [{"priority": 1}]}, "plugins.items[0].name", "must be 1-64 characters"),
    ({"items": [{"name": "ok"}, {"name": "ok", "timeout": "1s"}]}, "plugins.items[1].name",
     "duplicate plugin name (also plugins.items[0]); got 'ok'"),
    ({"items": [{"name": "ok", "timeout": "x"}, {"name": "ok"}]}, "plugins.items[0].timeout", "must be a duration"),
    ({"items": ["shout"]}, "plugins.items[0]", "must be a mapping with at least a name, e.g. {name: shout}; got 'shout'"),
    ({"items": {"shout": {}}}, "plugins.items", "must be a list of plugin entries"),
    ({"dirs": "plugins"}, "plugins.dirs", "must be a list of folder paths"),
    ({"dirs": ["plugins", " "]}, "plugins.dirs[1]", "must not be empty"),
    ({"dirs": [["x"]]}, "plugins.dirs[0]", "must be a string"),
    ({"item": []}, "plugins.item", "unknown key; allowed keys are dirs, enabled, items"),
    ({"enabled": "maybe"}, "plugins.enabled", "must be true or false (or yes/no, on/off, 1/0); got 'maybe'"),
])
def test_each_bad_entry_is_one_line_naming_the_key(tmp_path, section, param, problem):
    err = fails(tmp_path, section)
    assert err.param == param and problem in str(err)
    assert str(err).startswith(f"{tmp_path / 'llamagate.yaml'}: {param}: {err.problem}")
    assert "hunter2" not in str(err)


def test_bad_entries_are_reported_even_in_safe_mode(tmp_path):
    err = fails(tmp_path, {"items": [{"name": "shout", "on_error": "maybe"}]}, {"PLUGINS_ENABLED": "false"})
    assert err.param == "plugins.shout.on_error"


def test_a_bad_plugins_enabled_names_the_setting(tmp_path):
    err = fails(tmp_path, {}, {"PLUGINS_ENABLED": "maybe"})
    assert str(err) == "invalid setting PLUGINS_ENABLED='maybe': must be true or false (or yes/no, on/off, 1/0)"


def test_the_commented_example_is_valid():
    text = (ROOT / "llamagate.example.yaml").read_text()
    block = []
    for line in text[text.index("# plugins:"):].splitlines():
        if not line.startswith("# "):
            break
        block.append(line[2:])
    section = load_plugins_section(yaml.safe_load("\n".join(block))["plugins"], {"WEATHER_KEY": "x"})
    assert [entry.name for entry in section.items] == ["shout", "weather"] and section.items[0].timeout == 2.0
