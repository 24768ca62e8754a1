"""Patroni's configuration file, rendered from narrow typed inputs.

`render(spec)` gives the configuration every member of a cluster runs in
Kubernetes: the Kubernetes API as the DCS (ConfigMap mode, see USE_ENDPOINTS), the
member's own name and addresses left to the environment the pod sets
(PATRONI_NAME, PATRONI_KUBERNETES_POD_IP, PATRONI_*_CONNECT_ADDRESS).
`with_member` fills those in for one member (the local runner), and
`with_etcd3` swaps only the DCS section for a local etcd.

No password is ever part of the configuration: Patroni takes them from
PATRONI_SUPERUSER_PASSWORD, PATRONI_REPLICATION_PASSWORD,
PATRONI_REWIND_PASSWORD and PATRONI_RESTAPI_PASSWORD, which the member's
start script reads from the mounted Secret files (PASSWORD_ENV).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field

from pgbundle.contract import REPLICATION_ROLE, REWIND_ROLE, SUPERUSER_ROLE

# Settings Patroni accepts only from the cluster-wide (DCS) configuration: in a
# member's own `postgresql.parameters` it drops them silently. They must be
# equal on every member anyway (a standby refuses to start with a smaller
# max_connections than its primary). From Patroni's ConfigHandler.CMDLINE_OPTIONS,
# less those it derives itself (listen_addresses, port, cluster_name, hot_standby).
CLUSTER_WIDE_PARAMETERS = frozenset({
    "wal_level", "max_connections", "max_wal_senders", "wal_keep_size", "max_prepared_transactions",
    "max_locks_per_transaction", "track_commit_timestamp", "max_replication_slots",
    "max_worker_processes", "wal_log_hints",
})
# Settings Patroni sets from other keys of its configuration: passing them too
# would contradict `postgresql.listen` or `scope`.
PATRONI_OWNED_PARAMETERS = frozenset({"listen_addresses", "port", "cluster_name", "hot_standby",
                                      "hba_file", "ident_file", "config_file", "data_directory"})

# Credential kind -> the environment variable Patroni reads its password from.
PASSWORD_ENV = {
    "superuser": "PATRONI_SUPERUSER_PASSWORD",
    "replication": "PATRONI_REPLICATION_PASSWORD",
    "rewind": "PATRONI_REWIND_PASSWORD",
    "restapi": "PATRONI_RESTAPI_PASSWORD",
}

Parameter = str | int | float | bool


@dataclass(frozen=True)
class DcsSettings:
    """Cluster-wide behaviour, written to the DCS once at bootstrap (later
    changes: `patronictl edit-config`). Meaning, defaults and limits:
    `postgres.ha` in the values, which validates them."""

    ttl: int
    loop_wait: int
    retry_timeout: int
    maximum_lag_on_failover: int
    primary_start_timeout: int
    synchronous_mode: bool
    synchronous_mode_strict: bool


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the server certificate, its key and the CA that signed it (inside the pod)."""

    cert: str
    key: str
    ca: str
    verify_clients: bool = False
    """PostgreSQL asks clients for a certificate signed by `ca`. Left out: off."""


@dataclass(frozen=True)
class Users:
    """Role names Patroni uses; passwords come from PASSWORD_ENV."""

    superuser: str = SUPERUSER_ROLE
    """Left out: postgres (peer over the socket inside the pod)."""
    replication: str = REPLICATION_ROLE
    """LOGIN REPLICATION only; streams WAL and clones members. Left out: replicator."""
    rewind: str = REWIND_ROLE
    """May run the four functions pg_rewind needs, nothing else. Left out: rewinder."""
    restapi: str = "patroni"
    """Basic-auth user of the REST API's unsafe endpoints. Left out: patroni."""


@dataclass(frozen=True)
class Paths:
    """Folders and files inside the pod."""

    data_dir: str
    bin_dir: str
    run_dir: str
    """Unix socket, Patroni's pgpass, the log symlinks. Left out: required."""
    log_dir: str
    """The server's log_directory."""
    hook: str
    """Script run as Patroni's post_bootstrap, on_start, on_restart and on_role_change."""
    config_dir: str | None = None
    """Where Patroni writes postgresql.conf and pg_hba.conf. Left out: the data directory
    (it must be writable: a ConfigMap volume is not)."""


