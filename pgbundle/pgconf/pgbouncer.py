"""pgbouncer.ini, derived from the values.

The same file serves the pod and the local runner: what differs between them
(where the files are, which address and port to listen on, where the database
answers) is passed in as a `PoolerSite`, the way Patroni's configuration takes
its paths.

Authentication keeps no password list: the auth file holds only the auth
role's password, and PgBouncer asks the database for a client's SCRAM verifier
through `auth_query` (a SECURITY DEFINER function that answers for the
application's login roles only, constructs/scripts/init.sql). A client proves
its password to PgBouncer with SCRAM, and PgBouncer logs in to PostgreSQL with
the same SCRAM keys (pass-through): no plain password is ever at the pooler.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from pgbundle import contract
from pgbundle.pgconf.conf import TLS12_CIPHERS
from pgbundle.values.models import PostgresValues

# TLS versions on both sides, as the database's ssl_min_protocol_version.
TLS_PROTOCOLS = "tlsv1.2,tlsv1.3"


class PoolerSite(BaseModel):
    """Where one PgBouncer runs: its files, its listener and the database's address."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    listen_addr: str
    """Addresses PgBouncer listens on (`*` in the pod)."""
    listen_port: int
    server_host: str
    """The database's host name: a name its certificate holds (verify-full)."""
    server_port: int
    config: str
    """Where pgbouncer.ini is."""
    hba: str
    """Where the pooler's pg_hba.conf is."""
    password_file: str
    """The auth role's password (a Secret file)."""
    auth_file: str
    """The auth role's line, written by pooler.sh from `password_file`."""
    tls_cert: str
    tls_key: str
    ca_cert: str
    socket_dir: str
    """Where the Unix socket the metrics exporter connects to is (with metrics on)."""
    stats_password_file: str
    """The stats user's password (a Secret file; with metrics on)."""
    stats_passfile: str
    """The pgpass file pooler.sh writes for the exporter (with metrics on)."""


def pod_site(namespace: str, *, read_only: bool = False) -> PoolerSite:
    """The pod's paths, and the Service `postgres` (the primary) by the name its
    certificate holds; with `read_only`, the Service `postgres-replicas` (the
    streaming replicas), which the certificate names when there are replicas."""
    service = contract.REPLICAS_SERVICE if read_only else contract.SERVICE
    return PoolerSite(
        listen_addr="*", listen_port=contract.PORT, server_host=f"{service}.{namespace}.svc",
        server_port=contract.PORT,
        config=f"{contract.POOLER_CONFIG_DIR}/{contract.POOLER_CONFIG_FILE}",
        hba=f"{contract.POOLER_CONFIG_DIR}/{contract.POOLER_HBA_FILE}",
        password_file=f"{contract.POOLER_SECRETS_DIR}/{contract.POOLER_PASSWORD_KEY}",
        auth_file=f"{contract.POOLER_RUN_DIR}/{contract.POOLER_AUTH_FILE}",
        tls_cert=f"{contract.POOLER_TLS_DIR}/{contract.CLIENT_CERT_FILE}",
        tls_key=f"{contract.POOLER_TLS_DIR}/{contract.CLIENT_KEY_FILE}",
        ca_cert=f"{contract.POOLER_CA_DIR}/{contract.CA_CERT_FILE}",
        socket_dir=contract.POOLER_SOCKET_DIR,
        stats_password_file=f"{contract.POOLER_SECRETS_DIR}/{contract.POOLER_STATS_PASSWORD_KEY}",
        stats_passfile=contract.POOLER_STATS_PASSFILE)


def metrics_on(pg: PostgresValues) -> bool:
    """The pooler pods run the exporter: the pooler and metrics are both on."""
    return pg.pooler.enabled and pg.metrics.enabled


def pooler_environment(site: PoolerSite, *, metrics: bool) -> dict[str, str]:
    """What pooler.sh and pooler-probe.sh read; with `metrics`, the stats user's password file too."""
    env = {"PGB_CONFIG": site.config, "PGB_PASSWORD_FILE": site.password_file, "PGB_AUTH_FILE": site.auth_file,
           "PGB_AUTH_USER": contract.POOLER_AUTH_ROLE, "PGB_PROBE_PORT": str(site.listen_port)}
    if metrics:
        env.update({"PGB_STATS_USER": contract.POOLER_STATS_USER, "PGB_STATS_PASSWORD_FILE": site.stats_password_file,
                    "PGB_STATS_PASSFILE": site.stats_passfile, "PGB_ADMIN_DATABASE": contract.POOLER_ADMIN_DATABASE})
    return env


def _databases(pg: PostgresValues, site: PoolerSite) -> list[str]:
    return [f"{db} = host={site.server_host} port={site.server_port} dbname={db}" for db in pg.pooler_databases]


