"""Every name that is a contract: object names, labels, mount paths, Secret keys,
file modes, ports, uids and DNS names.

The StatefulSet mounts volumes at these paths and passes them to the pod's
scripts as environment variables; the local pod runner lays the same files out
under a state folder. Changing a name below replaces a PVC or a Service on the
next apply: treat it as a breaking change.
"""

from __future__ import annotations

# Charts, one file `<chart>.k8s.yaml` each in the output folder; kubectl applies
# them in file-name order. A synth replaces a folder holding only these files.
NAMESPACE_CHART = "00-namespace"
DATABASE_CHART = "10-postgres"
BACKUP_CHART = "20-backup"
METRICS_CHART = "20-metrics"
PITR_BACKUP_CHART = "20-pitr-backup"
POOLER_CHART = "20-pooler"
CHART_FILES = frozenset(f"{chart}.k8s.yaml" for chart in (
    NAMESPACE_CHART, DATABASE_CHART, BACKUP_CHART, METRICS_CHART, POOLER_CHART, PITR_BACKUP_CHART))

# Object names (fixed: no chart prefix, no hash).
STATEFULSET = "postgres"
# How the StatefulSet starts its pods (the field is immutable). HA members start
# together: after a full stop, Patroni in synchronous mode lets only the last
# leader or its synchronous standby take the lock, so with OrderedReady (pod 1
# only once pod 0 is Ready) a postgres-0 that may not lead blocks the others
# forever. Rolling updates go one pod at a time under either policy.
POD_MANAGEMENT_POLICY = "OrderedReady"
HA_POD_MANAGEMENT_POLICY = "Parallel"
SERVICE = "postgres"
HEADLESS_SERVICE = "postgres-headless"
DATA_CLAIM = "postgres-data"  # volumeClaimTemplate; PVCs are postgres-data-postgres-<n>
BACKUP_CLAIM = "postgres-backups"
CONFIG_MAP = "postgres-config"  # postgresql.conf, pg_hba.conf (single instance); pgbackrest.conf (PITR)
SCRIPTS_CONFIG_MAP = "postgres-scripts"  # the pod's scripts
SERVICE_ACCOUNT = "postgres"
PDB = "postgres"
NETWORK_POLICY = "postgres"
CONTAINER = "postgres"
PORT = 5432
PORT_NAME = "postgresql"

# The official Debian-based postgres image runs the server as this uid/gid.
POSTGRES_UID = 999

# The app.kubernetes.io labels every object carries.
NAME = "postgres"
PART_OF = "api-forge"
MANAGED_BY = "cdk8s"
DATABASE_COMPONENT = "database"
BACKUP_COMPONENT = "backup"  # the backup and restore jobs' pods; the NetworkPolicy admits them
METRICS_COMPONENT = "metrics"
MIGRATE_COMPONENT = "migrate"  # the schema-migration Job's pods; the NetworkPolicy admits them

# Modes of the files mounted from ConfigMaps and Secrets. Secret files are
# readable by uid 999 (and the exporter's 65534) through the pod's fsGroup;
# PostgreSQL and libpq accept such a root-owned key file.
SECRET_FILE_MODE = 0o440
CONFIG_FILE_MODE = 0o444
SCRIPT_FILE_MODE = 0o555

# Mount paths inside the pod.
DATA_MOUNT = "/var/lib/postgresql/data"
# A sub-directory keeps initdb away from a volume root's lost+found.
PGDATA = f"{DATA_MOUNT}/pgdata"
CONFIG_DIR = "/etc/postgresql"
SCRIPTS_DIR = "/opt/postgres/scripts"
SECRETS_DIR = "/etc/postgres/secrets"
TLS_DIR = "/etc/postgres/tls"
CA_DIR = "/etc/postgres/ca"
RUN_DIR = "/var/run/postgresql"  # Unix socket, pid and readiness marker
TMP_DIR = "/tmp"
SHM_DIR = "/dev/shm"
BACKUP_DIR = "/var/lib/postgresql/backups"

