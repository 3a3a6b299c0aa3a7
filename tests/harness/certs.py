"""Certificates and keys for the test control plane, made with the `cryptography` package."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Long enough for a developer's dev-cluster session; the stack is thrown away afterwards.
VALIDITY = datetime.timedelta(days=7)
FRONT_PROXY_CLIENT_NAME = "front-proxy-client"


@dataclass(frozen=True)
class CertificateFiles:
    cert: Path
    key: Path


@dataclass(frozen=True)
class ControlPlanePki:
    """Every PEM file the control plane and its clients need."""

    ca: CertificateFiles
    apiserver: CertificateFiles
    admin: CertificateFiles
    controller_manager: CertificateFiles
    scheduler: CertificateFiles
    front_proxy_ca: CertificateFiles
    front_proxy_client: CertificateFiles
    service_account_public_key: Path
    service_account_private_key: Path


class _Authority:
    def __init__(self, common_name: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = _now()
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    def issue(
        self,
        *,
        common_name: str,
        organizations: list[str],
        usage: ExtendedKeyUsageOID,
        dns_names: list[str] | None = None,
        ip_addresses: list[str] | None = None,
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        now = _now()
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attributes))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        alternative_names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names or []]
        alternative_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses or []]
        if alternative_names:
            builder = builder.add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
        return builder.sign(self.key, hashes.SHA256()), key


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _write_pair(directory: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> CertificateFiles:
    files = CertificateFiles(cert=directory / f"{stem}.crt", key=directory / f"{stem}.key")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    files.key.chmod(0o600)
    return files


def _write_service_account_keys(directory: Path) -> tuple[Path, Path]:
    # RSA because every Kubernetes release accepts RSA service-account keys.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_path = directory / "service-account.key"
    public_path = directory / "service-account.pub"
    private_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    private_path.chmod(0o600)
    public_path.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return public_path, private_path


def create_control_plane_pki(directory: Path, *, service_ip: str) -> ControlPlanePki:
    """Write a CA, the kube-apiserver serving certificate, client certificates and service-account keys.

    service_ip is the first address of the service CIDR, which in-cluster
    clients use for the `kubernetes` Service, so it goes into the serving
    certificate next to 127.0.0.1.
    """
    directory.mkdir(parents=True, exist_ok=True)
    authority = _Authority("lora-operator-test-ca")
    ca_files = _write_pair(directory, "ca", authority.cert, authority.key)

    serving = authority.issue(
        common_name="kube-apiserver",
        organizations=[],
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        dns_names=[
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ],
        ip_addresses=["127.0.0.1", service_ip],
    )
    client = ExtendedKeyUsageOID.CLIENT_AUTH
    # The bootstrap RBAC policy of kube-apiserver grants the built-in
    # ClusterRoles to these user names; system:masters bypasses RBAC.
    admin = authority.issue(common_name="lora-operator-test-admin", organizations=["system:masters"], usage=client)
    controller_manager = authority.issue(common_name="system:kube-controller-manager", organizations=[], usage=client)
    scheduler = authority.issue(common_name="system:kube-scheduler", organizations=[], usage=client)

    # kube-apiserver uses the front-proxy pair for requests it forwards to
    # aggregated API servers, and publishes the CA in the
    # extension-apiserver-authentication ConfigMap, which the controller
    # manager and the scheduler read at start.
    front_proxy_authority = _Authority("lora-operator-test-front-proxy-ca")
    front_proxy_ca = _write_pair(directory, "front-proxy-ca", front_proxy_authority.cert, front_proxy_authority.key)
    front_proxy_client = front_proxy_authority.issue(common_name=FRONT_PROXY_CLIENT_NAME, organizations=[], usage=client)

    public_key, private_key = _write_service_account_keys(directory)
    return ControlPlanePki(
        ca=ca_files,
        apiserver=_write_pair(directory, "apiserver", *serving),
        admin=_write_pair(directory, "admin", *admin),
        controller_manager=_write_pair(directory, "controller-manager", *controller_manager),
        scheduler=_write_pair(directory, "scheduler", *scheduler),
        front_proxy_ca=front_proxy_ca,
        front_proxy_client=_write_pair(directory, "front-proxy-client", *front_proxy_client),
        service_account_public_key=public_key,
        service_account_private_key=private_key,
    )
