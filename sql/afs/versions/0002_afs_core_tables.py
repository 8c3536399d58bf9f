"""Create the AFS workflow tables with their foreign keys, CHECKs and JSONB validation (migration 002)."""

from infra.migrations import run_sql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(__file__, "up")


def downgrade() -> None:
    run_sql(__file__, "down")