# Roles and databases the product creates whatever the values say: no configured
# name may take one of them (pgbundle/values/models.py refuses it).
SUPERUSER_ROLE = "postgres"
REPLICATION_ROLE = "replicator"  # Patroni's: LOGIN REPLICATION only
REWIND_ROLE = "rewinder"  # Patroni's: the four functions pg_rewind needs
TEMPORAL_DATABASES = ("temporal", "temporal_visibility")  # created by init.sql when Temporal is on

# Keys of the passwords Secret (the old chart's names).
SUPERUSER_PASSWORD_KEY = "postgres_password"
OWNER_PASSWORD_KEY = "postgres_app_owner_pw"
APP_PASSWORD_KEY = "postgres_app_user_pw"
READ_ONLY_PASSWORD_KEY = "postgres_app_ro_pw"
MIGRATOR_PASSWORD_KEY = "postgres_app_migrator_pw"  # added for the migration role (not in the old chart)
TEMPORAL_PASSWORD_KEY = "postgres_temporal_pw"
MONITORING_PASSWORD_KEY = "postgres_monitoring_pw"  # optional key; required when metrics are on
# The start script's variable naming a role -> the key of that role's password.
ROLE_PASSWORD_KEYS = {
    "PG_OWNER_USER": OWNER_PASSWORD_KEY,
    "PG_APP_USER": APP_PASSWORD_KEY,
    "PG_READ_ONLY_USER": READ_ONLY_PASSWORD_KEY,
    "PG_MIGRATOR_USER": MIGRATOR_PASSWORD_KEY,
    "PG_TEMPORAL_USER": TEMPORAL_PASSWORD_KEY,
    "PG_MONITORING_USER": MONITORING_PASSWORD_KEY,
    "PG_POOLER_AUTH_USER": "postgres_pooler_auth_pw",
}
# Roles that exist only while a feature is on: role variable -> on/off variable.
OPTIONAL_ROLES = {"PG_TEMPORAL_USER": "PG_TEMPORAL", "PG_MONITORING_USER": "PG_METRICS", "PG_POOLER_AUTH_USER": "PG_POOLER"}

# File names inside the TLS and CA Secrets.
TLS_CERT_FILE = "server.crt"
TLS_KEY_FILE = "server.key"
CA_CERT_FILE = "ca.crt"
# The same CA bundle under the keys api-forge's own Temporal Deployment and schema Job
# mount from the CA Secret (SQL_CA, TLS_CA_FILE), so they start unchanged.
CA_CERT_ALIASES = ("ca-bundle.crt", "root-ca.crt")
# Keys of the backup job's client-certificate Secret (postgres-backup-tls), the
# same whether `secrets generate` or cert-manager writes it; also the file names
# the job sees.
CLIENT_CERT_FILE = "tls.crt"
CLIENT_KEY_FILE = "tls.key"

# Metrics (issue 6): the exporter sidecar and the objects around it.
EXPORTER_CONTAINER = "postgres-exporter"
METRICS_PORT = 9187
METRICS_PORT_NAME = "metrics"
METRICS_SERVICE = "postgres-metrics"
SERVICE_MONITOR = "postgres"
PROMETHEUS_RULE = "postgres"
# The Markdown page (from the repository's top) with a heading per alert; each
# alert's runbook_url is `metrics.prometheusRule.runbookBaseUrl` (this page by
# default) plus `#` and the heading's anchor. Moving the runbook is this one line.
RUNBOOK_PAGE = "docs/runbook.md"
DASHBOARD_CONFIG_MAP = "postgres-dashboard"
MONITORING_ROLE = "monitoring"  # LOGIN, member of pg_monitor only
# postgres-exporter release (the image tag's default) whose collectors
# (collector/*.go, cmd/postgres_exporter) pgbundle/monitoring/metric_catalog.py
# was checked against. v0.20.x moved settings, stat_activity and
# stat_replication to standalone collectors without renaming their metrics.
EXPORTER_VERSION = "v0.20.1"
EXPORTER_UID = 65534  # the exporter image runs as nobody
EXPORTER_SECRET_DIR = "/etc/postgres-exporter/secrets"