@dataclass(frozen=True)
class KubernetesDcs:
    """How Patroni finds its cluster through the API server."""

    namespace: str
    labels: Mapping[str, str]
    """Labels of the member pods; Patroni selects them and puts them on the ConfigMaps it creates."""
    scope_label: str = "cluster-name"
    """Pod label holding the scope. Left out: Patroni's default."""
    role_label: str = "role"
    """Pod label Patroni sets to PRIMARY_ROLE or REPLICA_ROLE; the Services select it. Left out: role."""


# Values of the role label on the member pods (written out, not left to Patroni's defaults).
PRIMARY_ROLE = "primary"
REPLICA_ROLE = "replica"


# Patroni's Kubernetes DCS keeps the leader lock in a ConfigMap, not an
# Endpoints object: the Endpoints API is deprecated since Kubernetes 1.33 (a
# warning on every write; EndpointSlices replace it) and this project targets
# up to 1.37. ConfigMap mode writes no Endpoints, and the Services reach the
# primary through the role label Patroni keeps on the pods, gated by the
# readiness probe on the REST API.
USE_ENDPOINTS = False


@dataclass(frozen=True)
class Member:
    """One member's name and addresses (in Kubernetes, these come from the pod's environment)."""

    name: str
    host: str
    """Address other members and clients use (connect_address)."""
    listen: str
    port: int
    api_port: int


@dataclass(frozen=True)
class Archive:
    """WAL archiving with pgBackRest (point-in-time recovery): archive_command is
    among the parameters (archive_mode `on`: only the primary archives); these are
    what standbys and new members take from the repository."""

    restore_command: str
    """How a standby fetches WAL its primary no longer keeps (and a new timeline's history)."""
    replica_command: str
    """Creates a new member's data from the repository's newest backup. When it fails
    (the repository holds no backup yet), Patroni removes what it left and clones
    the primary with pg_basebackup."""


@dataclass(frozen=True)
class PatroniSpec:
    scope: str
    """Cluster name: the DCS key prefix and PostgreSQL's cluster_name."""
    port: int
    api_port: int
    parameters: Mapping[str, Parameter]
    """postgresql.conf settings as the project derives them (without locations)."""
    pg_hba: tuple[str, ...]
    tls: TlsFiles
    paths: Paths
    kubernetes: KubernetesDcs
    dcs: DcsSettings
    users: Users = field(default_factory=Users)
    listen: str = "0.0.0.0"
    """Address PostgreSQL and the REST API listen on. Left out: every IPv4 address."""
    archive: Archive | None = None
    """pgBackRest's repository for standbys and new members. Left out: no WAL archive
    (new members clone the primary)."""


def _setting(value: Parameter) -> str | int | float:
    # Patroni writes values as it gets them: spell booleans the way PostgreSQL prints them.
    if isinstance(value, bool):
        return "on" if value else "off"
    return value


def replication_hba(user: str, cidrs: tuple[str, ...] | list[str]) -> list[str]:
    """pg_hba lines for streaming replication: TLS and SCRAM for `user` only.
    `all` in the database column does not cover replication connections."""
    lines = [f"hostnossl  replication all      {cidr} reject" for cidr in ("0.0.0.0/0", "::/0")]
    return lines + [f"hostssl    replication {user} {cidr} scram-sha-256" for cidr in cidrs]


