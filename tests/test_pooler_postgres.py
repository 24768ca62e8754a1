"""Real PgBouncer (the image's version) in front of the real local pod, as `local up`
runs them: who gets in, TLS on both sides, transaction mode with prepared
statements (psycopg 3 directly and SQLAlchemy as api-forge uses it), and a
connection storm against a small max_connections."""

from __future__ import annotations

import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import sqlalchemy
from sqlalchemy.orm import Session

from conftest import connect
from pgbundle import contract
from pgbundle.values.load import parse_values
from workstation import pki
from workstation.localpooler import LocalPooler

POOL = 20
VALUES = {"postgres": {"config": {"maxConnections": 50},
                       "pooler": {"enabled": True, "replicas": 1, "defaultPoolSize": POOL, "maxDbConnections": POOL}}}


@pytest.fixture(scope="module")
def pod(pods):
    return pods("pooler", VALUES)


def running_pooler(pod, values: dict):
    """PgBouncer started beside `pod` for `values`, stopped when the fixture ends."""
    pooler = LocalPooler(pod)
    pooler.prepare(parse_values(values))
    pooler.start()
    yield pooler
    pooler.stop()


@pytest.fixture(scope="module")
def pooler(pod):
    yield from running_pooler(pod, VALUES)


_targets: dict[int, dict] = {}


def through(pooler: LocalPooler, user: str, password: str | None = None, **options) -> psycopg.Connection:
    """A connection through the pooler as an application makes it (TLS verified against the CA)."""
    # Read once per pooler: the runner's connection info parses the manifests.
    target = _targets.get(id(pooler))
    if target is None:
        target = _targets[id(pooler)] = {**pooler.pod.connection_info(), **pooler.connection_info()}
    params = {"sslmode": "verify-full", "sslrootcert": target["sslrootcert"], "connect_timeout": 30,
              "password": password if password is not None else target["passwords"].get(user, "wrong")}
    params.update(options)
    return psycopg.connect(host=target["host"], port=target["port"], dbname=target["database"], user=user,
                           autocommit=True, **params)


def refused(pooler: LocalPooler, user: str, password: str | None = None, **options) -> str:
    with pytest.raises(psycopg.OperationalError) as err:
        through(pooler, user, password, **options).close()
    return str(err.value)


def superuser(pod) -> psycopg.Connection:
    # verify-ca: it reloads the server while the server presents a certificate for another name.
    return connect(pod, "postgres", dbname="appdb", sslmode="verify-ca")


# --- who gets in --------------------------------------------------------------------------


def test_application_roles_get_in_over_tls_on_both_sides(pooler, pod):
    for user in ("appuser", "backupuser"):
        with through(pooler, user) as conn:
            # The server side of this session: PgBouncer's connection to PostgreSQL, over TLS.
            row = conn.execute("SELECT current_user, ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
            assert row[0] == user and row[1] is True and row[2] in ("TLSv1.2", "TLSv1.3")


@pytest.mark.parametrize("user", ["postgres", "monitoring", "appmigrator", "appowner", "nobody"])
def test_other_roles_are_refused(pooler, user):
    assert "no such user" in refused(pooler, user)


def test_the_auth_role_cannot_log_in_through_the_pooler(pooler, pod):
    # Its right password, over TLS: the pooler's hba file rejects it before SCRAM.
    password = pod.connection_info()["passwords"][contract.POOLER_AUTH_ROLE]
    assert "login rejected" in refused(pooler, contract.POOLER_AUTH_ROLE, password)
    with through(pooler, "appuser") as conn:  # the lookup it exists for still works
        assert conn.execute("SELECT current_user").fetchone() == ("appuser",)


def test_wrong_password_is_refused(pooler):
    assert "SASL authentication failed" in refused(pooler, "appuser", "not-the-password")


def test_the_auth_role_can_do_nothing_but_look_up_application_roles(pod):
    password = pod.connection_info()["passwords"][contract.POOLER_AUTH_ROLE]
    with connect(pod, contract.POOLER_AUTH_ROLE, password=password) as conn:
        lookup = f"SELECT usename, passwd FROM {contract.POOLER_AUTH_FUNCTION}(%s)"
        (name, secret), = conn.execute(lookup, ("appuser",)).fetchall()
        assert name == "appuser" and secret.startswith("SCRAM-SHA-256$")
        for other in ("postgres", "monitoring", "appmigrator", contract.POOLER_AUTH_ROLE, "appowner"):
            assert conn.execute(lookup, (other,)).fetchall() == [], other
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT rolpassword FROM pg_authid")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM app.anything_at_all")
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        connect(pod, contract.POOLER_AUTH_ROLE, dbname="postgres", password=password)


