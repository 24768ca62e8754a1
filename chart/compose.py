"""From the values to the constructs: each construct's props mapped from the
values model, and `compose`, which adds one chart per concern to an app.

Constructs never see the values: every decision that depends on them (is TLS
on, where does the CA come from, which password does a job read) is made here.
"""

from __future__ import annotations

import cdk8s
import yaml

from chart.gitops import apply_sync_waves
from chart.policy import apply_policy_annotations
from constructs.backup import Backup, BackupProps
from constructs.certificate import ClientCertificateProps, IssuerRef, ServerCertificate, ServerCertificateProps
from constructs.database import Database, DatabaseProps, HaProps, PitrPodProps, VolumeClaimProps
from constructs.exporter import ExporterSidecarProps
from constructs.metrics import (DashboardProps, Metrics, MetricsProps, PatroniScrapeProps, PrometheusRuleProps,
                                ServiceMonitorProps)
from constructs.migrate import MigrationJobProps
from constructs.namespace import Namespace, NamespaceProps
from constructs.network import NetworkIsolation, NetworkIsolationProps
from constructs.pitr_backup import PitrBackup, PitrBackupProps
from constructs.pitr_restore import PitrRestoreProps
from constructs.pitr_drill import PitrDrill, PitrDrillProps
from constructs.pooler import Pooler, PoolerExporterProps, PoolerProps
from constructs.restore_job import RestoreJobProps
from constructs.upgrade_job import UpgradeJobProps
from pgbundle import contract
from pgbundle.k8s.jobs import JobPodProps, ScratchVolume, SecretMount
from pgbundle.k8s.objects import SecretFiles
from pgbundle.k8s.podsecurity import Resources
from pgbundle.monitoring import alerts
from pgbundle.patroni import config as patroni_config
from pgbundle.patroni import restore as patroni_restore
from pgbundle.pgconf import conf, env, hba, pgbackrest, pgbouncer
from pgbundle.values.cron import longest_interval_seconds
from pgbundle.values.fields import ResourcesValues
from pgbundle.values.load import ValuesError
from pgbundle.values.models import ChartValues, PostgresValues, VolumeValues
from pgbundle.values.network import NetworkPolicyPeer


# --- where certificates come from ----------------------------------------------
# Two sources fill the TLS Secret (`postgres.tls.existingSecret`): `secrets
# generate` writes server.crt/server.key and the CA into its own Secret
# (`postgres.ca.existingSecret`); cert-manager writes tls.crt/tls.key/ca.crt into
# the TLS Secret. The items below map either onto the same files in the pod.


def uses_cert_manager(pg: PostgresValues) -> bool:
    return pg.tls.enabled and pg.tls.cert_manager.enabled


def tls_files(pg: PostgresValues) -> SecretFiles:
    """The server key and certificate, as server.key/server.crt whatever the source."""
    if uses_cert_manager(pg):
        items = {contract.CERT_MANAGER_CERT_KEY: contract.TLS_CERT_FILE, contract.CERT_MANAGER_KEY_KEY: contract.TLS_KEY_FILE}
    else:
        items = {contract.TLS_CERT_FILE: contract.TLS_CERT_FILE, contract.TLS_KEY_FILE: contract.TLS_KEY_FILE}
    return SecretFiles(secret_name=pg.tls.existing_secret, items=items)


def ca_files(pg: PostgresValues, *, optional: bool | None = None) -> SecretFiles:
    """The CA as ca.crt: from the TLS Secret when cert-manager issues it, so then
    no object refers to postgres-ca."""
    if uses_cert_manager(pg):
        return SecretFiles(secret_name=pg.tls.existing_secret, items={contract.CERT_MANAGER_CA_KEY: contract.CA_CERT_FILE},
                           optional=optional)
    return SecretFiles(secret_name=pg.ca.existing_secret, items={contract.CA_CERT_FILE: contract.CA_CERT_FILE},
                       optional=optional)


def client_tls_files(pg: PostgresValues) -> SecretFiles:
    """The backup job's client certificate as tls.crt/tls.key. cert-manager writes
    those keys (and ca.crt, not mounted: the CA volume has it); the keys
    `secrets generate` writes are the file names themselves."""
    names = (contract.CLIENT_CERT_FILE, contract.CLIENT_KEY_FILE)
    keys = (contract.CERT_MANAGER_CERT_KEY, contract.CERT_MANAGER_KEY_KEY) if uses_cert_manager(pg) else names
    return SecretFiles(secret_name=pg.backup.client_certificate.existing_secret, items=dict(zip(keys, names)))


