"""Where the server certificate comes from and how pods see it.

Two sources fill the TLS Secret (`postgres.tls.existingSecret`, postgres-tls):
- `python main.py secrets generate` writes keys `server.crt`/`server.key`, and
  the CA goes into its own Secret (`postgres.ca.existingSecret`, postgres-ca);
- cert-manager writes keys `tls.crt`/`tls.key`/`ca.crt` into postgres-tls, and
  there is no separate CA Secret.

The volumes below map either layout onto the same files inside the pod
(layout.TLS_DIR/server.crt, server.key and layout.CA_DIR/ca.crt), so the start
script, pg_hba.conf and every client inside the cluster never care which
source is in use. Every pod that mounts the CA (database, backups) uses
`ca_volume`, so with cert-manager on no object refers to postgres-ca.
"""

from __future__ import annotations

from imports import k8s
from pgbundle import contract as layout
from pgbundle.values.models import PostgresValues

SECRET_FILE_MODE = 0o440  # readable by uid 999 through fsGroup; PostgreSQL accepts it for a root-owned key

# Keys cert-manager writes into a Certificate's Secret.
CERT_MANAGER_CERT_KEY = "tls.crt"
CERT_MANAGER_KEY_KEY = "tls.key"
CERT_MANAGER_CA_KEY = "ca.crt"


def uses_cert_manager(postgres: PostgresValues) -> bool:
    return postgres.tls.enabled and postgres.tls.cert_manager.enabled


def tls_secret_items(postgres: PostgresValues) -> dict[str, str]:
    """Secret key -> file name in layout.TLS_DIR."""
    if uses_cert_manager(postgres):
        return {CERT_MANAGER_CERT_KEY: layout.TLS_CERT_FILE, CERT_MANAGER_KEY_KEY: layout.TLS_KEY_FILE}
    return {layout.TLS_CERT_FILE: layout.TLS_CERT_FILE, layout.TLS_KEY_FILE: layout.TLS_KEY_FILE}


def ca_secret_name(postgres: PostgresValues) -> str:
    """The Secret that holds the CA: the TLS Secret when cert-manager issues it."""
    return postgres.tls.existing_secret if uses_cert_manager(postgres) else postgres.ca.existing_secret


def ca_secret_items(postgres: PostgresValues) -> dict[str, str]:
    """Secret key -> file name in layout.CA_DIR."""
    key = CERT_MANAGER_CA_KEY if uses_cert_manager(postgres) else layout.CA_CERT_FILE
    return {key: layout.CA_CERT_FILE}


def _items(mapping: dict[str, str]) -> list[k8s.KeyToPath]:
    return [k8s.KeyToPath(key=key, path=path) for key, path in mapping.items()]


def tls_volume(postgres: PostgresValues, name: str = "tls") -> k8s.Volume:
    """The server key and certificate, as server.key/server.crt whatever the source."""
    return k8s.Volume(
        name=name,
        secret=k8s.SecretVolumeSource(
            secret_name=postgres.tls.existing_secret,
            default_mode=SECRET_FILE_MODE,
            items=_items(tls_secret_items(postgres)),
        ),
    )


def ca_volume(postgres: PostgresValues, name: str = "ca") -> k8s.Volume:
    """The CA as ca.crt. Optional unless client certificates are verified (the
    database then cannot start without it)."""
    return k8s.Volume(
        name=name,
        secret=k8s.SecretVolumeSource(
            secret_name=ca_secret_name(postgres),
            default_mode=SECRET_FILE_MODE,
            items=_items(ca_secret_items(postgres)),
            optional=not postgres.ca.verify_clients,
        ),
    )
