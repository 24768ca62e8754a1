"""A cert-manager Certificate that issues and renews the database's server certificate.

The binding in imports/io/cert_manager is generated from
../shared/crds/cert-manager.io_certificates.yaml (`make imports`). It is imported
only when a Certificate is built, so synthesizing without cert-manager does not
load it.
"""

from __future__ import annotations

from typing import Literal

from constructs import Construct
from pydantic import BaseModel, ConfigDict, Field

from constructs.values import PostgresValues


class IssuerRef(BaseModel):
    """Reference to the issuer that signs the certificate."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    """Issuer or ClusterIssuer name."""
    kind: str
    """Issuer, ClusterIssuer, or an external issuer's kind."""
    group: str
    """The issuer's API group (cert-manager.io for the built-in kinds)."""


class ServerCertificateProps(BaseModel):
    """What the ServerCertificate construct needs; every field is required."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    """Name of the Certificate object."""
    namespace: str
    """Namespace of the Certificate and of the Secret it writes."""
    labels: dict[str, str]
    """Labels of the Certificate; all but app.kubernetes.io/instance are copied onto the Secret."""
    secret_name: str
    """Secret cert-manager writes: keys tls.crt, tls.key and (from CA-type issuers) ca.crt."""
    dns_names: list[str] = Field(min_length=1)
    """Subject alternative names, in order; the first is also the common name."""
    issuer_ref: IssuerRef
    """The issuer that signs the certificate."""
    duration: str
    """Requested lifetime (Go duration)."""
    renew_before: str
    """Renew this long before expiry (Go duration)."""
    key_algorithm: Literal["ECDSA"] = "ECDSA"
    """Private key algorithm; P-256, a new key at every renewal."""


class ServerCertificate(Construct):
    """`Certificate` for the database Services, with a fresh private key at every renewal."""

    def __init__(self, scope: Construct, id: str, *, props: ServerCertificateProps) -> None:
        super().__init__(scope, id)
        from cdk8s import ApiObjectMetadata

        from imports.io import cert_manager as cm  # lazy: only synths with cert-manager load it

        cm.Certificate(
            self,
            "certificate",
            metadata=ApiObjectMetadata(name=props.name, namespace=props.namespace, labels=props.labels),
            spec=cm.CertificateSpec(
                secret_name=props.secret_name,
                # Argo CD tracks its objects by app.kubernetes.io/instance by default: a Secret
                # carrying it but absent from dist/ would be pruned.
                secret_template=cm.CertificateSpecSecretTemplate(
                    labels={k: v for k, v in props.labels.items() if k != "app.kubernetes.io/instance"}),
                common_name=props.dns_names[0],
                dns_names=props.dns_names,
                duration=props.duration,
                renew_before=props.renew_before,
                issuer_ref=cm.CertificateSpecIssuerRef(
                    name=props.issuer_ref.name, kind=props.issuer_ref.kind, group=props.issuer_ref.group
                ),
                private_key=cm.CertificateSpecPrivateKey(
                    algorithm=cm.CertificateSpecPrivateKeyAlgorithm.ECDSA,
                    size=256,
                    # PostgreSQL reads PKCS#8 and SEC1 alike; a new key at every renewal.
                    rotation_policy=cm.CertificateSpecPrivateKeyRotationPolicy.ALWAYS,
                ),
                usages=[cm.CertificateSpecUsages.SERVER_AUTH, cm.CertificateSpecUsages.DIGITAL_SIGNATURE],
            ),
        )


def add_server_certificate(scope: Construct, namespace: str, labels: dict[str, str],
                           postgres: PostgresValues) -> ServerCertificate:
    """Compose the Certificate from the `postgres` values (called by main.py)."""
    from constructs.pki import server_dns_names

    cm = postgres.tls.cert_manager
    return ServerCertificate(scope, "certificate", props=ServerCertificateProps(
        name=postgres.tls.existing_secret,
        namespace=namespace,
        labels=labels,
        secret_name=postgres.tls.existing_secret,
        dns_names=server_dns_names(namespace, postgres.replicas),
        issuer_ref=IssuerRef(name=cm.issuer_ref.name, kind=cm.issuer_ref.kind, group=cm.issuer_ref.group),
        duration=cm.duration,
        renew_before=cm.renew_before,
    ))
