"""The HA hook runs init.sql exactly as start.sh does: the same psql variables,
so a variable init.sql gains on one side cannot be forgotten on the other."""

from __future__ import annotations

import re
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent.parent / "constructs" / "scripts"


def init_sql_variables(script: Path) -> set[str]:
    text = script.read_text()
    call = text[:text.index('"$PG_SCRIPTS_DIR/init.sql"')]
    call = call[call.rindex("psql"):]
    return set(re.findall(r"-v ([a-z_]+)=", call))


def test_the_hook_passes_init_sql_the_variables_start_sh_passes():
    start = init_sql_variables(SCRIPTS / "start.sh")
    assert {"secrets_dir", "database", "app_user"} <= start
    assert init_sql_variables(SCRIPTS / "ha" / "patroni-hook.sh") == start
