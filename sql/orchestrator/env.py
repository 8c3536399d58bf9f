"""Alembic environment: the shared runner in infra/alembic_env.py."""

from infra.alembic_env import run

run()