# Backups: the backup alerts select the CronJob's Jobs by its name.
BACKUP_CRONJOB = "postgres-backup"
BACKUP_SERVICE_ACCOUNT = "postgres-backup"
BACKUP_NETWORK_POLICY = "postgres-backup"
BACKUP_CONTAINER = "backup"
RESTORE_CONTAINER = "restore"
RESTORE_JOB_PREFIX = "postgres-restore-"
# One job restores each database in one transaction: a failed or killed restore
# leaves it as it was (constructs/scripts/restore.sh). More jobs are faster and not atomic.
DEFAULT_RESTORE_JOBS = 1
# Each job is a pg_restore worker with its own connection, on the Job's and the
# database's CPUs (2 each by default): beyond 16 workers only queue. The script
# also checks at run time that the server has a connection for each.
MAX_RESTORE_JOBS = 16
# The major-version upgrade Job (`upgrade-manifest`): postgres-upgrade-<new major>, on pod 0's data volume.
UPGRADE_COMPONENT = "upgrade"
UPGRADE_CONTAINER = "upgrade"
UPGRADE_JOB_PREFIX = "postgres-upgrade-"
FIRST_DATA_CLAIM = f"{DATA_CLAIM}-{STATEFULSET}-0"
# Mount path of the backup job's client certificate (used when ca.verifyClients).
CLIENT_TLS_DIR = "/etc/postgres/client-tls"
CLIENT_TLS_VOLUME = "client-tls"

# The schema-migration Job (`migrate-manifest`): its default name and its container.
MIGRATE_JOB = "postgres-migrate"
MIGRATE_CONTAINER = "migrate"
MIGRATE_UID = 10001  # the application image's user is unknown: a fixed uid above the range of host users

# Keys cert-manager writes into a Certificate's Secret.
CERT_MANAGER_CERT_KEY = "tls.crt"
CERT_MANAGER_KEY_KEY = "tls.key"
CERT_MANAGER_CA_KEY = "ca.crt"

# High availability (Patroni): keys of the passwords Secret for its replication
# and rewind roles and its REST API, the API's port and where the pod finds its
# configuration. The HA scripts (constructs/scripts/ha/) are mounted with the
# others, in SCRIPTS_DIR.
REPLICATION_PASSWORD_KEY = "postgres_replication_pw"
REWIND_PASSWORD_KEY = "postgres_rewind_pw"
PATRONI_API_PASSWORD_KEY = "patroni_api_pw"
HA_PASSWORD_KEYS = (REPLICATION_PASSWORD_KEY, REWIND_PASSWORD_KEY, PATRONI_API_PASSWORD_KEY)
PATRONI_API_PORT = 8008
PATRONI_API_PORT_NAME = "patroni"
PATRONI_CONFIG_MAP = "postgres-patroni"
PATRONI_ROLE = "postgres-patroni"  # Role and RoleBinding
REPLICAS_SERVICE = "postgres-replicas"  # streaming replicas only (read-only clients)
# Patroni's cluster name (PostgreSQL's cluster_name too). In Kubernetes it
# creates ConfigMaps <scope>-leader, -config, -sync and -failover: "postgres"
# would make its -config collide with CONFIG_MAP.
PATRONI_SCOPE = "postgres-ha"
PATRONI_CONFIG_DIR = "/etc/patroni"
PATRONI_CONFIG_FILE = "patroni.yaml"  # what every member and patronictl read
# Patroni's `bootstrap` section, beside patroni.yaml: only BOOTSTRAP_MEMBER reads
# it (patroni.sh), so with members starting together no empty member can
# initialize a new cluster while the first one adopts its existing data.
PATRONI_BOOTSTRAP_FILE = "bootstrap.yaml"
BOOTSTRAP_MEMBER = f"{STATEFULSET}-0"

