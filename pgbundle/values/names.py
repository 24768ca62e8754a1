"""Grammars the API server, container registries and the kubelet enforce, so a
name they would refuse fails at synth time instead of at `kubectl apply` or at
image pull. Every pattern matches the whole text: a trailing newline, which
`re.match(...$)` lets through, is refused."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
# Label values, and the name part of label keys (Kubernetes' qualified names).
_LABEL_TEXT = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
# OCI distribution's reference grammar (github.com/distribution/reference).
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?"
_REPOSITORY = re.compile(rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_ASCII = re.compile(r"[\x20-\x7e]*")


def dns1123_subdomain_ok(value: str) -> bool:
    return 0 < len(value) <= 253 and all(DNS1123_LABEL.fullmatch(part) for part in value.split("."))


def label_value(value: str) -> str:
    if len(value) > 63 or not _LABEL_TEXT.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a Kubernetes label value: use at most 63 letters, digits, '-', '_' and '.', "
            "starting and ending with a letter or digit (or nothing)")
    return value


def label_key(value: str) -> str:
    prefix, slash, name = value.rpartition("/")
    if (slash and not dns1123_subdomain_ok(prefix)) or not name or len(name) > 63 or not _LABEL_TEXT.fullmatch(name):
        raise ValueError(
            f"{value!r} is not a Kubernetes label key: use an optional DNS-subdomain prefix and '/', then at "
            "most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit")
    return value


def image_repository(value: str) -> str:
    if len(value) > 255 or not _REPOSITORY.fullmatch(value):
        raise ValueError(
            f"{value!r} is not an image repository: use [registry[:port]/]path with lower-case path "
            "components of letters and digits separated by '.', '_', '__' or '-' (for example "
            "registry.example.com/team/postgres)")
    return value


def image_tag(value: str) -> str:
    if not _TAG.fullmatch(value):
        raise ValueError(
            f"{value!r} is not an image tag: use at most 128 letters, digits, '_', '.' and '-', not "
            "starting with '.' or '-'")
    return value


def storage_class(value: str) -> str:
    if value and not dns1123_subdomain_ok(value):
        raise ValueError(
            f"{value!r} is not a StorageClass name: use a DNS-1123 subdomain (lower-case letters, digits, "
            "'-' and '.'), or \"\" for the cluster's default class")
    return value


def printable(value: str) -> str:
    """Text that goes into a manifest or a URL as is: printable ASCII, no line breaks."""
    if not _ASCII.fullmatch(value):
        raise ValueError(f"{value!r} must be printable ASCII without line breaks or tabs")
    return value


LabelKey = Annotated[str, AfterValidator(label_key)]
LabelValue = Annotated[str, AfterValidator(label_value)]
Labels = dict[LabelKey, LabelValue]
ImageRepository = Annotated[str, AfterValidator(image_repository)]
ImageTag = Annotated[str, AfterValidator(image_tag)]
StorageClass = Annotated[str, AfterValidator(storage_class)]
Printable = Annotated[str, AfterValidator(printable)]