def _issuer_ref(pg: PostgresValues) -> IssuerRef:
    ref = pg.tls.cert_manager.issuer_ref
    return IssuerRef(name=ref.name, kind=ref.kind, group=ref.group)


def server_certificate_props(namespace: str, labels: dict[str, str], pg: PostgresValues) -> ServerCertificateProps:
    cm = pg.tls.cert_manager
    return ServerCertificateProps(
        name=pg.tls.existing_secret, namespace=namespace, labels=labels, secret_name=pg.tls.existing_secret,
        dns_names=contract.server_dns_names(namespace, pg.replicas), issuer_ref=_issuer_ref(pg),
        duration=cm.duration, renew_before=cm.renew_before)


def client_certificate_props(namespace: str, labels: dict[str, str], pg: PostgresValues) -> ClientCertificateProps:
    """The backup job's client certificate: the read-only role, from the server
    certificate's issuer, into the Secret the job mounts."""
    cm = pg.tls.cert_manager
    name = pg.backup.client_certificate.existing_secret
    return ClientCertificateProps(
        name=name, namespace=namespace, labels=labels, secret_name=name, user=pg.read_only_username,
        issuer_ref=_issuer_ref(pg), duration=cm.duration, renew_before=cm.renew_before)


# --- the constructs' props -------------------------------------------------------


def resources(values: ResourcesValues) -> Resources:
    return Resources(cpu_request=values.requests.cpu, memory_request=values.requests.memory,
                     cpu_limit=values.limits.cpu, memory_limit=values.limits.memory)


def _volume(volume: VolumeValues, access_mode: str = "ReadWriteOnce") -> VolumeClaimProps:
    return VolumeClaimProps(size=volume.size, storage_class=volume.storage_class, access_mode=access_mode)


def ha_props(values: ChartValues, restore: patroni_restore.Target | None = None) -> HaProps:
    """Patroni's side of the database pods (postgres.replicas >= 2); with `restore`,
    the first member bootstraps the cluster from the pgBackRest repository to that
    target instead of initdb (pitr-restore-manifest)."""
    spec = patroni_spec(values)
    kubernetes = spec.kubernetes
    config, bootstrap = patroni_config.split_bootstrap(patroni_config.render(spec))
    if restore is not None:
        assert spec.archive is not None, "a cluster bootstraps from the repository only with postgres.pitr.enabled"
        bootstrap = patroni_restore.with_method(bootstrap, patroni_restore.bootstrap_method(
            command=spec.archive.replica_command, restore_command=spec.archive.restore_command, target=restore))
    return HaProps(
        patroni_files={file: yaml.safe_dump(document, sort_keys=False) for file, document in (
            (contract.PATRONI_CONFIG_FILE, config), (contract.PATRONI_BOOTSTRAP_FILE, bootstrap))},
        scope=spec.scope,
        scope_label=kubernetes.scope_label, role_label=kubernetes.role_label,
        primary_role=patroni_config.PRIMARY_ROLE, replica_role=patroni_config.REPLICA_ROLE,
        required_anti_affinity=values.postgres.ha.anti_affinity == "required")


def pitr_pod_props(pg: PostgresValues) -> PitrPodProps:
    """Point-in-time recovery's volume and Secrets in the database pod."""
    repos = pg.pitr.repos
    s3, volume = repos.s3, repos.volume
    keys = (contract.S3_KEY_ID_KEY, contract.S3_KEY_SECRET_KEY)
    return PitrPodProps(
        repo_claim=_volume(volume) if volume.enabled and volume.claim == "own" else None,
        s3_credentials=SecretFiles(secret_name=s3.existing_secret, items=dict(zip(keys, keys))) if s3.enabled else None,
        s3_ca=SecretFiles(secret_name=s3.ca_secret, items={contract.CA_CERT_FILE: contract.CA_CERT_FILE})
        if s3.enabled and s3.ca_secret is not None else None,
        server_environment=pgbackrest.server_environment(pg),
        # The server reads and compresses a backup's files: sized like the backup job.
        server_resources=resources(pg.backup.resources))


