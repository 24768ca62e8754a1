"""Where things live inside the database pod, and the object names that are a
contract with running clusters.

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
CHART_FILES = frozenset(f"{chart}.k8s.yaml" for chart in (NAMESPACE_CHART, DATABASE_CHART, BACKUP_CHART, METRICS_CHART))

# Object names (fixed: no chart prefix, no hash).
STATEFULSET = "postgres"
SERVICE = "postgres"
HEADLESS_SERVICE = "postgres-headless"
DATA_CLAIM = "postgres-data"  # volumeClaimTemplate; PVCs are postgres-data-postgres-<n>
BACKUP_CLAIM = "postgres-backups"
CONFIG_MAP = "postgres-config"  # postgresql.conf, pg_hba.conf
SCRIPTS_CONFIG_MAP = "postgres-scripts"  # the pod's scripts
SERVICE_ACCOUNT = "postgres"
PDB = "postgres"
NETWORK_POLICY = "postgres"
CONTAINER = "postgres"
PORT = 5432
PORT_NAME = "postgresql"

# The official Debian-based postgres image runs the server as this uid/gid.
POSTGRES_UID = 999

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

# Keys of the passwords Secret (the old chart's names).
SUPERUSER_PASSWORD_KEY = "postgres_password"
OWNER_PASSWORD_KEY = "postgres_app_owner_pw"
APP_PASSWORD_KEY = "postgres_app_user_pw"
READ_ONLY_PASSWORD_KEY = "postgres_app_ro_pw"
TEMPORAL_PASSWORD_KEY = "postgres_temporal_pw"

# File names inside the TLS and CA Secrets.
TLS_CERT_FILE = "server.crt"
TLS_KEY_FILE = "server.key"
CA_CERT_FILE = "ca.crt"
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
DASHBOARD_CONFIG_MAP = "postgres-dashboard"
MONITORING_ROLE = "monitoring"  # LOGIN, member of pg_monitor only
MONITORING_PASSWORD_KEY = "postgres_monitoring_pw"  # optional key; required when metrics are on
EXPORTER_UID = 65534  # the exporter image runs as nobody
EXPORTER_SECRET_DIR = "/etc/postgres-exporter/secrets"
# The backup CronJob's name (its construct lands with the backup work); the
# backup alerts select its Jobs by this name.
BACKUP_CRONJOB = "postgres-backup"
