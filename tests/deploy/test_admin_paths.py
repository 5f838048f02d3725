"""The shipped proxy files keep the admin API (/v1/mcp, the plugin listing and switches) to clients on the proxy's
own host, with a JSON refusal, while the rest of the API (plugins' own routes included) and Ollama's API pass.

Every test client is on loopback, so "another host" is simulated: the file's loopback rule is narrowed to 127.0.0.1,
and a client from 127.0.0.33 stands for a remote one.
"""

from __future__ import annotations

import pytest

from tests.deploy.helpers import free_port

ADMIN_PATHS = ["/v1/mcp/servers", "/v1/mcp/servers/x/tools", "/v1/plugins", "/v1/plugins/calc",
               "/v1/plugins/calc/disable"]
OPEN_PATHS = ["/v1/models", "/api/tags", "/v1/plugins/hello/ping", "/health/live"]


@pytest.fixture(scope="module")
def gateway(start_gateway):
    return start_gateway(TRUSTED_PROXIES="1")


@pytest.fixture(scope="module")
def nginx_url(start_nginx, gateway):
    server = start_nginx(gateway.port, edits={"allow 127.0.0.0/8;": "allow 127.0.0.1;"})
    assert server.warnings == ""
    return f"http://127.0.0.1:{server.port}"


@pytest.fixture(scope="module")
def apache_url(start_apache, gateway):
    port = free_port()
    start_apache({port: gateway.url}, edits={"Require local": "Require ip 127.0.0.1"})
    return f"http://127.0.0.1:{port}"


@pytest.fixture(params=["nginx", "apache"])
def proxy_url(request):
    return request.getfixturevalue(f"{request.param}_url")


@pytest.mark.parametrize("path", ADMIN_PATHS)
def test_admin_paths_are_refused_to_other_hosts_with_json(proxy_url, client_from, path):
    method = "POST" if path.endswith("/disable") else "GET"
    refused = client_from("127.0.0.33").request(method, proxy_url + path)
    assert refused.status_code == 403 and refused.headers["content-type"].startswith("application/json")
    assert refused.json()["error"]["code"] == "admin_loopback_only"
    assert "x-request-id" not in refused.headers, "the gateway never saw it"


@pytest.mark.parametrize("path", ADMIN_PATHS[:4])
def test_admin_paths_reach_the_gateway_from_the_proxy_host(proxy_url, client_from, path):
    reached = client_from("127.0.0.1").get(proxy_url + path)
    assert "x-request-id" in reached.headers, reached.text  # the gateway answered (its own rules apply)


@pytest.mark.parametrize("path", OPEN_PATHS)
def test_the_rest_of_the_api_passes_from_anywhere(proxy_url, client_from, path):
    reached = client_from("127.0.0.33").get(proxy_url + path)
    assert "x-request-id" in reached.headers, reached.text
