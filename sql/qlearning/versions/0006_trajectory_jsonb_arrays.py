"""Trajectories' actions_taken, states_visited and step_rewards become one JSONB array each (issue 18)."""

from infra.migrations import run_sql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(__file__, "up")


def downgrade() -> None:
    run_sql(__file__, "down")
