"""`python main.py secrets generate`: the Secrets the database needs, outside dist/.

Writes Kubernetes Secret manifests into a folder that git ignores (default
`secrets/`), never into the synthesized output:

  postgres-secrets.yaml  every password the values require (start.sh refuses to start without one)
  postgres-tls.yaml      server.key + server.crt for every Service and pod name (not with cert-manager)
  postgres-ca.yaml       ca.crt: the CA bundle clients and the server trust (not with cert-manager)
  postgres-backup-tls.yaml  tls.crt + tls.key: the backup jobs' client certificate for the
                         read-only role, when clients are verified or PITR is on (pgBackRest's
                         TLS server admits only it) (not with cert-manager)
  postgres-pooler-tls.yaml  tls.crt + tls.key: the pooler's certificate (its Service's names; also
                         its client certificate towards the database), when the pooler is on
                         (not with cert-manager)
  ca.key, ca.crt         the CA's private key (never applied to the cluster: kubectl
                         apply -f DIR reads only .yaml/.yml/.json) and the bundle, for
                         clients' sslrootcert and for issuing the next certificates

Every file is mode 0600 in a 0700 folder. Existing files are never overwritten
without --force; --rotate KEY replaces one password (or `tls`: the server
certificate and the backup client certificate, `backup-tls`: the client
certificate only, `ca`: a new CA added to the trust bundle) and keeps the rest.
The names of the Secrets and keys come from the values and from pgbundle/contract.py, the
same sources the StatefulSet is built from.
"""

from __future__ import annotations

import base64
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pgbundle import contract
from pgbundle.values.models import ChartValues, PostgresValues
from workstation import pki

PASSWORD_LENGTH = 40  # letters and digits: URL-safe, about 238 bits
CA_KEY_FILE = "ca.key"
CA_BUNDLE_FILE = "ca.crt"
ROTATE_TLS = "tls"
ROTATE_CA = "ca"
ROTATE_BACKUP_TLS = "backup-tls"
COMPONENT = contract.DATABASE_COMPONENT


class SecretsError(Exception):
    """The secrets cannot be generated as asked; the message says why and what to do."""


# --- what the values require ---------------------------------------------------


def password_keys(postgres: PostgresValues) -> list[str]:
    """Keys of the passwords Secret, in a fixed order: the ones start.sh (or, with
    replicas >= 2, patroni.sh) requires."""
    return contract.password_keys(temporal=postgres.temporal.enabled, metrics=postgres.metrics.enabled,
                                ha=postgres.replicas > 1, pooler=postgres.pooler.enabled, cipher=postgres.pitr.cipher)


def generates_certificates(postgres: PostgresValues) -> bool:
    """TLS and CA Secrets come from here unless TLS is off or cert-manager issues them."""
    return postgres.tls.enabled and not postgres.tls.cert_manager.enabled


def generates_client_certificate(postgres: PostgresValues) -> bool:
    """The backup jobs' client certificate comes from here when a job presents one
    (PostgresValues.job_client_certificate) and this generator (not cert-manager) holds the CA."""
    return generates_certificates(postgres) and postgres.job_client_certificate


def server_dns_names(values: ChartValues) -> list[str]:
    return contract.server_dns_names(values.global_.namespace, values.postgres.replicas)


# --- manifests -------------------------------------------------------------------


def secret_manifest(values: ChartValues, name: str, data: dict[str, bytes], type_: str = "Opaque") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": values.global_.namespace,
            # No app.kubernetes.io/instance: Argo CD tracks its objects by that label by
            # default and would prune a Secret that is not in dist/.
            "labels": {
                "app.kubernetes.io/name": contract.NAME,
                "app.kubernetes.io/component": COMPONENT,
                "app.kubernetes.io/part-of": contract.PART_OF,
                "app.kubernetes.io/managed-by": "secrets-generate",
            },
        },
        "type": type_,
        "data": {key: base64.b64encode(data[key]).decode() for key in data},
    }


def read_secret(path: Path) -> dict[str, bytes]:
    """The decoded data of a Secret manifest written by this module."""
    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SecretsError(f"{path} does not exist: run `secrets generate` without --rotate first") from None
    return {key: base64.b64decode(value) for key, value in (document.get("data") or {}).items()}


