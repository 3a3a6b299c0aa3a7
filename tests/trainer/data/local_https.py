"""An HTTPS server on 127.0.0.1 with a freshly generated CA, serving canned responses to the source tests."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LOOPBACK = "127.0.0.1"


@dataclass
class Route:
    """What the server sends for one path."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0
    """Pause after the headers, before the body, to trip read timeouts."""
    send_length: bool = True
    """Send Content-Length; without it the body ends when the connection closes."""


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    server_cert: Path
    server_key: Path


def make_tls_files(directory: Path) -> TlsFiles:
    """Write a self-signed CA and a server certificate for 127.0.0.1 signed by it."""
    ca_key, ca_cert = _make_authority()
    server_key, server_cert = _make_server_certificate(ca_key, ca_cert)

    files = TlsFiles(ca_cert=directory / "ca.crt", server_cert=directory / "server.crt", server_key=directory / "server.key")
    files.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.server_cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    files.server_key.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return files


def _make_authority() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "data-source-test-ca")])
    usage = x509.KeyUsage(
        digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
        key_encipherment=False, data_encipherment=False, key_agreement=False,
        encipher_only=False, decipher_only=False,
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(usage, critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def _make_server_certificate(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, LOOPBACK)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK))]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, certificate


class _Handler(BaseHTTPRequestHandler):
    routes: dict[str, Route] = {}
    requests: list[tuple[str, dict[str, str]]] = []

    def do_GET(self) -> None:  # noqa: N802  (name fixed by BaseHTTPRequestHandler)
        self.requests.append((self.path, dict(self.headers.items())))
        route = self.routes.get(self.path, Route(status=404, body=b"not found", headers={"Content-Type": "text/plain"}))
        self.send_response(route.status)
        for name, value in route.headers.items():
            self.send_header(name, value)
        if route.send_length:
            self.send_header("Content-Length", str(len(route.body)))
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.flush()
        if route.delay_seconds:
            time.sleep(route.delay_seconds)
        try:
            self.wfile.write(route.body)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass  # The client stopped reading, which several tests expect.
        if not route.send_length:
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002  (signature fixed by the base class)
        pass


@dataclass
class LocalHttpsServer:
    """A running server: base_url, the routes it serves and the paths it was asked for."""

    base_url: str
    routes: dict[str, Route]
    requests: list[tuple[str, dict[str, str]]]
    tls: TlsFiles

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"


@contextmanager
def serve_https(directory: Path) -> Iterator[LocalHttpsServer]:
    """Run an HTTPS server on a free loopback port until the block ends."""
    tls = make_tls_files(directory)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.server_cert, tls.server_key)
    routes: dict[str, Route] = {}
    requests: list[tuple[str, dict[str, str]]] = []
    handler = type("Handler", (_Handler,), {"routes": routes, "requests": requests})
    server = ThreadingHTTPServer((LOOPBACK, 0), handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, name="local-https", daemon=True)
    thread.start()
    try:
        yield LocalHttpsServer(
            base_url=f"https://{LOOPBACK}:{server.server_address[1]}", routes=routes, requests=requests, tls=tls
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
