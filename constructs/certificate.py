"""cert-manager Certificates: the database's server certificate and the backup
job's client certificate (when client certificates are verified).

The binding in imports/io/cert_manager is generated from
crds/cert-manager.io_certificates.yaml (`make imports`). It is imported
only when a Certificate is built, so synthesizing without cert-manager does not
load it.
"""

from __future__ import annotations

from typing import Literal

from constructs import Construct
from pydantic import BaseModel, ConfigDict, Field


# Key usages, as members of the binding's CertificateSpecUsages ("server auth", ...
# in the manifest). The keys are ECDSA: a signature, never key encipherment (that
# is for RSA key transport).
SERVER_USAGES = ["SERVER_AUTH", "DIGITAL_SIGNATURE"]
CLIENT_USAGES = ["CLIENT_AUTH", "DIGITAL_SIGNATURE"]


class IssuerRef(BaseModel):
    """Reference to the issuer that signs the certificate."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    """Issuer or ClusterIssuer name."""
    kind: str
    """Issuer, ClusterIssuer, or an external issuer's kind."""
    group: str
    """The issuer's API group (cert-manager.io for the built-in kinds)."""


class CertificateProps(BaseModel):
    """What every Certificate here needs: where it lives, its Secret, issuer and lifetime."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    """Name of the Certificate object."""
    namespace: str
    """Namespace of the Certificate and of the Secret it writes."""
    labels: dict[str, str]
    """Labels of the Certificate; all but app.kubernetes.io/instance are copied onto the Secret."""
    secret_name: str
    """Secret cert-manager writes: keys tls.crt, tls.key and (from CA-type issuers) ca.crt."""
    issuer_ref: IssuerRef
    """The issuer that signs the certificate."""
    duration: str
    """Requested lifetime (Go duration)."""
    renew_before: str
    """Renew this long before expiry (Go duration)."""


class ServerCertificateProps(CertificateProps):
    """What the ServerCertificate construct needs; every field is required."""

    dns_names: list[str] = Field(min_length=1)
    """Subject alternative names, in order; the first is also the common name."""
    key_algorithm: Literal["ECDSA"] = "ECDSA"
    """Private key algorithm; P-256, a new key at every renewal."""
    client_auth: bool = False
    """Also a client certificate (the pooler presents it to the database). Left out: server only."""


def _certificate(scope: Construct, *, name: str, namespace: str, labels: dict[str, str], secret_name: str,
                 common_name: str, dns_names: list[str] | None, issuer_ref: IssuerRef, duration: str,
                 renew_before: str, usages: list[str]) -> None:
    """One cert-manager Certificate with an ECDSA P-256 key that is new at every renewal."""
    from cdk8s import ApiObjectMetadata

    from imports.io import cert_manager as cm  # lazy: only synths with cert-manager load it

    cm.Certificate(
        scope,
        "certificate",
        metadata=ApiObjectMetadata(name=name, namespace=namespace, labels=labels),
        spec=cm.CertificateSpec(
            secret_name=secret_name,
            # Argo CD tracks its objects by app.kubernetes.io/instance by default: a Secret
            # carrying it but absent from dist/ would be pruned.
            secret_template=cm.CertificateSpecSecretTemplate(
                labels={k: v for k, v in labels.items() if k != "app.kubernetes.io/instance"}),
            common_name=common_name,
            dns_names=dns_names,
            duration=duration,
            renew_before=renew_before,
            issuer_ref=cm.CertificateSpecIssuerRef(name=issuer_ref.name, kind=issuer_ref.kind, group=issuer_ref.group),
            private_key=cm.CertificateSpecPrivateKey(
                algorithm=cm.CertificateSpecPrivateKeyAlgorithm.ECDSA,
                size=256,
                # PostgreSQL and libpq read PKCS#8 and SEC1 alike; a new key at every renewal.
                rotation_policy=cm.CertificateSpecPrivateKeyRotationPolicy.ALWAYS,
            ),
            usages=[cm.CertificateSpecUsages[usage] for usage in usages],
        ),
    )


class ServerCertificate(Construct):
    """`Certificate` for the database Services, with a fresh private key at every renewal."""

    def __init__(self, scope: Construct, id: str, *, props: ServerCertificateProps) -> None:
        super().__init__(scope, id)
        _certificate(self, name=props.name, namespace=props.namespace, labels=props.labels,
                     secret_name=props.secret_name, common_name=props.dns_names[0], dns_names=props.dns_names,
                     issuer_ref=props.issuer_ref, duration=props.duration, renew_before=props.renew_before,
                     usages=SERVER_USAGES + (["CLIENT_AUTH"] if props.client_auth else []))


class ClientCertificateProps(CertificateProps):
    """What the ClientCertificate construct needs (the issuer: the server's, whose CA
    PostgreSQL trusts); every field is required."""

    user: str = Field(min_length=1)
    """The database role the certificate is for: its common name."""


class ClientCertificate(Construct):
    """`Certificate` a job presents to PostgreSQL when client certificates are
    verified, with a fresh private key at every renewal."""

    def __init__(self, scope: Construct, id: str, *, props: ClientCertificateProps) -> None:
        super().__init__(scope, id)
        _certificate(self, name=props.name, namespace=props.namespace, labels=props.labels,
                     secret_name=props.secret_name, common_name=props.user, dns_names=None,
                     issuer_ref=props.issuer_ref, duration=props.duration, renew_before=props.renew_before,
                     usages=CLIENT_USAGES)
