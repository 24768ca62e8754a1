"""Passwords and certificates for the Secrets (workstation/pki.py)."""

from __future__ import annotations

import ipaddress
import string

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from pgbundle import contract
from workstation import pki


def test_passwords_are_long_random_letters_and_digits():
    passwords = {pki.random_password() for _ in range(50)}
    assert len(passwords) == 50
    assert all(len(p) == 32 and set(p) <= set(string.ascii_letters + string.digits) for p in passwords)
    with pytest.raises(ValueError, match="length: 8 is too short"):
        pki.random_password(8)


def verify_signed_by(cert: x509.Certificate, ca: pki.KeyPair) -> None:
    public_key = ca.certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    public_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    assert cert.issuer == ca.certificate.subject


def test_ca_may_sign_certificates_only():
    ca = pki.new_ca("test-ca").certificate
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and not usage.digital_signature


def test_server_certificate_names_the_services_and_addresses():
    ca = pki.new_ca()
    names = contract.service_names("shop")
    server = pki.server_certificate(ca, names, ["127.0.0.1"])
    cert = server.certificate
    verify_signed_by(cert, ca)
    alternatives = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert alternatives.get_values_for_type(x509.DNSName) == names
    assert alternatives.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert {"postgres.shop.svc", "postgres.shop.svc.cluster.local", "*.postgres-headless.shop.svc", "localhost"} <= set(names)
    assert cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.SERVER_AUTH])
    assert server.private_key.public_key().public_numbers() == cert.public_key().public_numbers()


def test_client_certificate_carries_the_role_name():
    ca = pki.new_ca()
    cert = pki.client_certificate(ca, "appuser").certificate
    verify_signed_by(cert, ca)
    assert cert.subject.rfc4514_string() == "CN=appuser"
    assert ExtendedKeyUsageOID.CLIENT_AUTH in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
