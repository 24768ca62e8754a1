"""Privileges as the tests compare them: a sorted array of grantee=PRIVILEGE/grantor
entries (aclexplode), since the order of an ACL's entries is no promise (a restore on
PostgreSQL 17 returns the same entries in another order than 15) and the
abbreviated letters grow between majors (17's `m`, MAINTAIN)."""

from __future__ import annotations


def acl_entries(column: str) -> str:
    """An SQL expression: `column`'s ACL as a sorted text array; '{}' for NULL (the defaults)."""
    entry = ("format('%s=%s/%s%s', CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END, "
             "a.privilege_type, pg_get_userbyid(a.grantor), CASE WHEN a.is_grantable THEN '*' ELSE '' END)")
    return f"(SELECT coalesce(array_agg(e ORDER BY e), '{{}}') FROM (SELECT {entry} AS e FROM aclexplode({column}) a) s)"
