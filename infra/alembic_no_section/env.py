"""Alembic environment of the [tool.alembic] fallback: alembic.ini has no section by the name asked for."""

from infra.alembic_env import no_section

no_section()
