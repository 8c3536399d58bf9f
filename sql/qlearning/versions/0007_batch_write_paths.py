"""Set-based batch writes (upsert_q_values, insert_trajectories) and a leaner upsert_q_value (issue 15)."""

from infra.migrations import run_sql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(__file__, "up")


def downgrade() -> None:
    run_sql(__file__, "down")