def _dump(document: dict) -> bytes:
    return yaml.safe_dump(document, sort_keys=False).encode()


# --- certificates -------------------------------------------------------------------


def _certificates(bundle: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(bundle) if bundle.strip() else []


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def current_ca(out: Path) -> pki.KeyPair:
    """The CA whose key is in OUT/ca.key (its certificate is the first of the bundle that matches)."""
    try:
        key_pem = (out / CA_KEY_FILE).read_bytes()
        bundle = (out / CA_BUNDLE_FILE).read_bytes()
    except FileNotFoundError as err:
        raise SecretsError(
            f"{err.filename} does not exist: the CA's key is needed to issue a server certificate; "
            "generate everything with `secrets generate --force` (or `--rotate ca` first)"
        ) from None
    key = serialization.load_pem_private_key(key_pem, password=None)
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    for certificate in _certificates(bundle):
        if certificate.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == public:
            return pki.KeyPair(key_pem, _pem(certificate))
    raise SecretsError(f"{out / CA_BUNDLE_FILE} holds no certificate for the key in {out / CA_KEY_FILE}")


def _new_ca(values: ChartValues) -> pki.KeyPair:
    generator = values.postgres.tls.generator
    return pki.new_ca("postgres-ca", days=generator.ca_validity_days, algorithm=generator.key_algorithm)


def _server(values: ChartValues, ca: pki.KeyPair) -> dict[str, bytes]:
    generator = values.postgres.tls.generator
    pair = pki.server_certificate(ca, server_dns_names(values), [], days=generator.server_validity_days,
                                  algorithm=generator.key_algorithm)
    return {contract.TLS_CERT_FILE: pair.cert_pem, contract.TLS_KEY_FILE: pair.key_pem}


def _client(values: ChartValues, ca: pki.KeyPair) -> dict[str, bytes]:
    """The backup job's client certificate: the read-only role it connects as."""
    generator = values.postgres.tls.generator
    pair = pki.client_certificate(ca, values.postgres.read_only_username, days=generator.server_validity_days,
                                  algorithm=generator.key_algorithm)
    return {contract.CLIENT_CERT_FILE: pair.cert_pem, contract.CLIENT_KEY_FILE: pair.key_pem}


def _pooler(values: ChartValues, ca: pki.KeyPair) -> dict[str, bytes]:
    """The pooler's certificate: a server certificate for its Service that it also
    presents to the database as a client (ca.verifyClients)."""
    generator = values.postgres.tls.generator
    pair = pki.server_certificate(ca, contract.pooler_dns_names(values.global_.namespace,
                                                                read_only=values.postgres.pooler.read_only.enabled), [],
                                  days=generator.server_validity_days, algorithm=generator.key_algorithm,
                                  client_auth=True)
    return {contract.CLIENT_CERT_FILE: pair.cert_pem, contract.CLIENT_KEY_FILE: pair.key_pem}


def _certificate_files(values: ChartValues, ca: pki.KeyPair) -> dict[str, bytes]:
    """Manifests of every certificate the CA issues: the server's, the pooler's
    when it is on, and the backup job's when clients are verified. Issued together, so that after a new CA
    (`--rotate ca`) one `--rotate tls` moves both to it before `--prune-ca`."""
    pg = values.postgres
    files = {manifest_file(pg.tls.existing_secret): _dump(
        secret_manifest(values, pg.tls.existing_secret, _server(values, ca)))}
    if pg.pooler.enabled:
        name = pg.pooler.tls.existing_secret
        files[manifest_file(name)] = _dump(secret_manifest(values, name, _pooler(values, ca), "kubernetes.io/tls"))
    if generates_client_certificate(pg):
        files.update(_client_file(values, ca))
    return files


def _client_file(values: ChartValues, ca: pki.KeyPair) -> dict[str, bytes]:
    name = values.postgres.backup.client_certificate.existing_secret
    # kubernetes.io/tls, as cert-manager writes it: the API server checks both keys are there.
    return {manifest_file(name): _dump(secret_manifest(values, name, _client(values, ca), "kubernetes.io/tls"))}


# --- the plan: which files to write --------------------------------------------------


@dataclass
class Plan:
    """Files to write (name -> bytes), and what to tell the user."""

    files: dict[str, bytes] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def manifest_file(secret_name: str) -> str:
    return f"{secret_name}.yaml"


def _ca_secret(values: ChartValues, bundle: bytes) -> dict:
    """The CA Secret: the trust bundle as ca.crt and under the keys api-forge's manifests mount."""
    keys = (contract.CA_CERT_FILE, *contract.CA_CERT_ALIASES)
    return secret_manifest(values, values.postgres.ca.existing_secret, dict.fromkeys(keys, bundle))


def plan_all(values: ChartValues) -> Plan:
    """Everything new: passwords, and unless cert-manager issues them, a CA and a server certificate."""
    pg = values.postgres
    plan = Plan()
    passwords = {key: pki.random_password(PASSWORD_LENGTH).encode() for key in password_keys(pg)}
    plan.files[manifest_file(pg.secrets.existing_secret)] = _dump(
        secret_manifest(values, pg.secrets.existing_secret, passwords))
    if generates_certificates(pg):
        ca = _new_ca(values)
        plan.files.update(_certificate_files(values, ca))
        plan.files[manifest_file(pg.ca.existing_secret)] = _dump(
            _ca_secret(values, ca.cert_pem))
        plan.files[CA_KEY_FILE] = ca.key_pem
        plan.files[CA_BUNDLE_FILE] = ca.cert_pem
    elif pg.tls.enabled:
        issued = pg.tls.existing_secret + " (and its ca.crt)"
        if pg.pooler.enabled:
            issued += f", {pg.pooler.tls.existing_secret}"
        if pg.job_client_certificate:
            issued += f" and {pg.backup.client_certificate.existing_secret}"
        plan.notes.append(f"cert-manager issues {issued}: no TLS, CA or client-certificate Secret written")
    s3 = pg.pitr.repos.s3
    if pg.pitr.enabled and s3.enabled:
        plan.notes.append(f"the S3 keys are yours: create the Secret {s3.existing_secret} with the keys "
                          f"{contract.S3_KEY_ID_KEY} and {contract.S3_KEY_SECRET_KEY}")
    if pg.pitr.cipher:
        plan.notes.append(f"keep a copy of {contract.CIPHER_PASS_KEY} outside the cluster: no PITR backup "
                          "can be read without it")
    return plan


def rotation_choices(postgres: PostgresValues) -> list[str]:
    # The PITR passphrase is never rotated: every backup and WAL file already in a
    # repository can be read only with it.
    choices = [key for key in password_keys(postgres) if key != contract.CIPHER_PASS_KEY]
    if generates_certificates(postgres):
        choices += [ROTATE_TLS, ROTATE_CA]
    if generates_client_certificate(postgres):
        choices.append(ROTATE_BACKUP_TLS)
    return choices


def plan_rotation(values: ChartValues, out: Path, key: str) -> Plan:
    pg = values.postgres
    allowed = rotation_choices(pg)
    if key not in allowed:
        raise SecretsError(
            f"--rotate: {key!r} is not something these values use; choose one of {', '.join(allowed)}")
    plan = Plan()
    restart = (f"kubectl -n {values.global_.namespace} rollout restart statefulset/{contract.STATEFULSET}")
    if key == ROTATE_TLS:
        ca = current_ca(out)
        plan.files.update(_certificate_files(values, ca))
        plan.notes.append("new server key and certificate: PostgreSQL reloads them within a minute of the "
                          "kubelet updating the volume, without a restart")
        if generates_client_certificate(pg):
            plan.notes.append(_client_note(pg))
    elif key == ROTATE_BACKUP_TLS:
        plan.files.update(_client_file(values, current_ca(out)))
        plan.notes.append(_client_note(pg))
    elif key == ROTATE_CA:
        old = _certificates(read_secret(out / manifest_file(pg.ca.existing_secret)).get(contract.CA_CERT_FILE, b""))
        ca = _new_ca(values)
        # Trust old and new until every server certificate is issued by the new CA.
        bundle = ca.cert_pem + b"".join(_pem(c) for c in old)
        plan.files[manifest_file(pg.ca.existing_secret)] = _dump(
            _ca_secret(values, bundle))
        plan.files[CA_KEY_FILE] = ca.key_pem
        plan.files[CA_BUNDLE_FILE] = bundle
        plan.notes.append("new CA added to the trust bundle; the server certificate is unchanged. Next: give "
                          "clients the new ca.crt, then `--rotate tls` (server and backup client "
                          "certificates), then `--prune-ca`")
    else:
        path = out / manifest_file(pg.secrets.existing_secret)
        passwords = read_secret(path)
        passwords[key] = pki.random_password(PASSWORD_LENGTH).encode()
        ordered = {k: passwords[k] for k in password_keys(pg) if k in passwords}
        ordered.update({k: v for k, v in passwords.items() if k not in ordered})
        plan.files[manifest_file(pg.secrets.existing_secret)] = _dump(
            secret_manifest(values, pg.secrets.existing_secret, ordered))
        plan.notes.append(f"new {key}: the start script sets it at the next start ({restart})")
    return plan


def _client_note(pg: PostgresValues) -> str:
    return (f"new backup client certificate ({pg.backup.client_certificate.existing_secret}, CN "
            f"{pg.read_only_username}): the next backup run mounts it")


def plan_prune_ca(values: ChartValues, out: Path) -> Plan:
    """Trust only the current CA (the one whose key is in ca.key)."""
    pg = values.postgres
    if not generates_certificates(pg):
        raise SecretsError("--prune-ca: no CA is generated with these values (TLS off or cert-manager on)")
    ca = current_ca(out)
    plan = Plan()
    plan.files[manifest_file(pg.ca.existing_secret)] = _dump(_ca_secret(values, ca.cert_pem))
    plan.files[CA_BUNDLE_FILE] = ca.cert_pem
    plan.notes.append("the trust bundle holds only the current CA: clients and the server drop the old one")
    return plan


# --- writing ------------------------------------------------------------------------------


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def private_folder(out: Path) -> None:
    """Create `out` with mode 0700, or accept an existing folder only others cannot
    enter: a folder this command did not create keeps its owner's mode."""
    if not out.exists() and not out.is_symlink():
        out.parent.mkdir(parents=True, exist_ok=True)
        out.mkdir(mode=0o700)
        out.chmod(0o700)  # whatever the umask
        return
    if not out.is_dir():
        raise SecretsError(f"--out: {out} is not a folder: choose a missing folder or a private one")
    mode = stat.S_IMODE(out.stat().st_mode)
    if mode & 0o077:
        raise SecretsError(
            f"--out: {out} is open to other users (mode {stat.filemode(out.stat().st_mode)}), so the Secrets "
            "would be too: choose a missing folder (it is created with mode 0700) or make this one private "
            f"(chmod 700 {out})")


def write_plan(plan: Plan, out: Path, *, overwrite: bool) -> list[Path]:
    """Write every file with mode 0600 (atomically: a temporary file renamed into place)."""
    private_folder(out)
    existing = sorted(name for name in plan.files if (out / name).exists())
    if existing and not overwrite:
        raise SecretsError(
            f"{', '.join(str(out / n) for n in existing)} already exist: refusing to overwrite. "
            "Use --rotate KEY to replace one password or certificate, or --force to replace everything")
    written = []
    for name, data in plan.files.items():
        descriptor, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=out)  # mkstemp creates 0600
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
            os.chmod(temporary, 0o600)
            os.replace(temporary, out / name)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
        written.append(out / name)
    return written


def generate(values: ChartValues, out: Path, *, force: bool = False, rotate: str | None = None,
             prune_ca: bool = False, forbidden: tuple[Path, ...] = ()) -> tuple[list[Path], list[str]]:
    """Generate (or rotate) the Secrets into `out`; return the files written and notes."""
    for folder in forbidden:
        if _inside(out, folder):
            raise SecretsError(f"--out: {out} is inside {folder}, which is committed; choose a folder outside it")
    if sum(map(bool, (force, rotate, prune_ca))) > 1:
        raise SecretsError("--force, --rotate and --prune-ca exclude each other")
    if rotate:
        plan = plan_rotation(values, out, rotate)
        overwrite = True
    elif prune_ca:
        plan, overwrite = plan_prune_ca(values, out), True
    else:
        plan, overwrite = plan_all(values), force
    return write_plan(plan, out, overwrite=overwrite), plan.notes
