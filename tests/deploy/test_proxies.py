"""TRUSTED_PROXIES: a hop count (ProxyFix) or a list of proxy addresses/networks; nothing trusted by default."""

from __future__ import annotations

import pytest
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.test import EnvironBuilder

from app.proxies import TrustedProxies
from app.proxies import parse_trusted_proxies
from app.proxies import wrap
from app.settings import ConfigError
from app.settings import load_settings


def seen(app, peer: str, **headers) -> dict:
    """What the wrapped app sees for a request from `peer` with these headers."""
    environ = EnvironBuilder(path="/v1/models", headers=headers, environ_base={"REMOTE_ADDR": peer}).get_environ()
    captured = {}

    def inner(env, start_response):
        captured.update(ip=env["REMOTE_ADDR"], scheme=env["wsgi.url_scheme"], host=env.get("HTTP_HOST"),
                        port=env.get("SERVER_PORT"))
        return []

    wrap(inner, app)(environ, lambda *a: None)
    return captured


@pytest.mark.parametrize(("value", "parsed"), [
    ("0", 0), ("", 0), (2, 2), (" 1 ", 1),
    ("127.0.0.1", ("127.0.0.1/32",)),
    ("10.0.0.0/8, ::1 ,192.168.1.7", ("10.0.0.0/8", "::1/128", "192.168.1.7/32")),
    (["172.16.0.0/12", "127.0.0.1"], ("172.16.0.0/12", "127.0.0.1/32")),
    ("10.1.2.3/8", ("10.0.0.0/8",)),
])
def test_a_count_or_a_list_is_accepted(value, parsed):
    assert parse_trusted_proxies(value) == parsed


@pytest.mark.parametrize(("value", "message"), [
    ("11", "a proxy count must be between 0 and 10"),
    ("-1", "a proxy count must be between 0 and 10"),
    ("proxy.local", "'proxy.local' is not an IP address or network"),
    ("127.0.0.1, 1", "'1' is not an IP address or network"),
    ("10.0.0.0/33", "'10.0.0.0/33' is not an IP address or network"),
])
def test_bad_values_are_refused_naming_the_setting(value, message):
    with pytest.raises(ConfigError, match="^invalid setting TRUSTED_PROXIES=") as caught:
        load_settings({"ENV_FILE": "", "CONFIG_FILE": "", "TRUSTED_PROXIES": value})
    assert message in str(caught.value)


def test_nothing_is_trusted_by_default():
    settings = load_settings({"ENV_FILE": "", "CONFIG_FILE": ""})
    assert settings["TRUSTED_PROXIES"] == 0
    assert seen(0, "10.0.0.5", **{"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}) == {
        "ip": "10.0.0.5", "scheme": "http", "host": "localhost", "port": "80"}


def test_a_count_uses_werkzeug_proxyfix():
    assert isinstance(wrap(lambda e, s: [], 1), ProxyFix)
    headers = {"X-Forwarded-For": "6.6.6.6, 203.0.113.9", "X-Forwarded-Proto": "https"}
    assert seen(1, "10.0.0.5", **headers) == {"ip": "203.0.113.9", "scheme": "https", "host": "localhost", "port": "80"}


def test_a_list_honours_headers_only_from_a_listed_peer():
    trusted = ("10.0.0.0/8",)
    headers = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https",
               "X-Forwarded-Host": "api.example.com:8443"}
    assert seen(trusted, "10.1.2.3", **headers) == {"ip": "203.0.113.9", "scheme": "https",
                                                    "host": "api.example.com:8443", "port": "8443"}
    assert seen(trusted, "192.0.2.1", **headers) == {"ip": "192.0.2.1", "scheme": "http", "host": "localhost",
                                                     "port": "80"}
    assert isinstance(wrap(lambda e, s: [], trusted), TrustedProxies)


def test_a_list_walks_past_every_trusted_hop_and_stops_at_the_client():
    trusted = ("10.0.0.0/8", "127.0.0.1")
    # A spoofed entry left of the real client is never reached.
    assert seen(trusted, "127.0.0.1", **{"X-Forwarded-For": "6.6.6.6, 203.0.113.9, 10.0.0.2"})["ip"] == "203.0.113.9"
    # Every hop trusted: the leftmost address is the client.
    assert seen(trusted, "127.0.0.1", **{"X-Forwarded-For": "10.9.9.9, 10.0.0.2"})["ip"] == "10.9.9.9"
    # No header from a trusted peer: the peer itself.
    assert seen(trusted, "127.0.0.1")["ip"] == "127.0.0.1"


def test_proto_comes_from_the_outermost_trusted_proxy():
    trusted = ("10.0.0.0/8",)
    # Two proxies, each appending: the outer one terminated TLS.
    both = seen(trusted, "10.0.0.2", **{"X-Forwarded-For": "203.0.113.9, 10.0.0.1", "X-Forwarded-Proto": "https, http"})
    assert both["scheme"] == "https"
    # One value set by the outer proxy and passed on.
    assert seen(trusted, "10.0.0.2", **{"X-Forwarded-For": "203.0.113.9, 10.0.0.1",
                                        "X-Forwarded-Proto": "https"})["scheme"] == "https"
    assert seen(trusted, "10.0.0.2", **{"X-Forwarded-Proto": "gopher"})["scheme"] == "http"


def test_ipv6_and_mapped_peers():
    assert seen(("::1",), "::1", **{"X-Forwarded-For": "2001:db8::7"})["ip"] == "2001:db8::7"
    assert seen(("127.0.0.1",), "::ffff:127.0.0.1", **{"X-Forwarded-For": "203.0.113.9"})["ip"] == "203.0.113.9"


def test_a_port_after_the_forwarded_address_is_dropped():
    """IIS ARR writes `client:port` unless includePortInXForwardedFor is off; rate-limit keys must not vary by port."""
    assert seen(1, "127.0.0.1", **{"X-Forwarded-For": "203.0.113.9:51234"})["ip"] == "203.0.113.9"
    assert seen(("127.0.0.1",), "127.0.0.1", **{"X-Forwarded-For": "203.0.113.9:51234"})["ip"] == "203.0.113.9"
    assert seen(("::1",), "::1", **{"X-Forwarded-For": "[2001:db8::7]:443"})["ip"] == "2001:db8::7"
    assert seen(1, "127.0.0.1", **{"X-Forwarded-For": "2001:db8::7"})["ip"] == "2001:db8::7"
    assert seen(0, "127.0.0.1", **{"X-Forwarded-For": "203.0.113.9:51234"})["ip"] == "127.0.0.1"
