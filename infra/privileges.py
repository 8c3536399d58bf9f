"""Who may EXECUTE which function of an application database: `sql/<db>/privileges.yaml`, enforced.

A SECURITY DEFINER function runs with its owner's rights whoever calls it, so a grant on it hands
those rights out. The rules, applied by `enforce` after every migration run (same transaction, as
the owner, so a function a revision adds is never committed with a grant it should not have):

- a SECURITY DEFINER function is executable by the owner and by the roles its entry in the file
  names, nobody else; a SECURITY DEFINER function the file does not name fails the run;
- the readonly role may execute SECURITY INVOKER functions that are STABLE or IMMUTABLE (they run
  with its own rights and PostgreSQL keeps SQL and PL/pgSQL bodies of such functions from writing),
  and no VOLATILE function unless the file's `readonly_volatile` allow-list names it;
- trigger functions are for nobody but the owner: a trigger fires without the writer's EXECUTE;
- the app role's EXECUTE on SECURITY INVOKER functions is left to the default privileges and the
  revisions' own REVOKEs (it writes with its own rights there).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
import yaml

from infra.databases import Database

FILE_NAME = "privileges.yaml"
ROLES = ("app", "readonly")  # the names the file uses, mapped to the database's roles
_SIGNATURE = re.compile(r"^[a-z_][a-z0-9_]*\([^()]*\)$")

# The owner's routines in `public`, extensions' members left out (the superuser owns those).
FUNCTIONS = """
SELECT p.oid::regprocedure::text, p.prosecdef, p.provolatile = 'v',
       p.prorettype IN ('trigger'::regtype, 'event_trigger'::regtype)
FROM pg_proc p
WHERE p.pronamespace = 'public'::regnamespace AND p.proowner = %s::regrole
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
ORDER BY 1
"""


class PrivilegesError(ValueError):
    """The privileges file is malformed, or the database has a function the file must name."""


@dataclass(frozen=True)
class DefinerGrant:
    """Who may execute one SECURITY DEFINER function, and why."""

    roles: tuple[str, ...]
    why: str


@dataclass(frozen=True)
class FunctionPrivileges:
    """The parsed file: SECURITY DEFINER grants and the readonly role's VOLATILE allow-list."""

    path: Path
    security_definer: dict[str, DefinerGrant]
    readonly_volatile: dict[str, str]


def _signature(path: Path, section: str, key: object) -> str:
    if not isinstance(key, str) or not _SIGNATURE.match(key.strip()):
        raise PrivilegesError(f"{path}: {section}: {key!r} is not a function signature such as name(integer, text)")
    return key.strip()


def _why(path: Path, where: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PrivilegesError(f"{path}: {where}: say why, in a non-empty string")
    return value.strip()


def parse(path: Path) -> FunctionPrivileges:
    """Read and validate one privileges file; a missing file means no SECURITY DEFINER function is allowed."""
    if not path.exists():
        return FunctionPrivileges(path, {}, {})
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise PrivilegesError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise PrivilegesError(f"{path}: expected a mapping with security_definer and readonly_volatile")
    unknown = sorted(set(data) - {"security_definer", "readonly_volatile"})
    if unknown:
        raise PrivilegesError(f"{path}: unknown keys {unknown}; known: security_definer, readonly_volatile")
    definers: dict[str, DefinerGrant] = {}
    for key, entry in (data.get("security_definer") or {}).items():
        sig = _signature(path, "security_definer", key)
        if not isinstance(entry, dict) or set(entry) != {"roles", "why"}:
            raise PrivilegesError(f"{path}: security_definer: {sig}: expected exactly the keys roles and why")
        roles = entry["roles"]
        if not isinstance(roles, list) or any(role not in ROLES for role in roles):
            raise PrivilegesError(f"{path}: security_definer: {sig}: roles must be a list of {', '.join(ROLES)}")
        definers[sig] = DefinerGrant(tuple(roles), _why(path, f"security_definer: {sig}", entry["why"]))
    allowed = {
        _signature(path, "readonly_volatile", key): _why(path, f"readonly_volatile: {key}", why)
        for key, why in (data.get("readonly_volatile") or {}).items()
    }
    return FunctionPrivileges(path, definers, allowed)


def load(db: Database) -> FunctionPrivileges:
    """The privileges file of one database."""
    return parse(db.sql_dir / FILE_NAME)


def _resolve(conn: sa.Connection, spec: FunctionPrivileges, signature: str) -> str | None:
    """The function's regprocedure text, None when this revision has no such function."""
    try:
        with conn.begin_nested():
            return conn.exec_driver_sql("SELECT to_regprocedure(%s)::text", (f"public.{signature}",)).scalar()
    except Exception as exc:  # e.g. an argument type that does not exist
        detail = getattr(exc, "orig", None) or exc
        raise PrivilegesError(f"{spec.path}: {signature}: {detail}".strip()) from None


def enforce(conn: sa.Connection, db: Database, spec: FunctionPrivileges | None = None) -> None:
    """Leave EXECUTE on the owner's functions in `public` as the file (or `spec`) and the rules say.

    `conn` is the migration's SQLAlchemy connection, in its transaction, acting as the owner.
    """
    spec = spec or load(db)
    definers = {}
    for sig, grant in spec.security_definer.items():
        name = _resolve(conn, spec, sig)
        if name is not None:
            definers[name] = grant
    allowed = {name for sig in spec.readonly_volatile if (name := _resolve(conn, spec, sig)) is not None}
    functions = conn.exec_driver_sql(FUNCTIONS, (db.owner,)).all()
    if not functions:
        return
    role_of = {"app": db.app_role, "readonly": db.readonly_role}
    grants: dict[str, list[str]] = {db.app_role: [], db.readonly_role: []}
    definer_names = []
    for name, secdef, volatile, trigger in functions:
        if secdef:
            grant = definers.get(name)
            if grant is None:
                raise PrivilegesError(
                    f"{db.key}: SECURITY DEFINER function {name} is not in {spec.path}; add it under"
                    " security_definer with the roles that may execute it and why"
                )
            if "readonly" in grant.roles and volatile and name not in allowed:
                raise PrivilegesError(
                    f"{spec.path}: {name} is VOLATILE SECURITY DEFINER: the readonly role may execute it"
                    " only if readonly_volatile names it, with why"
                )
            definer_names.append(name)
            for role in grant.roles:
                grants[role_of[role]].append(name)
        elif not trigger and (not volatile or name in allowed):
            grants[db.readonly_role].append(name)
    everything = ", ".join(name for name, *_ in functions)
    conn.exec_driver_sql(f'REVOKE EXECUTE ON ROUTINE {everything} FROM PUBLIC, "{db.readonly_role}"')
    if definer_names:
        conn.exec_driver_sql(f'REVOKE EXECUTE ON ROUTINE {", ".join(definer_names)} FROM "{db.app_role}"')
    for role, names in grants.items():
        if names:
            conn.exec_driver_sql(f'GRANT EXECUTE ON ROUTINE {", ".join(names)} TO "{role}"')
