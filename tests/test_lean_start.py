"""A gateway with the default settings does not load the libraries of features it does not use."""

from __future__ import annotations

import subprocess
import sys

from tests.gateway import ROOT
from tests.gateway import clean_env

# REDIS_URL, a workflow folder, a config file with content, a .env file, a rate-limit storage other than memory://:
# each loads its code only when present. Ollama is called through urllib3 directly, never through requests.
OPTIONAL = ("redis", "jsonschema", "yaml", "dotenv", "app.workflows.loader", "jinja2.sandbox", "limits", "requests")
_PROBE = ("import sys\n"
          "from app.launch import build_app\n"
          "build_app()\n"
          "print(' '.join(name for name in sys.argv[1:] if name in sys.modules))\n")


def loaded_after_build(settings: dict, names: tuple[str, ...] = OPTIONAL) -> list[str]:
    """Which of ``names`` are imported once a fresh process has built its app from ``settings``."""
    env = clean_env({"OLLAMA_HOST": "http://127.0.0.1:9", "API_KEY": "sk-test", "RATE_LIMIT_RPS": "5", **settings})
    done = subprocess.run([sys.executable, "-c", _PROBE, *names], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_default_app_loads_no_optional_library():
    assert loaded_after_build({}) == []


def test_redis_is_loaded_when_redis_url_is_set():
    assert loaded_after_build({"REDIS_URL": "redis://127.0.0.1:9/0"}, ("redis",)) == ["redis"]


def test_the_limits_library_is_loaded_for_another_storage():
    assert loaded_after_build({"RATE_LIMIT_STORAGE_URI": "redis://127.0.0.1:9"}, ("limits",)) == ["limits"]
