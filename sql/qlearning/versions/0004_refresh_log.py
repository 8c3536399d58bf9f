"""Record each materialized view's last refresh, so monitoring can alert on a stale view."""

from infra.migrations import run_sql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(__file__, "up")


def downgrade() -> None:
    run_sql(__file__, "down")
