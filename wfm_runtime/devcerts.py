"""Development certificates and token keys for `make run` and the tests.

`ensure_dev_credentials(folder)` creates, once, in `folder`:

    ca.pem / ca.key            a development certificate authority
    server.pem / server.key    the services' certificate (localhost, 127.0.0.1, ::1), CA-signed
    client.pem / client.key    a client certificate (CN wfm-dev-client) for mutual TLS
    jwt.key / jwt.pub.pem      the ES256 key pair that signs and verifies development tokens

Later calls reuse what is there and replace only what is missing, unreadable or about to expire
(a new CA re-issues both certificates). Private keys are written with mode 0600. None of this is
for production: there, certificates and token keys come from the organisation's PKI / IdP.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from wfm_runtime.auth import issue_token

CLIENT_NAME = "wfm-dev-client"
SERVER_DNS = ("localhost",)
SERVER_IPS = ("127.0.0.1", "::1")
CA_DAYS = 3650
LEAF_DAYS = 365
RENEW_BEFORE = dt.timedelta(days=7)


@dataclass(frozen=True)
class DevCredentials:
    """Paths of the development CA, server and client certificates and the token key pair."""

    folder: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    jwt_private_key: Path
    jwt_public_key: Path

    @classmethod
    def in_folder(cls, folder: Path) -> DevCredentials:
        return cls(
            folder=folder,
            ca_cert=folder / "ca.pem",
            ca_key=folder / "ca.key",
            server_cert=folder / "server.pem",
            server_key=folder / "server.key",
            client_cert=folder / "client.pem",
            client_key=folder / "client.key",
            jwt_private_key=folder / "jwt.key",
            jwt_public_key=folder / "jwt.pub.pem",
        )

    def server_env(self) -> dict[str, str]:
        """Environment for a service: TLS, mutual TLS and verification of development tokens."""
        return {
            "WFM_TLS_CERT_FILE": str(self.server_cert),
            "WFM_TLS_KEY_FILE": str(self.server_key),
            "WFM_TLS_CLIENT_CA_FILE": str(self.ca_cert),
            "WFM_JWT_PUBLIC_KEY_FILES": str(self.jwt_public_key),
        }

    def channel_credentials(self, with_client_cert: bool = True) -> grpc.ChannelCredentials:
        """Client TLS credentials trusting the development CA (and presenting the client cert)."""
        if not with_client_cert:
            return grpc.ssl_channel_credentials(root_certificates=self.ca_cert.read_bytes())
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca_cert.read_bytes(),
            private_key=self.client_key.read_bytes(),
            certificate_chain=self.client_cert.read_bytes(),
        )

    def token(
        self,
        subject: str,
        roles: list[str],
        *,
        teams: list[str] | None = None,
        ttl_s: int = 3600,
        issuer: str = "wfm",
        audience: str = "wfm",
    ) -> str:
        """A token signed with the development key (the services started by `make run` trust
        its public key)."""
        key = serialization.load_pem_private_key(self.jwt_private_key.read_bytes(), None)
        return issue_token(
            key,
            "ES256",
            subject,
            roles,
            teams=teams or (),
            issuer=issuer,
            audience=audience,
            ttl_s=ttl_s,
        )


def ensure_dev_credentials(folder: Path) -> DevCredentials:
    """Creates whatever is missing (or expiring) in `folder` and returns the paths."""
    creds = DevCredentials.in_folder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    now = dt.datetime.now(dt.UTC)

    ca = _load_pair(creds.ca_cert, creds.ca_key, now)
    renew_leaves = ca is None
    if ca is None:
        ca = _new_ca(now)
        _write_pair(creds.ca_cert, creds.ca_key, *ca)
    ca_cert, ca_key = ca

    for cert_path, key_path, server in (
        (creds.server_cert, creds.server_key, True),
        (creds.client_cert, creds.client_key, False),
    ):
        leaf = None if renew_leaves else _load_pair(cert_path, key_path, now)
        if leaf is None or not _issued_by(leaf[0], ca_cert):
            _write_pair(cert_path, key_path, *_new_leaf(ca_cert, ca_key, server, now))

    if not _jwt_pair_ok(creds):
        key = ec.generate_private_key(ec.SECP256R1())
        _write(creds.jwt_private_key, _key_pem(key), 0o600)
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        _write(creds.jwt_public_key, public, 0o644)
    return creds


# --- internals -----------------------------------------------------------------------------
Pair = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


def _load_pair(cert_path: Path, key_path: Path, now: dt.datetime) -> Pair | None:
    """The certificate and key if both are there, match, and stay valid for a while."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    except (OSError, ValueError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return None
    if cert.public_key() != key.public_key():
        return None
    if cert.not_valid_after_utc - RENEW_BEFORE < now:
        return None
    return cert, key


def _issued_by(cert: x509.Certificate, ca_cert: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _jwt_pair_ok(creds: DevCredentials) -> bool:
    try:
        key = serialization.load_pem_private_key(creds.jwt_private_key.read_bytes(), None)
        public = serialization.load_pem_public_key(creds.jwt_public_key.read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(key, ec.EllipticCurvePrivateKey) and key.public_key() == public


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "wfm development"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _new_ca(now: dt.datetime) -> Pair:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("wfm development CA")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _new_leaf(
    ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, server: bool, now: dt.datetime
) -> Pair:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost" if server else CLIENT_NAME))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if server:
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in SERVER_DNS]
        names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in SERVER_IPS]
    else:
        names = [x509.DNSName(CLIENT_NAME)]
    builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _key_pem(key: Any) -> bytes:
    pem: bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem


def _write_pair(
    cert_path: Path, key_path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> None:
    _write(key_path, _key_pem(key), 0o600)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Atomic write with `mode` from the start (a key is never readable by others, not even
    briefly), so a concurrent reader sees the old file or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


if __name__ == "__main__":
    # `python -m wfm_runtime.devcerts FOLDER`: development credentials for deploy/compose.yaml.
    import sys

    created = ensure_dev_credentials(Path(sys.argv[1] if len(sys.argv) > 1 else "deploy/secrets"))
    print(created)