# Connection pooling (issue 21): PgBouncer in front of the Service `postgres`.
# The version of the pinned image (ghcr.io/cloudnative-pg/pgbouncer: Debian 13's
# package) and of the local build (workstation/pgbouncer_install.py).
POOLER_VERSION = "1.24.1"
POOLER_COMPONENT = "pooler"
POOLER = "postgres-pooler"  # Deployment, Service, ServiceAccount, ConfigMap, PDB, NetworkPolicy
# The optional read-only pooler: the same PgBouncer in front of REPLICAS_SERVICE (HA only).
POOLER_RO_COMPONENT = "pooler-ro"
POOLER_RO = "postgres-pooler-ro"  # Deployment, Service, ServiceAccount, ConfigMap, PDB, NetworkPolicy
POOLER_RO_METRICS_SERVICE = "postgres-pooler-ro-metrics"
POOLER_CONTAINER = "pgbouncer"
POOLER_UID = 10002  # PgBouncer owns no file in its image: a fixed uid above the range of host users
POOLER_CONFIG_FILE = "pgbouncer.ini"
POOLER_HBA_FILE = "pg_hba.conf"  # beside pgbouncer.ini: who may log in through the pooler, and how
POOLER_CONFIG_DIR = "/etc/pgbouncer"
POOLER_SCRIPTS_DIR = "/opt/pgbouncer/scripts"
POOLER_SECRETS_DIR = "/etc/pgbouncer-secrets"
POOLER_TLS_DIR = "/etc/pgbouncer-tls"
POOLER_CA_DIR = "/etc/pgbouncer-ca"
POOLER_RUN_DIR = "/var/run/pgbouncer"  # memory-backed: the auth_file with the auth role's password
POOLER_AUTH_FILE = "auth_file"
# The login role PgBouncer looks up client secrets with: its one right is
# EXECUTE on POOLER_AUTH_FUNCTION (SECURITY DEFINER) in the application database.
POOLER_AUTH_ROLE = "pgbouncer_auth"
POOLER_AUTH_SCHEMA = "pgbouncer"  # owned by the superuser; only the auth role may use it
POOLER_AUTH_FUNCTION_NAME = "user_secret"
POOLER_AUTH_FUNCTION = f"{POOLER_AUTH_SCHEMA}.{POOLER_AUTH_FUNCTION_NAME}"
POOLER_PASSWORD_KEY = ROLE_PASSWORD_KEYS["PG_POOLER_AUTH_USER"]
# The pooler's metrics (with postgres.metrics): prometheus-community's pgbouncer_exporter
# beside PgBouncer, reading its admin console as POOLER_STATS_USER, a PgBouncer-only
# login (stats_users: SHOW commands only; no PostgreSQL role) whose password is a key
# of the passwords Secret. It connects over a Unix socket in a folder only the two
# containers share. pgbundle/monitoring/metric_catalog.py was checked against
# POOLER_EXPORTER_VERSION's collector.go.
POOLER_EXPORTER_CONTAINER = "pgbouncer-exporter"
POOLER_EXPORTER_VERSION = "v0.12.1"
POOLER_METRICS_PORT = 9127  # the exporter's default
POOLER_METRICS_SERVICE = "postgres-pooler-metrics"
POOLER_STATS_USER = "pgbouncer_stats"
POOLER_STATS_PASSWORD_KEY = "postgres_pooler_stats_pw"
POOLER_ADMIN_DATABASE = "pgbouncer"  # PgBouncer's admin console
POOLER_SOCKET_DIR = "/var/run/pgbouncer-socket"
# The stats user's password as a pgpass file in the socket's folder, written by
# pooler.sh, mode 0600: lib/pq (the exporter's driver) ignores a group-readable
# one, which every Secret file is under fsGroup. Hence the exporter runs as POOLER_UID.
POOLER_STATS_PASSFILE = f"{POOLER_SOCKET_DIR}/pgpass"

