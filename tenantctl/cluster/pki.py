"""Certificates for the local control plane: one CA, server and client certificates, kubeconfigs.

Generated with `cryptography` at every start, so nothing secret is kept between runs.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tenantctl.cluster.rendering import kubeconfig


def _pem_key(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


@dataclass
class CertificateAuthority:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def create(cls, common_name: str = "llm-tenants-local-ca") -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(_name(common_name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=365))
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
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    def issue(
        self,
        common_name: str,
        organization: str | None = None,
        server_names: tuple[str, ...] = (),
        server_ips: tuple[str, ...] = (),
    ) -> tuple[bytes, bytes]:
        """A leaf key and certificate (PEM): a server cert when names/IPs are given, else a client cert."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        server = bool(server_names or server_ips)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name, organization))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if server:
            alt = [x509.DNSName(n) for n in server_names] + [
                x509.IPAddress(ipaddress.ip_address(i)) for i in server_ips
            ]
            builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        return _pem_key(key), _pem_cert(builder.sign(self.key, hashes.SHA256()))


@dataclass(frozen=True)
class Pki:
    """Paths of the files the components read."""

    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    sa_key: Path
    sa_pub: Path

    @classmethod
    def generate(cls, directory: Path, service_cidr: str, extra_ips: tuple[str, ...] = ()) -> Pki:
        """CA, apiserver serving certificate (valid for the in-cluster service IP and `extra_ips` too) and SA keys."""
        directory.mkdir(parents=True, exist_ok=True)
        ca = CertificateAuthority.create()
        serving_key, serving_cert = ca.issue(
            "kube-apiserver",
            server_names=(
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ),
            server_ips=("127.0.0.1", str(next(ipaddress.ip_network(service_cidr).hosts())), *extra_ips),
        )
        sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        names = ("ca.crt", "ca.key", "apiserver.crt", "apiserver.key", "sa.key", "sa.pub")
        pki = cls(*(directory / name for name in names))
        files = {
            pki.ca_cert: _pem_cert(ca.cert),
            pki.ca_key: _pem_key(ca.key),
            pki.serving_cert: serving_cert,
            pki.serving_key: serving_key,
            pki.sa_key: _pem_key(sa_key),
            pki.sa_pub: sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        }
        for path, data in files.items():
            path.write_bytes(data)
            path.chmod(0o600)
        return pki

    def _ca(self) -> CertificateAuthority:
        return CertificateAuthority(
            serialization.load_pem_private_key(self.ca_key.read_bytes(), None),
            x509.load_pem_x509_certificate(self.ca_cert.read_bytes()),
        )

    def _write_pair(self, prefix: Path, key: bytes, cert: bytes) -> tuple[Path, Path]:
        cert_path, key_path = prefix.with_name(prefix.name + ".crt"), prefix.with_name(prefix.name + ".key")
        for path, data in ((cert_path, cert), (key_path, key)):
            path.write_bytes(data)
            path.chmod(0o600)
        return cert_path, key_path

    def client_certificate(self, prefix: Path, user: str, organization: str | None = None) -> tuple[Path, Path]:
        """`<prefix>.crt` and `<prefix>.key`: a client certificate for `user` (in group `organization`)."""
        return self._write_pair(prefix, *self._ca().issue(user, organization))

    def server_certificate(
        self, prefix: Path, common_name: str, names: tuple[str, ...], ips: tuple[str, ...]
    ) -> tuple[Path, Path]:
        """`<prefix>.crt` and `<prefix>.key`: a serving certificate for these DNS names and IPs."""
        return self._write_pair(prefix, *self._ca().issue(common_name, server_names=names, server_ips=ips))

    def client_kubeconfig(self, path: Path, server: str, user: str, organization: str | None = None) -> Path:
        """Write a self-contained kubeconfig (certificates embedded) for a client-certificate user."""
        key, cert = self._ca().issue(user, organization)
        config = kubeconfig(server, self.ca_cert.read_bytes(), user, cert, key)
        path.write_text(json.dumps(config, indent=2))  # JSON is valid YAML; kubectl and client libraries read it
        path.chmod(0o600)
        return path
