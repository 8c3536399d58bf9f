"""Create the agentic schema of story S0-1.1 with the QA review's fixes (seed 004)."""

from infra.migrations import run_sql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(__file__, "up")


def downgrade() -> None:
    run_sql(__file__, "down")
