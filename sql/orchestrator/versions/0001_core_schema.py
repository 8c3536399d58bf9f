"""Create the orchestrator schema: 13 ENUMs, the tables of the 11 subsystems, indexes, pg_partman partitions."""

from infra.migrations import run_sql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(__file__, "up")


def downgrade() -> None:
    run_sql(__file__, "down")
