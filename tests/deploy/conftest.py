"""Fixtures for the deployment tests: a self-signed certificate, Apache and nginx in front of real gateways."""

from __future__ import annotations

import contextlib

import pytest

from tests.deploy import helpers
from tests.deploy.helpers import Apache
from tests.deploy.helpers import Nginx
from tests.deploy.helpers import apache_binary
from tests.deploy.helpers import free_port
from tests.deploy.helpers import make_certificate
from tests.deploy.helpers import nginx_binary


@pytest.fixture(scope="session")
def certificate(tmp_path_factory):
    """(cert.pem, key.pem) for 127.0.0.1/localhost; the certificate is its own trust anchor."""
    files = make_certificate(tmp_path_factory.mktemp("tls"))
    if files is None:
        pytest.skip("neither the openssl CLI nor the cryptography package is available to make a certificate")
    return files


@pytest.fixture()
def client_from():
    """Factory: `helpers.client_from(source_ip, **kwargs)`; every client it made is closed when the test ends."""
    with contextlib.ExitStack() as clients:
        yield lambda source_ip="127.0.0.1", **kwargs: clients.enter_context(helpers.client_from(source_ip, **kwargs))


@pytest.fixture(scope="session")
def start_apache(tmp_path_factory):
    """Factory: Apache serving deploy/apache/llamagate.conf on the given ports; all stopped at the end."""
    if apache_binary() is None:
        pytest.skip("apache2 is not installed (CI installs it: apt-get install -y apache2)")
    started: list[Apache] = []

    def start(sites: dict[int, str], tls=None, edits=None) -> Apache:
        apache = Apache(tmp_path_factory.mktemp("apache"), sites, tls, edits).start()
        started.append(apache)
        return apache

    yield start
    for apache in started:
        apache.stop()


@pytest.fixture(scope="module")
def start_nginx(tmp_path_factory):
    """Factory: nginx serving deploy/nginx/llamagate.conf in front of a gateway port; stopped at the end."""
    if nginx_binary() is None:
        pytest.skip("nginx is not installed (apt-get install -y nginx-light)")
    started: list[Nginx] = []

    def start(backend_port: int, edits=None) -> Nginx:
        server = Nginx(tmp_path_factory.mktemp("nginx"), free_port(), backend_port, edits).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