# The pgBackRest version everywhere: the image builds it from Debian 13's source
# (image/Dockerfile), and the workstation runs the same (workstation/pgbackrest_install.py).
# 2.46 added block incrementals; 2.45 (Debian 12's) cannot read PostgreSQL 18 data.
PGBACKREST_VERSION = "2.55.1"
# Left beside PGDATA by upgrade.sh when it upgraded PITR data to a new major (it
# holds the old major); the next start upgrades the stanza, takes a full backup
# and removes it (start.sh): archived WAL of the new major cannot be replayed onto
# a backup of the old one.
PITR_UPGRADE_MARKER = f"{DATA_MOUNT}/pitr-upgraded-from"
# Point-in-time recovery (pgBackRest, issue 20). The stanza names the cluster
# inside every repository; the volume repository sits in a folder of the backups
# volume or on a PVC of its own; secrets reach pgBackRest through a conf.d file
# the start script writes into the run folder (never the ConfigMap).
PITR_STANZA = "postgres"
PITR_CLAIM = "postgres-pitr"
PITR_REPO_DIR = "/var/lib/postgresql/pitr"  # mount of postgres-pitr
PITR_BACKUPS_REPO_DIR = f"{BACKUP_DIR}/pgbackrest"  # the repository on postgres-backups
PGBACKREST_CONF = "pgbackrest.conf"  # a key of CONFIG_MAP
PGBACKREST_RUN_DIR = f"{RUN_DIR}/pgbackrest"  # locks, and conf.d with the secrets
# Asynchronous archiving's spool (acknowledgements of pushed WAL, prefetched WAL of a
# restore): on the data volume, so a restarted pod finds what was already pushed.
PGBACKREST_SPOOL_DIR = f"{DATA_MOUNT}/pgbackrest-spool"
CIPHER_PASS_KEY = "pgbackrest_cipher_pass"  # passwords Secret; required when pitr.encryption.enabled
PITR_S3_SECRET_DIR = "/etc/postgres/pitr-s3"
PITR_S3_CA_DIR = "/etc/postgres/pitr-s3-ca"
S3_KEY_ID_KEY = "access-key-id"  # keys of pitr.repos.s3.existingSecret
S3_KEY_SECRET_KEY = "secret-access-key"
# The scheduled backups (CronJobs postgres-pitr-full and -diff) reach the database
# pod's pgBackRest TLS server (sidecar `pgbackrest`, mutual TLS: it admits only the
# jobs' client certificate, CN the read-only role, for the stanza); no PGDATA in the job.
PGBACKREST_SERVER_CONTAINER = "pgbackrest"
PGBACKREST_PORT = 8432
PGBACKREST_PORT_NAME = "pgbackrest"
PITR_BACKUP_COMPONENT = "pitr-backup"  # the backup jobs' pods; only they reach PGBACKREST_PORT
PITR_BACKUP_CONTAINER = "pitr-backup"
PITR_BACKUP_SERVICE_ACCOUNT = "postgres-pitr-backup"
PITR_BACKUP_NETWORK_POLICY = "postgres-pitr-backup"
PITR_FULL_CRONJOB = "postgres-pitr-full"
PITR_DIFF_CRONJOB = "postgres-pitr-diff"
PITR_JOB_RUN_DIR = f"{TMP_DIR}/pgbackrest"  # the job's locks and conf.d (no run volume there)
# The printed PITR restore Job (`pitr-restore-manifest`): postgres-pitr-restore-<target>, into
# a new data volume postgres-data-pitr-<target> or (in place) into FIRST_DATA_CLAIM. Its pods
# carry the backup jobs' labels: their NetworkPolicy lets them reach DNS and the S3 endpoint.
PITR_RESTORE_JOB_PREFIX = "postgres-pitr-restore-"
PITR_RESTORE_CLAIM_PREFIX = f"{DATA_CLAIM}-pitr-"
PITR_RESTORE_CONTAINER = "pitr-restore"
PITR_RESTORE_ASIDE_PREFIX = "pgdata.before-pitr-"  # in place: the data moved aside, beside PGDATA
# The restore drill (CronJob postgres-pitr-drill): restores into a scratch volume
# and starts PostgreSQL there with no network; it reads the repositories only and
# never reaches the database (its NetworkPolicy admits no database port).
PITR_DRILL_COMPONENT = "pitr-drill"
PITR_DRILL_CONTAINER = "pitr-drill"
PITR_DRILL_SERVICE_ACCOUNT = "postgres-pitr-drill"
PITR_DRILL_NETWORK_POLICY = "postgres-pitr-drill"
PITR_DRILL_CRONJOB = "postgres-pitr-drill"
PITR_DRILL_DIR = "/var/lib/postgresql/drill"  # the scratch volume (an ephemeral PVC)
PITR_DRILL_SCRIPT = "pitr-drill.sh"