def config_files(pg: PostgresValues) -> dict[str, str]:
    """ConfigMap postgres-config: postgresql.conf, pg_hba.conf and, with PITR, pgbackrest.conf."""
    files = {"postgresql.conf": conf.render_postgresql_conf(pg), "pg_hba.conf": hba.render_pg_hba(pg)}
    if pg.pitr.enabled:
        files[contract.PGBACKREST_CONF] = pgbackrest.render_pgbackrest_conf(pg)
    return files


def database_props(values: ChartValues, restore: patroni_restore.Target | None = None) -> DatabaseProps:
    pg, pull = values.postgres, values.global_.image_pull_policy
    backups = pg.persistence.backups
    pdb = pg.pod_disruption_budget
    ha = ha_props(values, restore) if pg.replicas > 1 else None
    exporter = None
    if pg.metrics.enabled:
        exporter = ExporterSidecarProps(
            image=pg.metrics.image.reference, database=pg.database, secret_name=pg.secrets.existing_secret,
            resources=resources(pg.metrics.resources), image_pull_policy=pull)
    return DatabaseProps(
        # Patroni and pgBackRest are in the project's image (image/Dockerfile), not the official one.
        namespace=values.global_.namespace,
        image=pg.ha.image.reference if pg.ha.image is not None and (ha is not None or pg.pitr.enabled)
        else pg.image.reference,
        version=pg.image.tag,
        resources=resources(pg.resources),
        config_files=config_files(pg),
        environment=env.pod_environment(pg), shm_size_bytes=conf.shm_size_bytes(pg),
        data=_volume(pg.persistence.data), secrets=SecretFiles(secret_name=pg.secrets.existing_secret),
        # The CA is only required when client certificates are verified: by
        # PostgreSQL, by the other members (HA) or by pgBackRest's server (PITR).
        ca=ca_files(pg, optional=not (pg.ca.verify_clients or ha is not None or pg.pitr.enabled)),
        tls=tls_files(pg) if pg.tls.enabled else None,
        backups=_volume(backups, backups.access_mode) if backups.enabled else None,
        # With Patroni, one member at a time: a drain never takes the primary and its synchronous standby together.
        pdb_min_available=pdb.min_available if pdb.enabled and ha is None else None,
        pdb_max_unavailable=1 if pdb.enabled and ha is not None else None,
        pitr=pitr_pod_props(pg) if pg.pitr.enabled else None,
        exporter=exporter, replicas=pg.replicas, image_pull_policy=pull, ha=ha)


def patroni_spec(values: ChartValues) -> patroni_config.PatroniSpec:
    """The Patroni inputs for these values, with the pod's paths."""
    pg = values.postgres
    ha = pg.ha
    dcs = patroni_config.DcsSettings(
        ttl=ha.ttl, loop_wait=ha.loop_wait, retry_timeout=ha.retry_timeout,
        maximum_lag_on_failover=ha.maximum_lag_on_failover, primary_start_timeout=ha.primary_start_timeout,
        synchronous_mode=ha.synchronous_mode, synchronous_mode_strict=ha.synchronous_mode_strict)
    if not pg.tls.enabled:
        raise ValuesError("postgres.tls.enabled: false cannot run HA: members replicate over TLS only")
    users = patroni_config.Users()
    parameters = {**conf.postgresql_settings(pg), **pg.config.parameters}
    pg_hba = [line for line in hba.render_pg_hba(pg).splitlines() if line and not line.startswith("#")]
    pg_hba += patroni_config.replication_hba(users.replication, pg.allowed_cidrs)
    log_dir = f"{contract.DATA_MOUNT}/log" if pg.logging.to_file else f"{contract.RUN_DIR}/log"
    # Patroni puts these labels on the ConfigMaps it creates: not the instance
    # label, which Argo CD tracks its own objects by (it would prune Patroni's).
    patroni_labels = {k: v for k, v in contract.selector_labels(contract.DATABASE_COMPONENT).items()
                      if k != "app.kubernetes.io/instance"}
    return patroni_config.PatroniSpec(
        scope=contract.PATRONI_SCOPE,
        port=contract.PORT,
        api_port=contract.PATRONI_API_PORT,
        parameters=parameters,
        pg_hba=tuple(pg_hba),
        tls=patroni_config.TlsFiles(
            cert=f"{contract.TLS_DIR}/{contract.TLS_CERT_FILE}", key=f"{contract.TLS_DIR}/{contract.TLS_KEY_FILE}",
            ca=f"{contract.CA_DIR}/{contract.CA_CERT_FILE}", verify_clients=pg.ca.verify_clients),
        paths=patroni_config.Paths(
            data_dir=contract.PGDATA, bin_dir=f"/usr/lib/postgresql/{pg.image.major_version}/bin",
            run_dir=contract.RUN_DIR, log_dir=log_dir, hook=f"{contract.SCRIPTS_DIR}/patroni-hook.sh"),
        kubernetes=patroni_config.KubernetesDcs(namespace=values.global_.namespace, labels=patroni_labels),
        users=users,
        dcs=dcs,
        archive=patroni_config.Archive(
            restore_command=pgbackrest.ARCHIVE_GET_COMMAND,
            replica_command=f"{contract.SCRIPTS_DIR}/pitr-replica.sh") if pg.pitr.enabled else None,
    )


