"""Fixtures for the deployment tests: a self-signed certificate and Apache in front of real gateways."""

from __future__ import annotations

import pytest

from tests.deploy.helpers import Apache
from tests.deploy.helpers import apache_binary
from tests.deploy.helpers import make_certificate


@pytest.fixture(scope="session")
def certificate(tmp_path_factory):
    """(cert.pem, key.pem) for 127.0.0.1/localhost; the certificate is its own trust anchor."""
    files = make_certificate(tmp_path_factory.mktemp("tls"))
    if files is None:
        pytest.skip("neither the openssl CLI nor the cryptography package is available to make a certificate")
    return files


@pytest.fixture(scope="session")
def start_apache(tmp_path_factory):
    """Factory: Apache serving deploy/apache/llamagate.conf on the given ports; all stopped at the end."""
    if apache_binary() is None:
        pytest.skip("apache2 is not installed (CI installs it: apt-get install -y apache2)")
    started: list[Apache] = []

    def start(sites: dict[int, str], tls=None) -> Apache:
        apache = Apache(tmp_path_factory.mktemp("apache"), sites, tls).start()
        started.append(apache)
        return apache

    yield start
    for apache in started:
        apache.stop()
