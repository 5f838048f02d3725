"""A worker's gunicorn settings, read as plain attributes: the same values as gunicorn's own lookup gives."""

from gunicorn.config import Config

from app.worker import settle_settings


def test_settled_settings_keep_their_values_and_the_computed_ones_stay_computed():
    cfg = Config()
    cfg.set("keepalive", 7)
    cfg.set("limit_request_line", 4096)
    cfg.set("worker_class", "app.worker.GatewayWorker")
    expected = {name: getattr(cfg, name) for name in cfg.settings if not hasattr(Config, name)}

    settle_settings(cfg)

    assert {name: vars(cfg)[name] for name in expected} == expected
    assert cfg.keepalive == 7 and cfg.limit_request_line == 4096
    assert "worker_class" not in vars(cfg)  # a property: it loads the class named by the setting
    assert cfg.worker_class.__name__ == "GatewayWorker"
    assert not cfg.is_ssl
