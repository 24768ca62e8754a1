"""Passwords and certificates a cluster's Secrets hold: a CA, the server's
certificate and client certificates, all as PEM bytes.

Used by the local pod runner; kept free of any file or runner logic so a
`secrets generate` command can build on it.
"""

from __future__ import annotations

import datetime
import ipaddress
import secrets
import string
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


# Letters and digits only: safe in a URL, a shell and a YAML file without quoting.
_PASSWORD_ALPHABET = string.ascii_letters + string.digits


def random_password(length: int = 32) -> str:
    """A random password of `length` letters and digits (32 give about 190 bits)."""
    if length < 16:
        raise ValueError(f"length: {length} is too short for a password; use at least 16")
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(length))


@dataclass(frozen=True)
class KeyPair:
    """A private key and its certificate, as PEM."""

    key_pem: bytes
    cert_pem: bytes

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    @property
    def private_key(self) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
        key = serialization.load_pem_private_key(self.key_pem, password=None)
        assert isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey))
        return key


KEY_ALGORITHMS = ("ECDSA-P256", "RSA-3072")


def _new_key(algorithm: str = "ECDSA-P256") -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    if algorithm == "RSA-3072":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    if algorithm != "ECDSA-P256":
        raise ValueError(f"algorithm: {algorithm!r} is not supported; use one of {', '.join(KEY_ALGORITHMS)}")
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _builder(subject: str, issuer: x509.Name, public_key, days: int) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        # A little slack for clocks that run behind.
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def new_ca(common_name: str = "postgres-ca", days: int = 3650, algorithm: str = "ECDSA-P256") -> KeyPair:
    """A self-signed CA that may sign leaf certificates only."""
    key = _new_key(algorithm)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        _builder(common_name, name, key.public_key(), days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return KeyPair(_key_pem(key), cert.public_bytes(serialization.Encoding.PEM))


def _leaf(ca: KeyPair, common_name: str, usages: list[x509.ObjectIdentifier], days: int,
          names: list[str], addresses: list[str], algorithm: str = "ECDSA-P256") -> KeyPair:
    key = _new_key(algorithm)
    rsa_key = isinstance(key, rsa.RSAPrivateKey)
    ca_cert = ca.certificate
    builder = (
        _builder(common_name, ca_cert.subject, key.public_key(), days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=rsa_key, data_encipherment=False,
                key_agreement=not rsa_key, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    if names or addresses:
        alternatives: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
        alternatives += [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
        builder = builder.add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
    cert = builder.sign(ca.private_key, hashes.SHA256())
    return KeyPair(_key_pem(key), cert.public_bytes(serialization.Encoding.PEM))


def server_certificate(ca: KeyPair, names: list[str], addresses: list[str], days: int = 825,
                       algorithm: str = "ECDSA-P256", client_auth: bool = False) -> KeyPair:
    """A TLS server certificate for the DNS `names` and IP `addresses`, signed by
    `ca`; with `client_auth`, also good as a client certificate (the pooler's)."""
    if not names:
        raise ValueError("names: a server certificate needs at least one DNS name")
    usages = [ExtendedKeyUsageOID.SERVER_AUTH, *([ExtendedKeyUsageOID.CLIENT_AUTH] if client_auth else [])]
    return _leaf(ca, names[0], usages, days, names, addresses, algorithm)


def client_certificate(ca: KeyPair, user: str, days: int = 825, algorithm: str = "ECDSA-P256") -> KeyPair:
    """A TLS client certificate for the database role `user` (its common name), signed by `ca`."""
    return _leaf(ca, user, [ExtendedKeyUsageOID.CLIENT_AUTH], days, [], [], algorithm)