def test_a_rotated_password_works_through_the_pooler_without_restarting_it(pooler, pod):
    pid = pooler.pid()
    old = pod.connection_info()["passwords"]["backupuser"]
    new = pki.random_password()
    secret = pod.host_path(f"{contract.SECRETS_DIR}/{contract.READ_ONLY_PASSWORD_KEY}")
    secret.write_text(new)
    # The pod's re-sync: run-init.sh sets every role's password from the Secret files.
    pod.run(["bash", str(pod.host_path(f"{contract.SCRIPTS_DIR}/run-init.sh"))], check=True, capture_output=True)
    with through(pooler, "backupuser", new) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("backupuser",)
    assert "SASL authentication failed" in refused(pooler, "backupuser", old)
    assert pooler.pid() == pid


# --- TLS ---------------------------------------------------------------------------------


def test_plain_text_clients_are_refused(pooler):
    assert "SSL required" in refused(pooler, "appuser", sslmode="disable")


def openssl(pooler: LocalPooler, *options: str) -> subprocess.CompletedProcess:
    info = pooler.connection_info()
    return subprocess.run(["openssl", "s_client", "-connect", f"{info['host']}:{info['port']}",
                           "-starttls", "postgres", *options], input="", capture_output=True, text=True, timeout=30)


def test_tls_1_1_and_cbc_sha1_are_refused_and_aead_tls_1_2_is_served(pooler):
    # A client that allows TLS 1.1 (seclevel 0): a server that allowed it would answer.
    old = openssl(pooler, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
    assert old.returncode != 0 and "alert protocol version" in old.stderr, old.stderr
    cbc = openssl(pooler, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA")
    assert cbc.returncode != 0 and "handshake failure" in cbc.stderr, cbc.stderr
    aead = openssl(pooler, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")
    assert aead.returncode == 0 and "Cipher is ECDHE-ECDSA-AES128-GCM-SHA256" in aead.stdout


def test_the_pooler_refuses_a_database_whose_certificate_does_not_match(pooler, pod):
    """The database presents a certificate of the same CA for another name: verify-full refuses it."""
    tls = pod.host_path(contract.TLS_DIR)
    cert, key = tls / contract.TLS_CERT_FILE, tls / contract.TLS_KEY_FILE
    kept = cert.read_bytes(), key.read_bytes()
    other = pki.server_certificate(pod._ca(), ["elsewhere.invalid"], [])
    try:
        cert.write_bytes(other.cert_pem)
        key.write_bytes(other.key_pem)
        with superuser(pod) as conn:
            conn.execute("SELECT pg_reload_conf()")
        time.sleep(1)
        pooler.stop()  # new server connections only
        pooler.start()
        # PgBouncer keeps the client waiting while every server login fails its TLS check.
        refused(pooler, "appuser", connect_timeout=5)
        log = pooler.log_file.read_text(errors="replace").splitlines()[-40:]
        tls_failures = [line for line in log if "elsewhere.invalid" in line or "certificate" in line.lower()]
        assert tls_failures, "\n".join(log)
    finally:
        cert.write_bytes(kept[0])
        key.write_bytes(kept[1])
        with superuser(pod) as conn:
            conn.execute("SELECT pg_reload_conf()")
        time.sleep(1)
        pooler.stop()
        pooler.start()
    with through(pooler, "appuser") as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


# --- transaction mode ----------------------------------------------------------------------


def test_prepared_statements_in_transaction_mode(pooler):
    """psycopg 3 prepares every statement (prepare_threshold=0); more clients than
    server connections, so statements meet server connections that never saw them."""
    clients = POOL + 10

    def work(n: int) -> int:
        with through(pooler, "appuser", prepare_threshold=0) as conn:
            total = 0
            for i in range(30):
                total += conn.execute("SELECT %s::int + %s::int", (n, i)).fetchone()[0]
                with conn.transaction():
                    total += conn.execute("SELECT count(*) FROM generate_series(1, %s)", (i,)).fetchone()[0]
            return total

    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(work, range(clients)))
    assert results == [30 * n + 2 * sum(range(30)) for n in range(clients)]


# --- a connection storm --------------------------------------------------------------------


def test_a_storm_of_500_clients_is_served_within_the_pool(pooler, pod):
    clients, served, errors = 500, [], []
    peak = [0]
    stop = threading.Event()

    def watch() -> None:
        with superuser(pod) as conn:
            while not stop.is_set():
                count = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = 'appuser' "
                                     "AND backend_type = 'client backend'").fetchone()[0]
                peak[0] = max(peak[0], count)
                time.sleep(0.05)

    def client(n: int) -> None:
        try:
            with through(pooler, "appuser") as conn:
                conn.execute("SELECT pg_sleep(0.05)")
                served.append(n)
        except psycopg.Error as err:
            errors.append(str(err))

    watcher = threading.Thread(target=watch)
    watcher.start()
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=clients) as pool:
            list(pool.map(client, range(clients)))
    finally:
        stop.set()
        watcher.join()
    elapsed = time.monotonic() - started
    print(f"storm: {clients} clients in {elapsed:.1f}s, peak server connections {peak[0]} (pool {POOL})")
    assert errors == []
    assert sorted(served) == list(range(clients))
    assert 1 <= peak[0] <= POOL
    assert elapsed < 120


