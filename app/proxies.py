"""TRUSTED_PROXIES: which reverse proxies may tell the gateway the client's address and scheme.

`0` (the default) ignores every X-Forwarded-* header. A count `n` trusts the last `n` hops, whoever
they are (Werkzeug's ProxyFix). A list of addresses or networks (`127.0.0.1, 10.0.0.0/8, ::1`)
honours the headers only when the connecting peer is in the list, and then walks X-Forwarded-For
from the right past every listed proxy: the first address not in the list is the client.
A port after the client's address (IIS ARR adds one by default) is dropped in both modes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from werkzeug.middleware.proxy_fix import ProxyFix

MAX_HOPS = 10
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_trusted_proxies(value: Any) -> int | tuple[str, ...]:
    """A hop count (0..10) or a tuple of normalised networks, from a number, a comma list or a YAML list.

    :raises ValueError: with a message fit for the operator.
    """
    if isinstance(value, bool):
        raise ValueError("must be a number of proxies (0-10) or a list of proxy addresses or networks")
    if isinstance(value, int):
        items: list[str] = [str(value)]
    elif isinstance(value, (list, tuple)):
        items = [str(v).strip() for v in value]
    else:
        items = [part.strip() for part in str(value).replace(";", ",").split(",")]
    items = [item for item in items if item]
    if not items:
        return 0
    if len(items) == 1 and items[0].lstrip("+-").isdigit():
        count = int(items[0])
        if not 0 <= count <= MAX_HOPS:
            raise ValueError(f"a proxy count must be between 0 and {MAX_HOPS}")
        return count
    networks = []
    for item in items:
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or network (use e.g. 127.0.0.1, 10.0.0.0/8 or ::1)"
                             ) from None
    return tuple(networks)


def wrap(wsgi_app, trusted: int | Iterable[str]):
    """The WSGI app with the forwarded headers honoured as `trusted` says (unchanged when nothing is trusted)."""
    if isinstance(trusted, int):
        if trusted <= 0:
            return wsgi_app
        return ProxyFix(_ClientWithoutPort(wsgi_app), x_for=trusted, x_proto=trusted, x_host=trusted, x_port=trusted)
    networks = tuple(ipaddress.ip_network(n) for n in trusted)
    return TrustedProxies(wsgi_app, networks) if networks else wsgi_app


class TrustedProxies:
    """Honours X-Forwarded-For/-Proto/-Host/-Port only from listed proxies (keeps the originals like ProxyFix)."""

    def __init__(self, app, networks: tuple[Network, ...]):
        self.app = app
        self.networks = networks

    def trusted(self, address: str | None) -> bool:
        try:
            ip = ipaddress.ip_address((address or "").strip().strip("[]").split("%")[0])
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)

    def __call__(self, environ, start_response):
        peer = environ.get("REMOTE_ADDR")
        if not self.trusted(peer):
            return self.app(environ, start_response)
        environ["werkzeug.proxy_fix.orig"] = {
            name: environ.get(name)
            for name in ("REMOTE_ADDR", "wsgi.url_scheme", "HTTP_HOST", "SERVER_NAME", "SERVER_PORT")
        }
        hops = 1
        client = peer
        forwarded_for = [without_port(a) for a in _values(environ.get("HTTP_X_FORWARDED_FOR"))]
        for address in reversed(forwarded_for[-MAX_HOPS:]):
            client = address
            if not self.trusted(address):
                break
            hops += 1
        environ["REMOTE_ADDR"] = client
        proto = _pick(environ.get("HTTP_X_FORWARDED_PROTO"), hops)
        if proto and proto.lower() in ("http", "https"):
            environ["wsgi.url_scheme"] = proto.lower()
        host = _pick(environ.get("HTTP_X_FORWARDED_HOST"), hops)
        if host:
            environ["HTTP_HOST"] = host
            name, _, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
            environ["SERVER_NAME"] = name if port.isdigit() else host
            if port.isdigit():
                environ["SERVER_PORT"] = port
        port = _pick(environ.get("HTTP_X_FORWARDED_PORT"), hops)
        if port and port.isdigit():
            environ["SERVER_PORT"] = port
        return self.app(environ, start_response)


class _ClientWithoutPort:
    """After ProxyFix: `203.0.113.9:51234` (IIS ARR's default X-Forwarded-For) becomes `203.0.113.9`."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        if "werkzeug.proxy_fix.orig" in environ and environ.get("REMOTE_ADDR"):
            environ["REMOTE_ADDR"] = without_port(environ["REMOTE_ADDR"])
        return self.app(environ, start_response)


def without_port(address: str) -> str:
    """`1.2.3.4:5678` -> `1.2.3.4`, `[2001:db8::1]:5678` -> `2001:db8::1`; bare addresses unchanged."""
    if address.startswith("["):
        return address[1:].partition("]")[0]
    host, colon, port = address.rpartition(":")
    if colon and port.isdigit() and "." in host and ":" not in host:
        return host
    return address


def _values(header: str | None) -> list[str]:
    return [part.strip() for part in (header or "").split(",") if part.strip()]


def _pick(header: str | None, hops: int) -> str | None:
    """The value set by the outermost trusted proxy: one per hop when each appends, or the only one."""
    values = _values(header)
    if not values:
        return None
    return values[max(0, len(values) - hops)]
