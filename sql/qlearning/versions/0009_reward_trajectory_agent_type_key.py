"""One foreign key per reward instead of two: (trajectory_id, agent_type) -> its trajectory (issue 15)."""

from infra.migrations import run_sql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(__file__, "up")


def downgrade() -> None:
    run_sql(__file__, "down")
