"""Real certificates for the tests: a CA, a server certificate for 127.0.0.1 and a client certificate."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

import bcrypt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _pem_file(name: str) -> property:
    """A read-only attribute: the file `name` in the certificates' folder."""

    def path(certs: Certificates) -> Path:
        return certs.folder / name

    return property(path)


@dataclass(frozen=True)
class Certificates:
    """PEM files in one folder: `ca`, `server_cert`/`server_key` (127.0.0.1, localhost), `client_cert`/
    `client_key` (CN and SAN `scraper`), and `other_ca` that signed none of them."""

    folder: Path

    ca = _pem_file("ca.crt")
    other_ca = _pem_file("other-ca.crt")
    server_cert = _pem_file("server.crt")
    server_key = _pem_file("server.key")
    client_cert = _pem_file("client.crt")
    client_key = _pem_file("client.key")

    def client_context(self, with_client_cert: bool = False) -> ssl.SSLContext:
        """A client trusting the CA (and presenting the client certificate)."""
        context = ssl.create_default_context(cafile=str(self.ca))
        if with_client_cert:
            context.load_cert_chain(self.client_cert, self.client_key)
        return context


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)


def _builder(cn: str, issuer: x509.Name) -> tuple[ec.EllipticCurvePrivateKey, x509.CertificateBuilder]:
    """A fresh key and a certificate for it named `cn`, from `issuer`, valid from 5 minutes ago for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    return key, builder


def _ca(cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key, builder = _builder(cn, _name(cn))
    cert = (
        builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    cn: str,
    sans: list[x509.GeneralName],
    usage: x509.ObjectIdentifier,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key, builder = _builder(cn, ca_cert.subject)
    cert = (
        builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def make_certificates(folder: Path) -> Certificates:
    """Write a fresh CA, server and client certificates (ECDSA P-256) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    certs = Certificates(folder)
    ca_key, ca_cert = _ca("pgwarden test CA")
    _, other = _ca("some other CA")
    server_sans: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.DNSName("localhost"),
    ]
    server_key, server_cert = _leaf(
        ca_key, ca_cert, "127.0.0.1", server_sans, ExtendedKeyUsageOID.SERVER_AUTH
    )
    client_key, client_cert = _leaf(
        ca_key, ca_cert, "scraper", [x509.DNSName("scraper")], ExtendedKeyUsageOID.CLIENT_AUTH
    )
    for cert, path in (
        (ca_cert, certs.ca),
        (other, certs.other_ca),
        (server_cert, certs.server_cert),
        (client_cert, certs.client_cert),
    ):
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(server_key, certs.server_key)
    _write_key(client_key, certs.client_key)
    return certs


def bcrypt_hash(password: str, cost: int = 4) -> str:
    """A bcrypt hash as `htpasswd -nB` writes it (cost 4: the tests hash many)."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost)).decode()
