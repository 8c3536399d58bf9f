"""The shared body of every sql/<key>/env.py, for both ways in.

- `agentdb migrate` (infra.migrations) passes its owner-transaction connection in `config.attributes`:
  the revisions run on it and nothing else happens here.
- The Alembic CLI (`alembic -n qlearning upgrade head`) passes nothing: the stack is found from
  `-x` arguments or the environment, and the revisions run inside the same `migrations.session`
  (owner transaction, `_after_run`), followed by the same cron sync as `agentdb migrate`. This
  path never calls back into infra.migrations' commands, so there is no recursion.
"""

from __future__ import annotations

import os
from typing import NoReturn

import psycopg
import sqlalchemy as sa
from alembic import context
from alembic.util import CommandError

from infra import baseline, migrations
from infra.cli import open_stack, require_running, stack_databases
from infra.cron import CronError
from infra.databases import DATABASES
from infra.external import ExternalError
from infra.runner import LocalStack, StackError
from infra.settings import SettingsError

# -x key -> environment variable, for the alembic CLI: which stack to migrate.
STACK_ARGUMENTS = {"stack": "AGENTDB_STACK", "stack_file": "AGENTDB_STACK_FILE", "state_dir": "AGENTDB_STATE_DIR"}
# Alembic commands that change the database: the owner transaction, `_after_run` and the cron sync.
WRITES = {"upgrade", "downgrade", "stamp"}
# Commands that only read the version table (`history` only with -i or `current` in its range).
READS = {"current", "history", "show"}


def run() -> None:
    """Run the history: on the connection `agentdb migrate` passed in, or on the stack the CLI names."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
    else:
        _run_from_cli()


def no_section() -> NoReturn:
    """env.py of the fallback [tool.alembic] location: alembic.ini has no section by the name asked for."""
    section = context.config.config_ini_section
    asked = "no -n was given" if section == "alembic" else f"alembic.ini has no section [{section}]"
    raise CommandError(
        f"{asked}: name a database with -n, one of {', '.join(DATABASES)} "
        f"(e.g. `alembic -n {next(iter(DATABASES))} upgrade head`)"
    )


def _run_on(connection: sa.Connection) -> None:
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=False)
    with context.begin_transaction():
        context.run_migrations()


def _command() -> str | None:
    """The alembic CLI command being run (None when Alembic is called from Python)."""
    cmd = getattr(context.config.cmd_opts, "cmd", None)
    return cmd[0].__name__ if cmd else None


def _run_from_cli() -> None:
    key = context.config.config_ini_section
    name = _command()
    if key not in DATABASES:
        raise CommandError(f"alembic.ini section [{key}] is not a database; use one of {', '.join(DATABASES)}")
    if context.is_offline_mode():
        raise CommandError(
            f"--sql (offline mode) is not supported: the revisions are SQL already, "
            f"{migrations.script_dir(key)}/versions/*.up.sql and *.down.sql"
        )
    if name is not None and name not in WRITES | READS:
        raise CommandError(
            f"`alembic {name}` needs models agentdb does not have; revisions are SQL files: "
            f'create one with `agentdb revision --db {key} -m "message"`'
        )
    try:
        stack = _stack()
        (db,) = stack_databases(stack, key)
        admin = stack.dsn(db)
        if name in READS:
            with migrations.reading(admin) as conn:
                _run_on(conn)
            return
        what = f"{name or 'alembic'} to {context.get_revision_argument()}"
        before = migrations.current(admin, key)
        outcome = migrations.Outcome() if name == "upgrade" else None
        values = migrations.runtime_values(key, stack.settings) if outcome else None
        with migrations.session(admin, key, what, outcome, values) as conn:
            _run_on(conn)
        if outcome:
            for report in outcome.reports:
                context.config.print_stdout(f"{key}: {report}")
            if outcome.written:
                context.config.print_stdout(f"{key}: settings: {', '.join(outcome.written)}")
        after = migrations.current(admin, key)
        context.config.print_stdout(f"{key}: {before or 'base'} -> {after or 'base'}")
        baseline.schedule(stack, db, context.config.print_stdout)
    except (SettingsError, StackError, CronError, ExternalError, migrations.MigrationError) as exc:
        raise CommandError(str(exc)) from None
    except (sa.exc.SQLAlchemyError, psycopg.Error) as exc:  # e.g. the server went away: one line, no traceback
        detail = getattr(exc, "orig", None) or exc
        raise CommandError(f"{key}: {type(detail).__name__}: {detail}") from None


def _stack() -> LocalStack:
    """The running stack the CLI is pointed at: -x stack=..., else $AGENTDB_STACK, ..., else dev."""
    given = context.get_x_argument(as_dictionary=True)
    unknown = sorted(set(given) - set(STACK_ARGUMENTS))
    if unknown:
        raise SettingsError(
            f"-x {unknown[0]}: unknown; the alembic CLI takes -x {', -x '.join(f'{k}=...' for k in STACK_ARGUMENTS)}"
        )
    values = {k: given.get(k) or os.environ.get(env) or None for k, env in STACK_ARGUMENTS.items()}
    stack = open_stack(values["stack"] or "dev", values["stack_file"], values["state_dir"])
    try:
        require_running(stack)
    except StackError as exc:
        raise StackError(
            f"{exc} (state directory {stack.state_dir}; the alembic CLI takes another stack with "
            "-x stack=NAME [-x stack_file=PATH] [-x state_dir=PATH] or $AGENTDB_STACK)"
        ) from None
    return stack
