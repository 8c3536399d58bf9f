"""Add the orchestrator logic: triggers, tallies, Elo, EigenTrust, partition API, views, RLS and grants."""

from infra.migrations import run_sql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(__file__, "up")


def downgrade() -> None:
    run_sql(__file__, "down")