def job_pod_props(values: ChartValues, *, container: str, script: str, environment: dict[str, str],
                  password_key: str, backups_read_only: bool) -> JobPodProps:
    pg = values.postgres
    return JobPodProps(
        image=pg.image.reference, container=container, script=script, environment=environment,
        password=SecretFiles(secret_name=pg.secrets.existing_secret, items={password_key: password_key}),
        resources=resources(pg.backup.resources), backups_read_only=backups_read_only,
        ca=ca_files(pg) if pg.tls.enabled else None,
        client_tls=client_tls_files(pg) if pg.tls.enabled and pg.ca.verify_clients else None,
        near_database=pg.persistence.backups.access_mode == "ReadWriteOnce",
        image_pull_policy=values.global_.image_pull_policy)


def backup_props(values: ChartValues) -> BackupProps:
    pg, namespace = values.postgres, values.global_.namespace
    certificate = None
    if uses_cert_manager(pg) and pg.ca.verify_clients:
        certificate = client_certificate_props(
            namespace, contract.object_labels(contract.BACKUP_COMPONENT, pg.image.tag), pg)
    return BackupProps(
        namespace=namespace, version=pg.image.tag, schedule=pg.backup.schedule,
        timeout_minutes=pg.backup.timeout_minutes, time_zone=pg.backup.time_zone, suspend=pg.backup.suspend,
        client_certificate=certificate,
        pod=job_pod_props(values, container=contract.BACKUP_CONTAINER, script="backup.sh",
                          environment=env.backup_environment(pg), password_key=contract.READ_ONLY_PASSWORD_KEY,
                          backups_read_only=False))


def pitr_backup_schedules(pg: PostgresValues) -> tuple[tuple[str, int], ...]:
    """Each PITR backup CronJob with the longest time between two of its runs (none without PITR)."""
    if not pg.pitr.enabled:
        return ()
    schedules = pg.pitr.schedules
    found = [(contract.PITR_FULL_CRONJOB, longest_interval_seconds(schedules.full))]
    if schedules.differential is not None:
        found.append((contract.PITR_DIFF_CRONJOB, longest_interval_seconds(schedules.differential)))
    return tuple(found)


def _pitr_job_pod(values: ChartValues, *, container: str, script: str, args: list[str], environment: dict[str, str],
                  repo_read_only: bool, near_database: bool, claims: dict[str, str] | None = None,
                  tls: bool = False, scratch: ScratchVolume | None = None,
                  service_account: str = contract.PITR_BACKUP_SERVICE_ACCOUNT) -> JobPodProps:
    """A PITR job's pod: the PITR image, the repositories mounted as the database pod
    has them, their Secrets (passphrase, S3 keys and CA); with `tls`, the CA and the
    client certificate that reach the database pod's pgBackRest server."""
    pg = values.postgres
    pitr = pg.pitr
    volume = pitr.repos.volume
    assert pg.ha.image is not None  # the values require it with PITR
    pod_props = pitr_pod_props(pg)
    secret_mounts = [SecretMount(name=name, path=path, files=files) for name, path, files in (
        ("pitr-s3", contract.PITR_S3_SECRET_DIR, pod_props.s3_credentials),
        ("pitr-s3-ca", contract.PITR_S3_CA_DIR, pod_props.s3_ca)) if files is not None]
    own = {contract.PITR_REPO_DIR: contract.PITR_CLAIM} if volume.enabled and volume.claim == "own" else {}
    return JobPodProps(
        image=pg.ha.image.reference, container=container, script=script, args=args, environment=environment,
        password=SecretFiles(secret_name=pg.secrets.existing_secret,
                             items={contract.CIPHER_PASS_KEY: contract.CIPHER_PASS_KEY}) if pitr.cipher else None,
        resources=resources(pg.backup.resources), backups=volume.enabled and volume.claim == "backups",
        backups_read_only=repo_read_only, config=True, claims={**({} if repo_read_only else own), **(claims or {})},
        read_only_claims=own if repo_read_only else {},
        secret_mounts=secret_mounts, ca=ca_files(pg) if tls else None, client_tls=client_tls_files(pg) if tls else None,
        scratch=scratch, near_database=near_database, image_pull_policy=values.global_.image_pull_policy,
        service_account=service_account)