def pgbouncer_settings(pg: PostgresValues, site: PoolerSite) -> dict[str, str | int]:
    """The [pgbouncer] section, in file order."""
    pooler = pg.pooler
    verify_clients = pg.ca.verify_clients
    settings: dict[str, str | int] = {
        "listen_addr": site.listen_addr,
        "listen_port": site.listen_port,
        # The probes and every client use TCP (and TLS); a Unix socket only for the metrics
        # exporter beside PgBouncer (its folder shared by the two containers alone).
        "unix_socket_dir": site.socket_dir if metrics_on(pg) else "",
        # Authentication: SCRAM only (the hba file), secrets looked up in the database.
        "auth_type": "hba",
        "auth_hba_file": site.hba,
        "auth_file": site.auth_file,
        "auth_user": contract.POOLER_AUTH_ROLE,
        "auth_query": f"SELECT usename, passwd FROM {contract.POOLER_AUTH_FUNCTION}($1)",
        "auth_dbname": pg.database,
        # The exporter's login to the admin console: SHOW commands only (its line in the auth file).
        **({"stats_users": contract.POOLER_STATS_USER} if metrics_on(pg) else {}),
        # Pools.
        "pool_mode": pooler.pool_mode,
        "max_client_conn": pooler.max_client_conn,
        "default_pool_size": pooler.default_pool_size,
        "min_pool_size": pooler.min_pool_size,
        "reserve_pool_size": pooler.reserve_pool_size,
        "max_db_connections": pooler.max_db_connections,
        "max_prepared_statements": pooler.max_prepared_statements,
        # JDBC sends it at every start; PgBouncer would otherwise refuse the client.
        "ignore_startup_parameters": "extra_float_digits",
        # Timeouts, in seconds.
        "query_wait_timeout": pooler.query_wait_timeout,
        "client_idle_timeout": pooler.client_idle_timeout,
        "idle_transaction_timeout": pooler.idle_transaction_timeout,
        "server_idle_timeout": pooler.server_idle_timeout,
        "server_lifetime": pooler.server_lifetime,
        # After a failover the Service's address leads to the new primary: look it up again soon.
        "dns_max_ttl": 5,
        # While the Service has no primary, a server login fails; PgBouncer's default waits 15 s
        # before trying again, which would hold the pooler's clients off a promoted primary.
        "server_login_retry": 1,
        # Clients: TLS only, 1.2 or later, the database's AEAD suites; a certificate
        # signed by the CA too when the database demands one (ca.verifyClients).
        "client_tls_sslmode": "verify-ca" if verify_clients else "require",
        "client_tls_cert_file": site.tls_cert,
        "client_tls_key_file": site.tls_key,
        "client_tls_ca_file": site.ca_cert,
        "client_tls_protocols": TLS_PROTOCOLS,
        "client_tls_ciphers": TLS12_CIPHERS,
        # The database: its certificate checked against the CA and its name.
        "server_tls_sslmode": "verify-full",
        "server_tls_ca_file": site.ca_cert,
        "server_tls_protocols": TLS_PROTOCOLS,
        "server_tls_ciphers": TLS12_CIPHERS,
    }
    if verify_clients:
        # PostgreSQL verifies client certificates (clientcert=verify-ca): present the pooler's own.
        settings["server_tls_cert_file"] = site.tls_cert
        settings["server_tls_key_file"] = site.tls_key
    settings.update({
        # Logs on stderr; connections are counted by the metrics, not logged one by one.
        "logfile": "",
        "pidfile": "",
        "log_connections": 0,
        "log_disconnections": 0,
    })
    return settings


def render_pooler_hba(*, metrics: bool) -> str:
    """Who may log in through the pooler: every client over TLS with SCRAM, except
    the auth role. Its password is in the pooler's auth file, which would otherwise
    let it log in here too; it only ever logs in to the database, for the lookup.
    A client without TLS matches no line and is refused. With `metrics`, the stats
    user reaches the admin console over the Unix socket only (no TLS there: the
    socket's folder is shared by the exporter alone)."""
    stats = contract.POOLER_STATS_USER
    lines = ["# Generated by pgbundle/pgconf/pgbouncer.py. First match wins."]
    if metrics:
        lines += [f"local {contract.POOLER_ADMIN_DATABASE} {stats} scram-sha-256", f"hostssl all {stats} all reject"]
    lines += [f"hostssl all {contract.POOLER_AUTH_ROLE} all reject", "hostssl all all all scram-sha-256"]
    return "\n".join(lines) + "\n"


def render_pgbouncer_ini(pg: PostgresValues, site: PoolerSite) -> str:
    lines = ["; Generated from the values by pgbundle/pgconf/pgbouncer.py.", "[databases]", *_databases(pg, site),
             "", "[pgbouncer]"]
    lines += [f"{name} = {value}" for name, value in pgbouncer_settings(pg, site).items()]
    return "\n".join(lines) + "\n"
