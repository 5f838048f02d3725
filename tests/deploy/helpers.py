"""Helpers for the deployment tests: timed SSE reads, clients from a chosen loopback address, certificates, Apache."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.gateway import ROOT

WAITRESS = [sys.executable, "-m", "app"]
APACHE_MODULES = Path("/usr/lib/apache2/modules")
APACHE_CONF = ROOT / "deploy" / "apache" / "llamagate.conf"


def chat_body(content: str, stream: bool = False) -> dict:
    return {"model": "llama3.2", "stream": stream, "messages": [{"role": "user", "content": content}]}


def client_from(source_ip: str = "127.0.0.1", **kwargs) -> httpx.Client:
    """An HTTP client whose connections come from `source_ip` (any 127.x address is this machine)."""
    transport = httpx.HTTPTransport(local_address=source_ip, verify=kwargs.pop("verify", True))
    return httpx.Client(transport=transport, timeout=kwargs.pop("timeout", 20), trust_env=False, **kwargs)


def timed_events(client: httpx.Client, url: str, body: dict,
                 headers: dict | None = None) -> tuple[httpx.Response, list]:
    """POST a streaming request; return the (read) response and `(seconds since the request, event)` per SSE event."""
    started = time.monotonic()
    events: list = []
    with client.stream("POST", url, json=body, headers=headers or {}) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                payload = line[6:]
                events.append((time.monotonic() - started, payload if payload == "[DONE]" else json.loads(payload)))
    return response, events


def streamed_text(events: list) -> str:
    return "".join(e["choices"][0]["delta"].get("content") or ""
                   for _, e in events if isinstance(e, dict) and e.get("choices"))


def make_certificate(directory: Path) -> tuple[Path, Path] | None:
    """A self-signed certificate for 127.0.0.1 and localhost, from the openssl CLI or `cryptography`."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    if shutil.which("openssl"):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
             "-keyout", str(key), "-out", str(cert), "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
             "-addext", "basicConstraints=critical,CA:FALSE", "-addext", "extendedKeyUsage=serverAuth"],
            check=True, capture_output=True, timeout=30)
        return cert, key
    try:
        return _certificate_with_cryptography(cert, key)
    except ImportError:
        return None


def _certificate_with_cryptography(cert: Path, key: Path) -> tuple[Path, Path]:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(private.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                    x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                          serialization.NoEncryption()))
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert, key


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def apache_binary() -> str | None:
    return shutil.which("apache2") or shutil.which("httpd") or next(
        (p for p in ("/usr/sbin/apache2", "/usr/sbin/httpd") if os.access(p, os.X_OK)), None)


