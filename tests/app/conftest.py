"""App-level fixtures: the gateway built in this process and driven with Flask's test client.

For what a real HTTP round trip adds nothing to (translation tables, error shaping, schema checks); the app still
calls the fake Ollama over loopback HTTP. Streaming, shutdown and servers are tested through real gunicorn.
"""

from __future__ import annotations

import pytest

from app import create_app
from app.settings import load_settings
from tests.conftest import BASE_SETTINGS


@pytest.fixture(scope="session")
def make_app(fake_ollama, tmp_path_factory):
    """Factory: an app in front of the fake Ollama with extra settings, read from no file and no environment."""
    empty = tmp_path_factory.mktemp("settings") / "empty.yaml"
    empty.write_text("")

    # The test client leaves responses it does not read open, and an open response holds its request slot.
    unbounded = {"MAX_CONCURRENT_REQUESTS": "100000"}

    def make(**settings):
        loaded = load_settings({"ENV_FILE": "", "CONFIG_FILE": str(empty)},
                               overrides={**BASE_SETTINGS, **unbounded, "OLLAMA_HOST": fake_ollama.url, **settings})
        return create_app(settings=loaded)

    return make


@pytest.fixture(scope="session")
def app_client(make_app):
    return make_app().test_client()
