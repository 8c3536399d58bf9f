"""Create the e-commerce demo tables users, orders and payments (seed 003, migration 001)."""

from infra.migrations import run_sql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(__file__, "up")


def downgrade() -> None:
    run_sql(__file__, "down")