def password_keys(*, temporal: bool, metrics: bool, ha: bool = False, pooler: bool = False,
                  cipher: bool = False) -> list[str]:
    """Keys of the passwords Secret that start.sh (with `ha`, patroni.sh) requires, in a fixed order
    (`cipher`: PITR's encryption passphrase)."""
    optional = {TEMPORAL_PASSWORD_KEY: temporal, MONITORING_PASSWORD_KEY: metrics, POOLER_PASSWORD_KEY: pooler}
    keys = [SUPERUSER_PASSWORD_KEY, *(k for k in ROLE_PASSWORD_KEYS.values() if optional.get(k, True))]
    keys += [POOLER_STATS_PASSWORD_KEY] if pooler and metrics else []
    keys += list(HA_PASSWORD_KEYS) if ha else []
    return keys + [CIPHER_PASS_KEY] if cipher else keys


def selector_labels(component: str) -> dict[str, str]:
    """Labels that select pods. They never change between versions: a
    StatefulSet's selector is immutable."""
    return {
        "app.kubernetes.io/name": NAME,
        "app.kubernetes.io/instance": NAME,
        "app.kubernetes.io/component": component,
    }


def object_labels(component: str, version: str) -> dict[str, str]:
    return {
        **selector_labels(component),
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/version": version,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def _qualified(host: str, namespace: str) -> list[str]:
    return [host, f"{host}.{namespace}", f"{host}.{namespace}.svc", f"{host}.{namespace}.svc.cluster.local"]


def service_names(namespace: str) -> list[str]:
    """DNS names of the local runner's certificate: the Services, any pod behind
    the headless Service (wildcards), and localhost (port-forward, local runner)."""
    names = [*_qualified(SERVICE, namespace), *_qualified(HEADLESS_SERVICE, namespace)]
    names += [f"*.{HEADLESS_SERVICE}.{namespace}.svc", f"*.{HEADLESS_SERVICE}.{namespace}.svc.cluster.local"]
    return names + ["localhost"]


def pooler_dns_names(namespace: str, *, read_only: bool = False) -> list[str]:
    """The pooler certificate's names: its Service (short, namespaced, .svc, fully
    qualified), with `read_only` the read-only pooler's Service too (both poolers
    serve the one certificate), and localhost (port-forward, local runner)."""
    return [*_qualified(POOLER, namespace), *(_qualified(POOLER_RO, namespace) if read_only else []), "localhost"]


def member_host(n: int) -> str:
    """Member n's stable name behind the headless Service (short; qualify with the namespace)."""
    return f"{STATEFULSET}-{n}.{HEADLESS_SERVICE}"


def member_dns_name(n: int, namespace: str) -> str:
    """Member n's name as other pods in the cluster reach it."""
    return f"{member_host(n)}.{namespace}.svc"


def server_dns_names(namespace: str, replicas: int) -> list[str]:
    """Every name a client may use in a cluster, spelled out (no wildcards) in a
    fixed order: the Service and the headless Service (short, namespaced, .svc,
    fully qualified), each pod's stable name behind the headless Service, and
    localhost. The generated certificate and the cert-manager Certificate both
    use this list."""
    names: list[str] = []
    hosts = [SERVICE, HEADLESS_SERVICE]
    # With replicas, the read-only clients' Service (the read-only pooler checks it with verify-full).
    hosts += [REPLICAS_SERVICE] if replicas > 1 else []
    hosts += [member_host(n) for n in range(replicas)]
    for host in hosts:
        names += _qualified(host, namespace)
    return names + ["localhost"]