def _repo_volume_near_database(pg: PostgresValues) -> bool:
    """A ReadWriteOnce repository volume attaches only on the running database pod's node."""
    volume = pg.pitr.repos.volume
    return volume.enabled and (volume.claim == "own" or pg.persistence.backups.access_mode == "ReadWriteOnce")


def pitr_backup_props(values: ChartValues) -> PitrBackupProps:
    """The PITR backup CronJobs: pitr-backup.sh in the PITR image, the repositories
    mounted as the database pod has them, the database reached over TLS only."""
    pg, namespace = values.postgres, values.global_.namespace
    pitr = pg.pitr
    # The pg_dump job's Certificate issues the same Secret when it exists.
    certificate = None
    if uses_cert_manager(pg) and not (pg.backup.enabled and pg.ca.verify_clients):
        certificate = client_certificate_props(namespace, contract.object_labels(contract.PITR_BACKUP_COMPONENT,
                                                                                 pg.image.tag), pg)

    def pod(kind: str) -> JobPodProps:
        return _pitr_job_pod(values, container=contract.PITR_BACKUP_CONTAINER, script="pitr-backup.sh", args=[kind],
                             environment=pgbackrest.backup_job_environment(pg, namespace), repo_read_only=False,
                             near_database=_repo_volume_near_database(pg), tls=True)

    schedules = pitr.schedules
    return PitrBackupProps(
        namespace=namespace, version=pg.image.tag, full_schedule=schedules.full, time_zone=schedules.time_zone,
        timeout_minutes=pg.backup.timeout_minutes, full_pod=pod("full"),
        differential_schedule=schedules.differential,
        differential_pod=pod(schedules.differential_type) if schedules.differential is not None else None,
        client_certificate=certificate)


def pitr_restore_props(values: ChartValues, *, kind: pgbackrest.RestoreType, target: str | None, label: str | None,
                       slug: str, in_place: bool) -> PitrRestoreProps:
    """The printed PITR restore: pitr-restore.sh into a new PVC sized and classed like
    the data volume (the database keeps running meanwhile), or into the stopped
    database's own volume; the repositories read-only."""
    pg = values.postgres
    claim = contract.FIRST_DATA_CLAIM if in_place else contract.PITR_RESTORE_CLAIM_PREFIX + slug
    environment = pgbackrest.restore_job_environment(pg, kind=kind, target=target, label=label, in_place=in_place)
    return PitrRestoreProps(
        namespace=values.global_.namespace, version=pg.image.tag, job_name=contract.PITR_RESTORE_JOB_PREFIX + slug,
        claim_name=claim, new_claim=None if in_place else _volume(pg.persistence.data),
        pod=_pitr_job_pod(values, container=contract.PITR_RESTORE_CONTAINER, script="pitr-restore.sh", args=[],
                          environment=environment, repo_read_only=True,
                          # In place, the database pod is gone: no node to be near.
                          near_database=not in_place and _repo_volume_near_database(pg),
                          claims={contract.DATA_MOUNT: claim}))