def render(spec: PatroniSpec) -> dict:
    """Patroni's configuration for every member of the cluster (as the ConfigMap holds it)."""
    parameters = {name: _setting(value) for name, value in spec.parameters.items()}
    clashing = sorted(PATRONI_OWNED_PARAMETERS.intersection(parameters))
    if clashing:
        raise ValueError(f"parameters: {', '.join(clashing)} are set by Patroni itself; leave them out")
    parameters.update({
        "ssl_cert_file": spec.tls.cert,
        "ssl_key_file": spec.tls.key,
        "unix_socket_directories": spec.paths.run_dir,
        "log_directory": spec.paths.log_dir,
    })
    if spec.tls.verify_clients:
        parameters["ssl_ca_file"] = spec.tls.ca
    cluster_wide = {k: v for k, v in parameters.items() if k in CLUSTER_WIDE_PARAMETERS}
    local = {k: v for k, v in parameters.items() if k not in CLUSTER_WIDE_PARAMETERS}
    # Members reach each other by name, so the certificate's names are checked.
    verified = {"sslmode": "verify-full", "sslrootcert": spec.tls.ca}
    dcs = spec.dcs
    postgresql: dict = {
        "listen": f"{spec.listen}:{spec.port}",
        "data_dir": spec.paths.data_dir,
        "bin_dir": spec.paths.bin_dir,
        "pgpass": f"{spec.paths.run_dir}/pgpass",
        # Patroni's own connections go over the socket (peer as the postgres OS user).
        "use_unix_socket": True,
        "authentication": {
            "superuser": {"username": spec.users.superuser},
            "replication": {"username": spec.users.replication, **verified},
            "rewind": {"username": spec.users.rewind, **verified},
        },
        "parameters": local,
        "pg_hba": list(spec.pg_hba),
        # on_restart too: a restarted primary (patronictl restart) is neither started
        # nor promoted, yet its checkpointer needs the hook's wake (patroni-hook.sh).
        "callbacks": {"on_start": spec.paths.hook, "on_restart": spec.paths.hook, "on_role_change": spec.paths.hook},
        "basebackup": [{"checkpoint": "fast"}],
    }
    if spec.archive is not None:
        postgresql["recovery_conf"] = {"restore_command": spec.archive.restore_command}
        postgresql["create_replica_methods"] = ["pgbackrest", "basebackup"]
        # no_params: the command takes its settings from the environment, not Patroni's --scope/--datadir.
        postgresql["pgbackrest"] = {"command": spec.archive.replica_command, "no_params": True}
    if spec.paths.config_dir is not None:
        postgresql["config_dir"] = spec.paths.config_dir
    return {
        "scope": spec.scope,
        "restapi": {
            "listen": f"{spec.listen}:{spec.api_port}",
            "certfile": spec.tls.cert,
            "keyfile": spec.tls.key,
            # GET endpoints (health, role) stay open for probes; every unsafe one
            # (switchover, restart, reload, config) needs these credentials.
            "authentication": {"username": spec.users.restapi},
        },
        # patronictl and the members' calls to each other check the REST API's certificate.
        "ctl": {"cacert": spec.tls.ca},
        "kubernetes": {
            "namespace": spec.kubernetes.namespace,
            "labels": dict(spec.kubernetes.labels),
            "scope_label": spec.kubernetes.scope_label,
            "role_label": spec.kubernetes.role_label,
            "leader_label_value": PRIMARY_ROLE,
            "follower_label_value": REPLICA_ROLE,
            "standby_leader_label_value": PRIMARY_ROLE,
            "use_endpoints": USE_ENDPOINTS,
        },
        "bootstrap": {
            "dcs": {
                "ttl": dcs.ttl,
                "loop_wait": dcs.loop_wait,
                "retry_timeout": dcs.retry_timeout,
                "maximum_lag_on_failover": dcs.maximum_lag_on_failover,
                "primary_start_timeout": dcs.primary_start_timeout,
                "synchronous_mode": dcs.synchronous_mode,
                "synchronous_mode_strict": dcs.synchronous_mode_strict,
                "postgresql": {"use_pg_rewind": True, "use_slots": True, "parameters": cluster_wide},
            },
            "initdb": ["data-checksums", {"encoding": "UTF8"}, {"locale": "C.UTF-8"},
                       {"auth-local": "peer"}, {"auth-host": "scram-sha-256"}],
            # Roles, databases and grants (init.sql) before any client or replica arrives.
            "post_bootstrap": spec.paths.hook,
        },
        "postgresql": postgresql,
        # No watchdog device in a pod; the leader lock's ttl does the fencing.
        "watchdog": {"mode": "off"},
    }


def split_bootstrap(config: dict) -> tuple[dict, dict]:
    """(`config` less its `bootstrap` section, that section alone): Patroni merges
    the files of a folder, so the first member reads both and the others only
    the first, and never initialize a cluster."""
    rest = copy.deepcopy(config)
    return rest, {"bootstrap": rest.pop("bootstrap")}


def with_member(config: dict, member: Member) -> dict:
    """The configuration as one member runs it: its name and addresses filled in."""
    result = copy.deepcopy(config)
    result["name"] = member.name
    result["restapi"]["listen"] = f"{member.listen}:{member.api_port}"
    result["restapi"]["connect_address"] = f"{member.host}:{member.api_port}"
    result["postgresql"]["listen"] = f"{member.listen}:{member.port}"
    result["postgresql"]["connect_address"] = f"{member.host}:{member.port}"
    return result


def with_etcd3(config: dict, hosts: list[str]) -> dict:
    """The same configuration with etcd (v3 API, plain HTTP on loopback) as the DCS instead of Kubernetes."""
    result = copy.deepcopy(config)
    del result["kubernetes"]
    result["etcd3"] = {"hosts": list(hosts), "protocol": "http"}
    return result
