"""The gateway's Flask class: async functions are still refused as Flask refuses them, sync ones run as they are."""

import pytest

from app.flask_app import GatewayFlask


def test_sync_functions_run_as_they_are_and_the_answer_is_kept():
    app = GatewayFlask(__name__)

    def view():
        return "ok"

    assert app.ensure_sync(view) is view
    assert app.ensure_sync(view) is view
    assert list(app._sync) == [view]


def test_an_async_view_fails_as_in_flask_every_time():
    app = GatewayFlask(__name__)
    app.testing = True  # the error reaches the test rather than becoming a 500

    @app.get("/")
    async def view():
        return "ok"

    client = app.test_client()
    for _ in range(2):  # the second time comes from the kept answer
        with pytest.raises(RuntimeError, match="async"):
            client.get("/")