def pitr_drill_props(values: ChartValues) -> PitrDrillProps:
    """The restore drill's CronJob: pitr-drill.sh in the PITR image, the repositories
    mounted read-only, a scratch volume as large as the data volume unless told,
    no database connection (no CA, no client certificate)."""
    pg, namespace = values.postgres, values.global_.namespace
    pitr = pg.pitr
    drill = pitr.drill
    pod = _pitr_job_pod(values, container=contract.PITR_DRILL_CONTAINER, script=contract.PITR_DRILL_SCRIPT, args=[],
                        environment=pgbackrest.drill_environment(pg), repo_read_only=True,
                        near_database=_repo_volume_near_database(pg),
                        scratch=ScratchVolume(path=contract.PITR_DRILL_DIR, size=drill.size or pg.persistence.data.size,
                                              storage_class=drill.storage_class),
                        service_account=contract.PITR_DRILL_SERVICE_ACCOUNT)
    return PitrDrillProps(namespace=namespace, version=pg.image.tag, schedule=drill.schedule,
                          time_zone=pitr.schedules.time_zone, timeout_minutes=pg.backup.timeout_minutes, pod=pod)


def restore_job_props(values: ChartValues, *, backup: str, databases: list[str],
                      jobs: int = contract.DEFAULT_RESTORE_JOBS) -> RestoreJobProps:
    pg = values.postgres
    environment = env.restore_environment(pg, backup=backup, databases=databases, jobs=jobs)
    return RestoreJobProps(
        namespace=values.global_.namespace, version=pg.image.tag, backup=backup,
        pod=job_pod_props(values, container=contract.RESTORE_CONTAINER, script="restore.sh", environment=environment,
                          password_key=contract.SUPERUSER_PASSWORD_KEY, backups_read_only=True))


def upgrade_job_props(values: ChartValues, *, new_image: str, new_tag: str, new_major: int) -> UpgradeJobProps:
    """The upgrade Job: the values' image is the one the data was written by; it
    runs with the database's own resources, on pod 0's data volume."""
    pg = values.postgres
    return UpgradeJobProps(
        namespace=values.global_.namespace, version=new_tag, old_image=pg.image.reference,
        old_major=int(pg.image.major_version), new_image=new_image, new_major=new_major,
        claim=contract.FIRST_DATA_CLAIM, resources=resources(pg.resources),
        image_pull_policy=values.global_.image_pull_policy,
        pitr_upgrade_marker=contract.PITR_UPGRADE_MARKER if pg.pitr.enabled else None)


def migration_job_props(values: ChartValues, *, name: str, image: str, command: list[str], uid: int,
                        argo_presync: bool = False, client_secret: str | None = None,
                        annotations: dict[str, str] | None = None,
                        driver: str = env.DEFAULT_DRIVER) -> MigrationJobProps:
    """The schema-migration Job: the application's image as the migration role.
    `client_secret` is the Secret with its client certificate (tls.crt, tls.key),
    mounted only when the server verifies clients; `driver` picks DATABASE_URL's scheme."""
    pg = values.postgres
    client_tls = None
    if pg.tls.enabled and pg.ca.verify_clients and client_secret is not None:
        names = (contract.CLIENT_CERT_FILE, contract.CLIENT_KEY_FILE)
        client_tls = SecretFiles(secret_name=client_secret, items=dict(zip(names, names)))
    return MigrationJobProps(
        namespace=values.global_.namespace, name=name, version=pg.image.tag, image=image, command=command,
        environment=env.migration_environment(pg, driver), password_secret=pg.secrets.existing_secret,
        password_key=contract.MIGRATOR_PASSWORD_KEY, ca=ca_files(pg) if pg.tls.enabled else None,
        client_tls=client_tls, uid=uid, argo_presync=argo_presync, annotations=annotations or {})


def pooler_tls_files(pg: PostgresValues) -> SecretFiles:
    """The pooler's certificate and key: tls.crt/tls.key from either source
    (`secrets generate` writes the keys cert-manager does)."""
    names = (contract.CLIENT_CERT_FILE, contract.CLIENT_KEY_FILE)
    return SecretFiles(secret_name=pg.pooler.tls.existing_secret, items=dict(zip(names, names)))


def pooler_certificate_props(namespace: str, labels: dict[str, str], pg: PostgresValues) -> ServerCertificateProps:
    """The pooler's certificate from the server certificate's issuer: its Service's
    names, and a client certificate too (the database may verify clients)."""
    cm, name = pg.tls.cert_manager, pg.pooler.tls.existing_secret
    return ServerCertificateProps(
        name=name, namespace=namespace, labels=labels, secret_name=name,
        dns_names=contract.pooler_dns_names(namespace, read_only=pg.pooler.read_only.enabled),
        issuer_ref=_issuer_ref(pg),
        duration=cm.duration, renew_before=cm.renew_before, client_auth=True)


