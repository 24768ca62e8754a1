"""pg_hba.conf, derived from the values: TLS and SCRAM for every TCP client."""

from __future__ import annotations

from pgbundle.values.models import PostgresValues


def render_pg_hba(postgres: PostgresValues) -> str:
    lines = [
        "# Generated from the values by pgbundle/pgconf/hba.py. First match wins.",
        "# TYPE     DATABASE USER     ADDRESS  METHOD",
        # The start script and the probes run as the postgres OS user inside the pod.
        "local      all      postgres          peer",
        "local      all      all               scram-sha-256",
    ]
    if postgres.tls.enabled:
        lines += [
            "hostnossl  all      all      0.0.0.0/0 reject",
            "hostnossl  all      all      ::/0      reject",
        ]
        method = "scram-sha-256 clientcert=verify-ca" if postgres.ca.verify_clients else "scram-sha-256"
        lines += [f"hostssl    all      all      {cidr} {method}" for cidr in postgres.allowed_cidrs]
    else:
        lines += [f"host       all      all      {cidr} scram-sha-256" for cidr in postgres.allowed_cidrs]
    return "\n".join(lines) + "\n"
