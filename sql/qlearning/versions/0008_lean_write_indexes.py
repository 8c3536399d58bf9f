"""Fewer index entries per trajectory: drop rewards (agent_type, observed_at), partial (session_id) (issue 15)."""

from infra.migrations import run_sql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(__file__, "up")


def downgrade() -> None:
    run_sql(__file__, "down")
