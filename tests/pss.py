"""A checker of the Pod Security Standards `restricted` profile (which includes
every `baseline` control), following
https://kubernetes.io/docs/concepts/security/pod-security-standards/ as of
Kubernetes 1.35.

`violations(pod)` takes a pod template (or Pod) and returns one `Violation`
per broken control. Windows-only exemptions are not modelled: our pods are
Linux pods, so every control applies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

# Restricted narrows baseline's list of addable capabilities to this one.
RESTRICTED_CAPABILITIES = {"NET_BIND_SERVICE"}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
VOLUME_TYPES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
SECCOMP_TYPES = {"RuntimeDefault", "Localhost"}
APPARMOR_TYPES = {"RuntimeDefault", "Localhost"}
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"


@dataclass(frozen=True)
class Violation:
    control: str
    detail: str


def _containers(spec: dict) -> Iterator[dict]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(key) or []


def _sc(obj: dict) -> dict:
    return obj.get("securityContext") or {}


def host_process(meta: dict, spec: dict) -> Iterator[str]:
    objs = [("pod", _sc(spec))] + [(c["name"], _sc(c)) for c in _containers(spec)]
    for name, sc in objs:
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            yield f"{name}: windowsOptions.hostProcess is true"


def host_namespaces(meta: dict, spec: dict) -> Iterator[str]:
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            yield f"{field} is true"


def privileged(meta: dict, spec: dict) -> Iterator[str]:
    for c in _containers(spec):
        if _sc(c).get("privileged"):
            yield f"{c['name']}: privileged is true"


def capabilities(meta: dict, spec: dict) -> Iterator[str]:
    for c in _containers(spec):
        caps = _sc(c).get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            yield f"{c['name']}: capabilities.drop does not contain ALL"
        for cap in caps.get("add") or []:
            if cap not in RESTRICTED_CAPABILITIES:
                yield f"{c['name']}: adds capability {cap}; only NET_BIND_SERVICE may be added"


def host_path_volumes(meta: dict, spec: dict) -> Iterator[str]:
    for v in spec.get("volumes") or []:
        if "hostPath" in v:
            yield f"volume {v['name']} is a hostPath"


def volume_types(meta: dict, spec: dict) -> Iterator[str]:
    for v in spec.get("volumes") or []:
        kinds = set(v) - {"name"}
        for kind in kinds - VOLUME_TYPES:
            if kind != "hostPath":  # reported by host_path_volumes (a baseline control)
                yield f"volume {v['name']} has type {kind}"


def host_ports(meta: dict, spec: dict) -> Iterator[str]:
    for c in _containers(spec):
        for p in c.get("ports") or []:
            if p.get("hostPort"):
                yield f"{c['name']}: hostPort {p['hostPort']}"


def apparmor(meta: dict, spec: dict) -> Iterator[str]:
    for key, value in ((meta or {}).get("annotations") or {}).items():
        if key.startswith(APPARMOR_ANNOTATION) and value != "runtime/default" and not value.startswith("localhost/"):
            yield f"annotation {key}={value}"
    objs = [("pod", _sc(spec))] + [(c["name"], _sc(c)) for c in _containers(spec)]
    for name, sc in objs:
        profile = sc.get("appArmorProfile")
        if profile is not None and profile.get("type") not in APPARMOR_TYPES:
            yield f"{name}: appArmorProfile.type {profile.get('type')}"


def selinux(meta: dict, spec: dict) -> Iterator[str]:
    objs = [("pod", _sc(spec))] + [(c["name"], _sc(c)) for c in _containers(spec)]
    for name, sc in objs:
        options = sc.get("seLinuxOptions") or {}
        if options.get("type", "") not in SELINUX_TYPES:
            yield f"{name}: seLinuxOptions.type {options['type']}"
        for field in ("user", "role"):
            if options.get(field):
                yield f"{name}: seLinuxOptions.{field} is set"


def proc_mount(meta: dict, spec: dict) -> Iterator[str]:
    for c in _containers(spec):
        if _sc(c).get("procMount", "Default") != "Default":
            yield f"{c['name']}: procMount {_sc(c)['procMount']}"


def seccomp(meta: dict, spec: dict) -> Iterator[str]:
    """Restricted: RuntimeDefault or Localhost, on the pod or on every container;
    a container may not override it with anything else (baseline forbids Unconfined)."""
    pod_type = (_sc(spec).get("seccompProfile") or {}).get("type")
    if pod_type is not None and pod_type not in SECCOMP_TYPES:
        yield f"pod: seccompProfile.type {pod_type}"
    for c in _containers(spec):
        own = (_sc(c).get("seccompProfile") or {}).get("type")
        effective = own if own is not None else pod_type
        if effective not in SECCOMP_TYPES:
            yield f"{c['name']}: seccompProfile.type {effective}"


def sysctls(meta: dict, spec: dict) -> Iterator[str]:
    for s in _sc(spec).get("sysctls") or []:
        if s["name"] not in SAFE_SYSCTLS:
            yield f"sysctl {s['name']} is not in the safe set"


def run_as_non_root(meta: dict, spec: dict) -> Iterator[str]:
    pod = _sc(spec).get("runAsNonRoot")
    for c in _containers(spec):
        own = _sc(c).get("runAsNonRoot")
        if own is False or (own is None and pod is not True):
            yield f"{c['name']}: runAsNonRoot is not true"


def run_as_user(meta: dict, spec: dict) -> Iterator[str]:
    if _sc(spec).get("runAsUser") == 0:
        yield "pod: runAsUser is 0"
    for c in _containers(spec):
        if _sc(c).get("runAsUser") == 0:
            yield f"{c['name']}: runAsUser is 0"


def privilege_escalation(meta: dict, spec: dict) -> Iterator[str]:
    for c in _containers(spec):
        if _sc(c).get("allowPrivilegeEscalation") is not False:
            yield f"{c['name']}: allowPrivilegeEscalation is not false"


Control = Callable[[dict, dict], Iterator[str]]
# Control name (as the PSS page names it) -> check; baseline first, then restricted.
CONTROLS: dict[str, Control] = {
    "HostProcess": host_process,
    "Host Namespaces": host_namespaces,
    "Privileged Containers": privileged,
    "Capabilities": capabilities,
    "HostPath Volumes": host_path_volumes,
    "Host Ports": host_ports,
    "AppArmor": apparmor,
    "SELinux": selinux,
    "/proc Mount Type": proc_mount,
    "Seccomp": seccomp,
    "Sysctls": sysctls,
    "Volume Types": volume_types,
    "Privilege Escalation": privilege_escalation,
    "Running as Non-root": run_as_non_root,
    "Running as Non-root user": run_as_user,
}


def violations(pod: dict) -> list[Violation]:
    """Every broken control of a pod template or Pod (`metadata` + `spec`)."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    return [Violation(name, detail) for name, check in CONTROLS.items() for detail in check(meta, spec)]