def pooler_props(values: ChartValues, *, read_only: bool = False) -> PoolerProps:
    """The pooler; with `read_only`, the read-only one: the same settings, its own
    name, replicas and pods, and `postgres-replicas` as its server."""
    pg, namespace = values.postgres, values.global_.namespace
    pooler = pg.pooler
    site = pgbouncer.pod_site(namespace, read_only=read_only)
    metrics = pgbouncer.metrics_on(pg)
    keys = [contract.POOLER_PASSWORD_KEY, *([contract.POOLER_STATS_PASSWORD_KEY] if metrics else [])]
    exporter = PoolerExporterProps(image=pooler.exporter.image.reference,
                                   resources=resources(pooler.exporter.resources)) if metrics else None
    return PoolerProps(
        namespace=namespace, image=pooler.image.reference, version=pooler.image.tag,
        replicas=pooler.read_only.replicas if read_only else pooler.replicas,
        name=contract.POOLER_RO if read_only else contract.POOLER,
        component=contract.POOLER_RO_COMPONENT if read_only else contract.POOLER_COMPONENT,
        config=pgbouncer.render_pgbouncer_ini(pg, site), hba=pgbouncer.render_pooler_hba(metrics=metrics),
        environment=pgbouncer.pooler_environment(site, metrics=metrics),
        resources=resources(pooler.resources),
        password=SecretFiles(secret_name=pg.secrets.existing_secret, items={key: key for key in keys}),
        tls=pooler_tls_files(pg), ca=ca_files(pg), exporter=exporter,
        pdb_min_available=pooler.pod_disruption_budget.min_available if pooler.pod_disruption_budget.enabled else None,
        required_anti_affinity=pooler.anti_affinity == "required", image_pull_policy=values.global_.image_pull_policy)


def _peer(peer: NetworkPolicyPeer) -> dict[str, object]:
    return peer.model_dump(by_alias=False, exclude_defaults=True)


def network_props(values: ChartValues, database: Database) -> NetworkIsolationProps:
    pg = values.postgres
    policy = pg.network_policy
    return NetworkIsolationProps(
        namespace=values.global_.namespace, labels=database.labels, database_selector=database.selector,
        replicas=pg.replicas, clients=[[_peer(p) for p in rule.from_] for rule in policy.ingress],
        dns=_peer(policy.dns), scrapers=[_peer(p) for p in pg.metrics.scrapers] if pg.metrics.enabled else [],
        patroni_api_port=contract.PATRONI_API_PORT if pg.replicas > 1 else None,
        api_server_cidrs=list(pg.ha.api_server_cidrs) if pg.replicas > 1 else [],
        api_server_port=pg.ha.api_server_port, pooler=pg.pooler.enabled,
        pooler_read_only=pg.pooler.enabled and pg.pooler.read_only.enabled,
        object_store_cidrs=list(pg.pitr.repos.s3.egress_cidrs) if pg.pitr.enabled and pg.pitr.repos.s3.enabled else [],
        object_store_port=pg.pitr.repos.s3.port, pitr_backup=pg.pitr.enabled,
        pitr_drill=pg.pitr.enabled and pg.pitr.drill.enabled)


