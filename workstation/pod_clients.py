"""How clients reach the local pod: the pod's CA and the client certificates it
signs, and the connection details `local up` prints (host, port, passwords, a
libpq connection string per role, DATABASE_URL)."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

from pgbundle import contract
from pgbundle.pgconf.env import PORT_ENV
from workstation import pki
from workstation.pod_state import HOST, HOST_NAME, SUPERUSER, PodState, write_private


class PodClients(PodState):
    """The pod's CA, client certificates and connection details."""

    # --- certificates --------------------------------------------------------

    def _ca(self) -> pki.KeyPair:
        key, cert = self.pki / "ca.key", self.pki / "ca.crt"
        if not key.exists():
            self.pki.mkdir(mode=0o700, exist_ok=True)
            pair = pki.new_ca("postgres-local-ca")
            write_private(key, pair.key_pem)
            cert.write_bytes(pair.cert_pem)
            cert.chmod(0o644)
        return pki.KeyPair(key.read_bytes(), cert.read_bytes())

    def client_certificate(self, user: str) -> tuple[Path, Path]:
        """Files (certificate, key) of a client certificate for `user`, signed by the pod's CA."""
        pair = pki.client_certificate(self._ca(), user)
        cert, key = self.pki / f"{user}.crt", self.pki / f"{user}.key"
        cert.write_bytes(pair.cert_pem)
        write_private(key, pair.key_pem)  # libpq refuses a key others can read
        return cert, key

    @property
    def clients_dir(self) -> Path:
        return self.pki / "clients"

    def login_certificate(self, role: str) -> tuple[Path, Path]:
        """(certificate, key) of `role`'s client certificate for users of the pod,
        issued from the pod's CA when missing."""
        cert, key = self.clients_dir / f"{role}.crt", self.clients_dir / f"{role}.key"
        if not (cert.exists() and key.exists()):
            self.clients_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            pair = pki.client_certificate(self._ca(), role)
            write_private(key, pair.key_pem)  # libpq refuses a key others can read
            cert.write_bytes(pair.cert_pem)
        return cert, key

    # --- connection details --------------------------------------------------

    def connection_info(self, port: int | None = None) -> dict:
        """How to reach the database (at `port`, default the pod's): host (a name the
        server certificate holds) and hostaddr, port, database, CA file, every login
        role's password, with ca.verifyClients its client certificate, and per role a
        ready libpq connection string (`dsn`); DATABASE_URL is the application role's."""
        env = self.environment()
        secrets_dir = Path(env["PG_SECRETS_DIR"])
        keys = {SUPERUSER: contract.SUPERUSER_PASSWORD_KEY}
        for var, key in contract.ROLE_PASSWORD_KEYS.items():
            if var not in contract.OPTIONAL_ROLES or env[contract.OPTIONAL_ROLES[var]] == "on":
                keys[env[var]] = key
        passwords = {role: (secrets_dir / key).read_text().strip() for role, key in keys.items()}
        info = {
            "host": HOST_NAME,
            "hostaddr": HOST,
            "port": port or int(env[PORT_ENV]),
            "database": env["PG_DATABASE"],
            "sslrootcert": str(self.sslrootcert),
            "passwords": passwords,
        }
        # The owner is NOLOGIN (init.sql): the migration role acts as it.
        logins = [role for role in passwords if role != env["PG_OWNER_USER"]]
        tls = {"sslmode": "verify-full", "sslrootcert": info["sslrootcert"]} if "PG_TLS_DIR" in env \
            else {"sslmode": "disable"}
        per_role = {role: dict(tls) for role in logins}
        if "PG_CA_DIR" in env and (self.pki / "ca.key").exists():
            certificates = {}
            for role in logins:
                cert, key = self.login_certificate(role)
                certificates[role] = {"sslcert": str(cert), "sslkey": str(key)}
                per_role[role].update(certificates[role])
            info["client_certificates"] = certificates
        # The Temporal role may connect only to Temporal's databases; every other role to the application's.
        databases = {env["PG_TEMPORAL_USER"]: contract.TEMPORAL_DATABASES[0]}
        info["dsn"] = {role: _dsn({"host": HOST_NAME, "hostaddr": HOST, "port": str(info["port"]),
                                   "dbname": databases.get(role, info["database"]), "user": role,
                                   "password": passwords[role], **per_role[role]})
                       for role in logins}
        app = env["PG_APP_USER"]
        info["DATABASE_URL"] = (f"postgresql://{urllib.parse.quote(app, safe='')}:"
                                f"{urllib.parse.quote(passwords[app], safe='')}@{HOST_NAME}:{info['port']}/"
                                f"{urllib.parse.quote(info['database'], safe='')}?"
                                + urllib.parse.urlencode({"hostaddr": HOST, **per_role[app]}))
        return info


def _dsn(parameters: dict[str, str]) -> str:
    """A libpq keyword/value connection string; a value with a space, quote or
    backslash (a state path may hold one) is quoted as libpq reads it."""
    def quote(value: str) -> str:
        if value and not any(c in value for c in " '\\"):
            return value
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return " ".join(f"{key}={quote(value)}" for key, value in parameters.items())
