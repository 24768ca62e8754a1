"""`postgres.tls`, `postgres.ca` and `postgres.secrets`: where the certificates
and passwords come from (cert-manager or `secrets generate`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from pgbundle.values.durations import GoDuration, go_duration_seconds
from pgbundle.values.fields import DnsLabel, DnsSubdomain, Values

_CERT_MANAGER_GROUP = "cert-manager.io"


class IssuerRefValues(Values):
    name: DnsSubdomain | None = None
    """Name of the Issuer or ClusterIssuer that signs the server certificate.
    Left out: none, which is an error when cert-manager is enabled."""
    kind: str = Field(default="Issuer", min_length=1)
    """`Issuer` (same namespace) or `ClusterIssuer`; any kind for an external
    issuer group. Left out: Issuer."""
    group: str = Field(default=_CERT_MANAGER_GROUP, min_length=1)
    """API group of the issuer. Left out: cert-manager.io."""

    @model_validator(mode="after")
    def _check(self) -> IssuerRefValues:
        if self.group == _CERT_MANAGER_GROUP and self.kind not in ("Issuer", "ClusterIssuer"):
            raise ValueError(
                f"kind: {self.kind!r} is not a cert-manager.io issuer kind: use Issuer or ClusterIssuer "
                "(or set group to your external issuer's API group)"
            )
        return self


class CertManagerValues(Values):
    enabled: bool = False
    """Emit a cert-manager `Certificate` that writes the TLS Secret (`tls.existingSecret`),
    and read the CA from that Secret's `ca.crt` instead of `ca.existingSecret`.
    Left out: false; the TLS and CA Secrets come from `python main.py secrets generate`."""
    issuer_ref: IssuerRefValues = Field(default_factory=IssuerRefValues)
    """The issuer that signs the certificate; `issuerRef.name` is required when enabled.
    The issuer should put its CA into `ca.crt` (CA and self-signed issuers do):
    clients verify the server and, with `ca.verifyClients`, the server verifies clients with it."""
    duration: GoDuration = "2160h"
    """Requested lifetime of the server certificate. Left out: 2160h (90 days),
    cert-manager's own default."""
    renew_before: GoDuration = "360h"
    """Renew this long before expiry; PostgreSQL reloads the renewed files without a
    restart. Left out: 360h (15 days)."""

    @model_validator(mode="after")
    def _check(self) -> CertManagerValues:
        if not self.enabled:
            return self
        if self.issuer_ref.name is None:
            raise ValueError(
                "issuerRef.name: missing; cert-manager needs the name of the Issuer or "
                "ClusterIssuer that signs the server certificate"
            )
        duration, renew = go_duration_seconds(self.duration), go_duration_seconds(self.renew_before)
        if duration < 3600:
            raise ValueError(f"duration: {self.duration!r} is below cert-manager's minimum of 1h")
        if renew < 300:
            raise ValueError(f"renewBefore: {self.renew_before!r} is below cert-manager's minimum of 5m")
        if renew >= duration:
            raise ValueError(
                f"renewBefore: {self.renew_before!r} is not shorter than duration {self.duration!r}: "
                "the certificate would be renewed for ever; use less than the duration"
            )
        return self


class GeneratorValues(Values):
    """Certificates that `python main.py secrets generate` makes when cert-manager is off."""

    server_validity_days: int = Field(default=365, ge=1, le=3650)
    """Lifetime of the generated server certificate, in days. Left out: 365."""
    ca_validity_days: int = Field(default=3650, ge=1, le=36500)
    """Lifetime of the generated CA certificate, in days. Left out: 3650 (10 years)."""
    key_algorithm: Literal["ECDSA-P256", "RSA-3072"] = "ECDSA-P256"
    """Key type of the CA and the server certificate. Left out: ECDSA-P256."""

    @model_validator(mode="after")
    def _check(self) -> GeneratorValues:
        if self.server_validity_days > self.ca_validity_days:
            raise ValueError(
                f"serverValidityDays: {self.server_validity_days} is longer than caValidityDays "
                f"{self.ca_validity_days}: a certificate cannot outlive its CA; use at most "
                f"{self.ca_validity_days}"
            )
        return self


class TlsValues(Values):
    """TLS of the database server."""

    enabled: bool = True
    """Serve TLS (1.2+) and reject every non-TLS TCP connection. Left out: true."""
    existing_secret: DnsLabel = "postgres-tls"
    """Secret with `server.crt` and `server.key` (with cert-manager: `tls.crt`,
    `tls.key` and `ca.crt`, which the pod sees under the same file names).
    Left out: postgres-tls."""
    cert_manager: CertManagerValues = Field(default_factory=CertManagerValues)
    """Let cert-manager issue and renew the server certificate. Left out: off."""
    generator: GeneratorValues = Field(default_factory=GeneratorValues)
    """Validity and key type for `secrets generate`. Left out: 1 year server,
    10 years CA, ECDSA P-256."""


class CaValues(Values):
    """The CA the server trusts for client certificates."""

    existing_secret: DnsLabel = "postgres-ca"
    """Secret with `ca.crt`, the CA that signed the server and client certificates.
    Left out: postgres-ca."""
    verify_clients: bool = False
    """Require a client certificate signed by this CA on every TCP connection (in
    addition to the password). Left out: false (password over TLS)."""


class SecretsValues(Values):
    """The Secret with the role passwords."""

    existing_secret: DnsLabel = "postgres-secrets"
    """Secret holding the role passwords. Left out: postgres-secrets."""

