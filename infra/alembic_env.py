"""The shared body of every sql/<key>/env.py: run the history on the connection infra.migrations passes."""

from __future__ import annotations

from alembic import context


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through `agentdb migrate` (infra.migrations), not the alembic CLI")
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=False)
    with context.begin_transaction():
        context.run_migrations()