class Apache:
    """Apache httpd in the foreground with a throw-away ServerRoot and deploy/apache/llamagate.conf per site.

    `sites` maps a listening port to the gateway URL behind it; `tls` (cert, key) makes every site terminate TLS.
    """

    def __init__(self, directory: Path, sites: dict[int, str], tls: tuple[Path, Path] | None = None,
                 edits: dict[str, str] | None = None):
        self.directory = directory
        self.sites = sites
        self.tls = tls
        self.edits = edits or {}
        self.process: subprocess.Popen | None = None

    def site_file(self) -> Path:
        """deploy/apache/llamagate.conf itself, or an edited copy (`edits`: text to replace, each must be there)."""
        if not self.edits:
            return APACHE_CONF
        text = APACHE_CONF.read_text()
        for old, new in self.edits.items():
            assert old in text, f"{old!r} is no longer in {APACHE_CONF}"
            text = text.replace(old, new)
        copy = self.directory / "llamagate.conf"
        copy.write_text(text)
        return copy

    def config(self) -> str:
        user = "www-data" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        try:
            pwd.getpwnam(user)
        except KeyError:
            user = "nobody"
        modules = ["mpm_event", "authz_core", "authz_host", "proxy", "proxy_http", "headers", "env", "filter", "deflate"]
        if self.tls:
            modules += ["socache_shmcb", "ssl"]
        lines = [
            f'ServerRoot "{self.directory}"', f'DefaultRuntimeDir "{self.directory}"',
            f'PidFile "{self.directory}/httpd.pid"', f'ErrorLog "{self.directory}/error.log"', "LogLevel warn",
            "ServerName localhost", f"User {user}", f"Group #{pwd.getpwnam(user).pw_gid}",
            *(f"LoadModule {m}_module {APACHE_MODULES}/mod_{m}.so" for m in modules),
            "StartServers 1", "ServerLimit 2", "ThreadsPerChild 25", "MaxRequestWorkers 50", "MinSpareThreads 5",
            "MaxSpareThreads 50",
            # Compress what Debian compresses by default, plus the API's types, to show the site turns it off.
            "AddOutputFilterByType DEFLATE text/html text/plain application/json text/event-stream",
        ]
        if self.tls:
            lines += [f'SSLSessionCache "shmcb:{self.directory}/ssl_cache(512000)"',
                      "Define LLAMAGATE_TLS", f"Define LLAMAGATE_TLS_CERT {self.tls[0]}",
                      f"Define LLAMAGATE_TLS_KEY {self.tls[1]}"]
        for port, backend in self.sites.items():
            lines += [f"Listen 127.0.0.1:{port}", "UnDefine LLAMAGATE_BACKEND", "UnDefine LLAMAGATE_PORT",
                      f"Define LLAMAGATE_BACKEND {backend}", f"Define LLAMAGATE_PORT {port}",
                      "Define LLAMAGATE_SERVER_NAME localhost", f'Include "{self.site_file()}"']
        return "\n".join(lines) + "\n"

    def start(self, timeout: float = 15.0) -> Apache:
        conf = self.directory / "httpd.conf"
        conf.write_text(self.config())
        binary = apache_binary()
        check = subprocess.run([binary, "-t", "-f", str(conf)], capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise RuntimeError(f"apache config test failed:\n{check.stderr}\n{conf.read_text()}")
        self.warnings = check.stderr
        with open(self.directory / "stderr.log", "wb") as stderr:  # the child keeps its own copy of the file
            self.process = subprocess.Popen([binary, "-DFOREGROUND", "-f", str(conf)], stdout=subprocess.DEVNULL,
                                            stderr=stderr)
        deadline = time.monotonic() + timeout
        ports = list(self.sites)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"apache exited with {self.process.returncode}:\n{self.errors()}")
            if all(_listening(port) for port in ports):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"apache did not start:\n{self.errors()}")

    def errors(self) -> str:
        text = ""
        for name in ("stderr.log", "error.log"):
            path = self.directory / name
            if path.exists():
                text += path.read_text(errors="replace")
        return text

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


NGINX_CONF = ROOT / "deploy" / "nginx" / "llamagate.conf"


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)


class Nginx:
    """nginx in the foreground with deploy/nginx/llamagate.conf, its upstream and port filled in."""

    def __init__(self, directory: Path, port: int, backend_port: int, edits: dict[str, str] | None = None):
        self.directory = directory
        self.port = port
        self.backend_port = backend_port
        self.edits = edits or {}
        self.process: subprocess.Popen | None = None

    def site(self) -> str:
        text = NGINX_CONF.read_text()
        for old, new in (("server 127.0.0.1:11435;", f"server 127.0.0.1:{self.backend_port};"),
                         ("listen 80;", f"listen 127.0.0.1:{self.port};"), ("listen [::]:80;", ""),
                         *self.edits.items()):
            assert old in text, f"{old!r} is no longer in {NGINX_CONF}"
            text = text.replace(old, new)
        return text

    def start(self, timeout: float = 15.0) -> Nginx:
        d = self.directory
        (d / "site.conf").write_text(self.site())
        kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        temp = " ".join(f"{kind}_temp_path {d}/{kind};" for kind in kinds)
        (d / "nginx.conf").write_text(
            f"daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n"
            "events { worker_connections 256; }\n"
            f"http {{\n  access_log off;\n  {temp}\n"
            # Compress JSON and event streams server-wide, to show the site turns it off for the API.
            "  gzip on;\n  gzip_types application/json text/event-stream;\n"
            f"  include {d}/site.conf;\n}}\n")
        command = [nginx_binary(), "-p", str(d), "-e", str(d / "error.log"), "-c", str(d / "nginx.conf")]
        check = subprocess.run(command + ["-t"], capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise RuntimeError(f"nginx config test failed:\n{check.stderr}")
        self.warnings = "\n".join(line for line in check.stderr.splitlines() if "[warn]" in line or "[emerg]" in line)
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.process.returncode}:\n{(d / 'error.log').read_text()}")
            if _listening(self.port):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("nginx did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
