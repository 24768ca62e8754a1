"""Reading a values file: whatever the path points at, the result is the parsed
YAML or one clear error, never a traceback and never a silent surprise.

- Only regular text files of at most MAX_BYTES are read (/dev/zero would never end).
- UTF-8 only: a UTF-16 file or a binary one is named as such.
- A key given twice in one mapping is an error naming both lines: YAML itself
  keeps the last one silently.
- A YAML syntax error is one line with its position.
"""

from __future__ import annotations

import errno
from pathlib import Path

import yaml

MAX_BYTES = 1024 * 1024


class SourceError(Exception):
    """The file cannot be read as a values file; each line of the message is one problem."""


def _read(path: Path) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise SourceError(f"values file {path} does not exist: pass --values FILE or set VALUES") from None
    except IsADirectoryError:
        raise SourceError(f"values file {path} is a folder: pass the YAML file inside it") from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise SourceError(f"values file {path} is a symbolic link that leads back to itself") from None
        raise SourceError(f"values file {path} cannot be read: {err.strerror}") from None
    if len(data) > MAX_BYTES:
        raise SourceError(f"values file {path} is larger than {MAX_BYTES // 1024 // 1024} MiB: a values file is a "
                          "few kilobytes of YAML; check the path")
    return data


def _decode(path: Path, data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SourceError(f"values file {path} is UTF-16 text: save it as UTF-8")
    if b"\x00" in data:
        raise SourceError(f"values file {path} is binary (it holds NUL bytes), not YAML text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SourceError(f"values file {path} is not UTF-8 text (byte {data[err.start]:#04x} at offset "
                          f"{err.start}): save it as UTF-8") from None


def _syntax_error(path: Path, err: yaml.YAMLError) -> SourceError:
    if isinstance(err, yaml.MarkedYAMLError) and err.problem_mark is not None:
        mark = err.problem_mark
        context = f" ({err.context})" if err.context else ""
        return SourceError(f"{path} is not valid YAML: line {mark.line + 1}, column {mark.column + 1}: "
                           f"{err.problem}{context}")
    return SourceError(f"{path} is not valid YAML: {' '.join(str(err).split())}")


def _duplicates(root: yaml.Node | None) -> list[str]:
    """One message per key that a mapping of the document holds more than once."""
    found: list[tuple[int, str]] = []
    stack: list[tuple[yaml.Node, str]] = [(root, "")] if root is not None else []
    seen_nodes: set[int] = set()
    while stack:
        node, where = stack.pop()
        if id(node) in seen_nodes:  # an alias: already walked
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            lines: dict[tuple[str, str], int] = {}
            for key, value in node.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else "<complex key>"
                path = f"{where}.{name}" if where else str(name)
                identity = (key.tag, name)
                if isinstance(key, yaml.ScalarNode) and identity in lines:
                    line = key.start_mark.line + 1
                    found.append((line, f"{path}: the key appears twice, at lines {lines[identity]} and {line}; "
                                        "YAML would keep only the last: remove one"))
                else:
                    lines[identity] = key.start_mark.line + 1
                stack.append((value, path))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, f"{where}[{index}]") for index, item in enumerate(node.value))
    return [message for _, message in sorted(found)]


def read_values_file(path: Path) -> object:
    """The parsed YAML document of a values file (None when it is empty)."""
    text = _decode(path, _read(path))
    try:
        duplicates = _duplicates(yaml.compose(text, Loader=yaml.SafeLoader))
        if duplicates:
            raise SourceError(f"{path} is not valid:\n" + "\n".join(f"  - {d}" for d in duplicates))
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise _syntax_error(path, err) from None
    except RecursionError:
        raise SourceError(f"{path} nests too deeply to be a values file") from None
