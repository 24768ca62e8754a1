#!/usr/bin/env bash
# Reload PostgreSQL when its mounted TLS files change, so a renewed certificate
# (cert-manager) or a rotated Secret is served without a restart.
#
# Usage: cert-watch.sh POSTMASTER_PID   (start.sh starts it once the server is up)
#
# Kubernetes updates a Secret volume by writing the new files into a fresh
# timestamped folder and swapping the `..data` symlink, so all files of one
# volume change at once, up to a minute or two after the Secret changed. This
# script compares the files' contents (not inode times), which works through
# those symlinks and on plain files (the local pod runner) alike. A change is
# acted on once it has been stable for one interval (the TLS and CA volumes are
# updated separately), then `pg_ctl reload` makes PostgreSQL (10+) read
# ssl_cert_file, ssl_key_file and ssl_ca_file again; new connections get the new
# certificate, open ones keep theirs. If the new files are unusable PostgreSQL
# logs the error and keeps serving the old ones; the next change is retried.
# It exits when the server is gone.
set -uo pipefail

: "${PGDATA:?}" "${PG_TLS_DIR:?}"
postmaster=${1:?usage: cert-watch.sh POSTMASTER_PID}
interval=${PG_CERT_WATCH_INTERVAL:-20}

log() {
    printf '{"timestamp":"%(%Y-%m-%dT%H:%M:%S%z)T","ps":"cert-watch.sh","message":"%s"}\n' -1 "$1" >&2
}

# One line that changes whenever any watched file's content changes (nothing is printed of the key).
fingerprint() {
    local file
    for file in "$PG_TLS_DIR/server.crt" "$PG_TLS_DIR/server.key" ${PG_CA_DIR:+"$PG_CA_DIR/ca.crt"}; do
        cksum < "$file" 2>/dev/null || echo "missing $file"
    done
}

sleeper=""
trap '[[ -n $sleeper ]] && kill "$sleeper" 2>/dev/null; exit 0' TERM INT

loaded=$(fingerprint)
previous=$loaded
while kill -0 "$postmaster" 2>/dev/null; do
    sleep "$interval" &
    sleeper=$!
    wait "$sleeper"
    sleeper=""
    current=$(fingerprint)
    if [[ $current != "$loaded" && $current == "$previous" ]]; then
        if pg_ctl reload -s -D "$PGDATA"; then
            log "TLS files changed in $PG_TLS_DIR${PG_CA_DIR:+ or $PG_CA_DIR}: PostgreSQL reloaded them"
            loaded=$current
        else
            log "TLS files changed but pg_ctl reload failed: retrying in ${interval}s"
        fi
    fi
    previous=$current
done
