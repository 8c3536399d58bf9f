"""The Q-learning TTL follows agentdb:retentionDays: a settings table the migrate path writes."""

from infra.migrations import run_sql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(__file__, "up")


def downgrade() -> None:
    run_sql(__file__, "down")