def test_connection_info_gives_a_dsn_that_works(pooler, pod):
    info = pooler.connection_info()
    assert set(info) == {"host", "hostaddr", "port", "dsn", "DATABASE_URL"} and info["host"] == "localhost"
    # As printed, nothing added: the password and the CA are in them.
    for printed in (info["dsn"], info["DATABASE_URL"]):
        with psycopg.connect(printed, connect_timeout=30) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("appuser",)
            assert conn.info.port == info["port"]


# --- SQLAlchemy as api-forge uses it ---------------------------------------------------------


def api_engine(pooler: LocalPooler, **connect_args) -> sqlalchemy.Engine:
    """An engine configured the way api-forge configures its own: SQLAlchemy 2 over psycopg 3,
    a QueuePool checked with pre-ping and committed on return."""
    target = {**pooler.pod.connection_info(), **pooler.connection_info()}
    url = sqlalchemy.URL.create("postgresql+psycopg", username="appuser", password=target["passwords"]["appuser"],
                                host=target["host"], port=target["port"], database=target["database"])
    return sqlalchemy.create_engine(
        url, pool_pre_ping=True, pool_reset_on_return="commit", pool_size=5, max_overflow=10, pool_timeout=30,
        connect_args={"sslmode": "verify-full", "sslrootcert": target["sslrootcert"], "connect_timeout": 30,
                      "application_name": "api", **connect_args})


@pytest.mark.parametrize("prepare", ["psycopg default", "prepared off"])
def test_sqlalchemy_sessions_in_transaction_mode(pooler, pod, prepare):
    """Workers share one engine, more than the pool's server connections; each
    repeats the same statements often enough for psycopg to prepare them (after 5
    by default), and PgBouncer must route every execution to a server that has them."""
    table = "pooler_sqlalchemy_" + ("default" if prepare == "psycopg default" else "off")
    with connect(pod, "appmigrator") as conn:  # its role setting makes the owner own the table
        conn.execute(f"DROP TABLE IF EXISTS app.{table}")
        conn.execute(f"CREATE TABLE app.{table} (worker int, n int, PRIMARY KEY (worker, n))")
    engine = api_engine(pooler, **({"prepare_threshold": None} if prepare == "prepared off" else {}))
    insert = sqlalchemy.text(f"INSERT INTO app.{table} (worker, n) VALUES (:worker, :n)")
    count = sqlalchemy.text(f"SELECT count(*) FROM app.{table} WHERE worker = :worker")
    workers, rounds = POOL + 5, 20

    def work(worker: int) -> list[int]:
        seen = []
        for n in range(rounds):
            with Session(engine) as session, session.begin():
                session.execute(insert, {"worker": worker, "n": n})
                seen.append(session.execute(count, {"worker": worker}).scalar_one())
        return seen

    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(work, range(workers)))
        assert results == [list(range(1, rounds + 1))] * workers
        if prepare == "psycopg default":
            # This test's statements really were prepared, under PgBouncer's names, on the server.
            with Session(engine) as session:
                prepared = session.execute(sqlalchemy.text(
                    "SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'PGBOUNCER_%' "
                    "AND statement LIKE :text"), {"text": f"%{table}%"}).scalar_one()
            assert prepared > 0
        # The pooler restarts under the engine (a rolling update): pre-ping replaces
        # the dead pooled connections and the application carries on unrestarted.
        pooler.stop()
        pooler.start()
        with Session(engine) as session:
            assert session.execute(count, {"worker": 0}).scalar_one() == rounds
    finally:
        engine.dispose()


def test_startup_options_pgbouncer_does_not_track_are_refused(pooler):
    """api-forge also passes `options=-c jit=off`: PgBouncer cannot carry a setting the
    server does not report over to the server connections a client borrows, so it
    refuses the client; such settings belong on the role (docs/pooling.md, pool mode caveats)."""
    engine = api_engine(pooler, options="-c jit=off")
    try:
        with pytest.raises(sqlalchemy.exc.OperationalError, match="unsupported startup parameter in options: jit"):
            engine.connect().close()
    finally:
        engine.dispose()
