#!/usr/bin/env bash
# Sourced by start.sh and patroni.sh before the server starts. A data directory
# written by another PostgreSQL major cannot be opened ("database files are
# incompatible with server"): the pod would crash-loop and the reason would
# scroll away. Instead the container exits with one line naming both majors and
# the procedure, also written to the termination message file, which the kubelet
# keeps in the container's last state (`kubectl describe pod` shows it) while
# the restart back-off grows to its five-minute ceiling.
set -euo pipefail

# data_major_mismatch: prints the refusal and returns 1 when $PGDATA holds data
# of a major other than the `postgres` binary's; returns 0 otherwise (no data yet too).
data_major_mismatch() {
    local data_major server_major version message
    [[ -s "$PGDATA/PG_VERSION" ]] || return 0
    data_major=$(<"$PGDATA/PG_VERSION")
    version=$(postgres --version)  # "postgres (PostgreSQL) 18.1 (Debian ...)"
    version=${version#*) }
    server_major=${version%%.*}
    [[ $data_major == "$server_major" ]] && return 0
    message="the data in $PGDATA is PostgreSQL $data_major but this image runs PostgreSQL $server_major:"
    message+=" set the image back to $data_major, or upgrade the data first (README.md#major-version-upgrades)"
    # The kubelet creates the file (world-writable); a local run has none.
    printf '%s\n' "$message" 2>/dev/null >"${PG_TERMINATION_LOG:-/dev/termination-log}" || true
    printf '%s' "$message"
    return 1
}