def metrics_props(values: ChartValues, database: Database) -> MetricsProps:
    pg, namespace = values.postgres, values.global_.namespace
    metrics = pg.metrics
    sm, rule, board = metrics.service_monitor, metrics.prometheus_rule, metrics.dashboard
    rule_props = dashboard_props = None
    drill = pg.pitr.enabled and pg.pitr.drill.enabled
    read_only_pooler = pg.pooler.enabled and pg.pooler.read_only.enabled
    if rule.enabled:
        scope = alerts.AlertScope(
            namespace=namespace, replicas=pg.replicas, backups_volume=pg.persistence.backups.enabled,
            backup_interval_seconds=longest_interval_seconds(pg.backup.schedule),
            synchronous_mode=pg.replicas > 1 and pg.ha.synchronous_mode, wal_archiving=pg.pitr.enabled,
            archive_timeout_seconds=pg.pitr.archive_timeout_seconds,
            pitr_backups=pitr_backup_schedules(pg), pooler=pg.pooler.enabled, pooler_read_only=read_only_pooler,
            pitr_drill_interval_seconds=longest_interval_seconds(pg.pitr.drill.schedule) if drill else None)
        rule_props = PrometheusRuleProps(groups=alerts.rule_groups(scope, rule.runbook_base_url), labels=rule.labels)
    patroni = None
    if pg.replicas > 1:
        ca = ca_files(pg)
        (ca_key,) = [key for key, path in ca.items.items() if path == contract.CA_CERT_FILE]
        patroni = PatroniScrapeProps(ca_secret=ca.secret_name, ca_key=ca_key,
                                     server_name=f"{contract.HEADLESS_SERVICE}.{namespace}.svc")
    if board.enabled:
        from pgbundle.monitoring import dashboard  # the Grafana SDK costs a tenth of a second to load

        dashboard_props = DashboardProps(json_model=dashboard.dashboard_json(namespace, ha=pg.replicas > 1,
                                                                          pooler=pg.pooler.enabled,
                                                                          pooler_read_only=read_only_pooler,
                                                                          pitr=pg.pitr.enabled, drill=drill),
                                         namespace=board.namespace,
                                         labels=board.labels)
    return MetricsProps(
        namespace=namespace, database_selector=database.selector, version=metrics.image.tag,
        service_monitor=ServiceMonitorProps(interval=sm.interval, scrape_timeout=sm.scrape_timeout, labels=sm.labels)
        if sm.enabled else None,
        prometheus_rule=rule_props, dashboard=dashboard_props, patroni=patroni,
        pooler_selector=contract.selector_labels(contract.POOLER_COMPONENT) if pg.pooler.enabled else None,
        pooler_ro_selector=contract.selector_labels(contract.POOLER_RO_COMPONENT) if read_only_pooler else None)


# --- composition -----------------------------------------------------------------


def compose(app: cdk8s.App, values: ChartValues, *, cluster_restore: patroni_restore.Target | None = None) -> None:
    """Add one chart per concern; kubectl applies dist/ in file-name order, so
    the Namespace file sorts first. `cluster_restore`: a Patroni cluster bootstraps
    from the pgBackRest repository to that target (printed, never in dist/)."""
    pg = values.postgres
    namespace = values.global_.namespace
    if values.global_.create_namespace:
        Namespace(cdk8s.Chart(app, contract.NAMESPACE_CHART, disable_resource_name_hashes=True), "namespace",
                  props=NamespaceProps(name=namespace))
    chart = cdk8s.Chart(app, contract.DATABASE_CHART, disable_resource_name_hashes=True)
    database = Database(chart, "database", props=database_props(values, cluster_restore))
    if uses_cert_manager(pg):
        ServerCertificate(chart, "certificate", props=server_certificate_props(namespace, database.labels, pg))
    if pg.network_policy.enabled:
        NetworkIsolation(chart, "network", props=network_props(values, database))
    if pg.backup.enabled:
        # Applied after the database: the job needs its Service, PVC and scripts.
        Backup(cdk8s.Chart(app, contract.BACKUP_CHART, disable_resource_name_hashes=True), "backup", props=backup_props(values))
    if pg.pooler.enabled:
        # After the database: PgBouncer connects to its Service.
        pooler_chart = cdk8s.Chart(app, contract.POOLER_CHART, disable_resource_name_hashes=True)
        pooler = Pooler(pooler_chart, "pooler", props=pooler_props(values))
        if pg.pooler.read_only.enabled:
            Pooler(pooler_chart, "pooler-ro", props=pooler_props(values, read_only=True))
        if uses_cert_manager(pg):
            ServerCertificate(pooler_chart, "certificate", props=pooler_certificate_props(namespace, pooler.labels, pg))
    if pg.pitr.enabled:
        pitr_chart = cdk8s.Chart(app, contract.PITR_BACKUP_CHART, disable_resource_name_hashes=True)
        PitrBackup(pitr_chart, "pitr-backup", props=pitr_backup_props(values))
        if pg.pitr.drill.enabled:
            PitrDrill(pitr_chart, "pitr-drill", props=pitr_drill_props(values))
    if pg.metrics.enabled:
        # Its own file: the ServiceMonitor and PrometheusRule need the Prometheus
        # Operator's CRDs, so an operator can see and skip them at a glance.
        Metrics(cdk8s.Chart(app, contract.METRICS_CHART, disable_resource_name_hashes=True), "metrics",
                props=metrics_props(values, database))
    # Cross-cutting annotations, last, so they cover every object of every chart.
    apply_sync_waves(app)
    apply_policy_annotations(app)
