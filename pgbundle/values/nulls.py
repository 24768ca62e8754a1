"""The one rule for null in a values file.

`null` is a value only where the model admits none (`podSelector: null`,
`ha.image: null`, `pitr.schedules.differential: null`...): there it means none.
Anywhere else it is refused, naming the key: `tls: null` could mean "the
defaults" (Helm drops the key) or "off", and guessing either silently is how a
production database ends up without TLS or with TLS it was not meant to have.
The error says what the key takes and the two ways to say what was meant:
leave the key out for its default, or `enabled: false` for a section that has it.
"""

from __future__ import annotations

import json

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from pgbundle.values.models import ChartValues
from pgbundle.values.reference import bounds_text, field_type_text, item_section, key_default, without_none


def _refusal(where: str, field: FieldInfo, default: object) -> str:
    section = item_section(field.annotation)
    if section is not None and without_none(field.annotation)[0] is section:
        off = (f", or set {where}.enabled: false to turn it off" if "enabled" in section.model_fields else "")
        return f"{where}: null is not allowed (allowed: a mapping): leave the key out to keep its defaults{off}"
    bounds = bounds_text(field)
    takes = field_type_text(field) + (f" ({bounds})" if bounds else "")
    if default is ...:
        return f"{where}: null is not allowed (allowed: {takes}): give one"
    return (f"{where}: null is not allowed (allowed: {takes}): leave the key out for the default "
            f"{json.dumps(default, ensure_ascii=False)}")


def null_problems(data: object, model: type[BaseModel] = ChartValues, where: str = "",
                  defaults: dict | None = None) -> dict[str, str]:
    """Each null in `data` (a values file as parsed) the model does not admit, by its
    dotted location (as load.py names locations), with the message; `defaults` as
    in reference.sections."""
    found: dict[str, str] = {}
    if not isinstance(data, dict):
        return found
    fields = {(field.alias or name): field for name, field in model.model_fields.items()}
    fields |= {name: field for name, field in model.model_fields.items() if name not in fields}
    for key, value in data.items():
        field = fields.get(key)
        if field is None:
            continue  # an unknown key: the model reports it
        path = f"{where}.{key}" if where else str(key)
        section = item_section(field.annotation)
        default = key_default(str(key), field, defaults)
        if value is None:
            if not without_none(field.annotation)[1]:
                found[path] = _refusal(path, field, default)
        elif section is not None and isinstance(value, dict):
            found |= null_problems(value, section, path, default if isinstance(default, dict) else None)
        elif section is not None and isinstance(value, list):
            for index, item in enumerate(value):
                found |= null_problems(item, section, f"{path}[{index}]")
    return found
