"""Create query_logs with full-text and, where pgvector exists, vector search (migrations 005/006)."""

from infra.migrations import run_sql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(__file__, "up")


def downgrade() -> None:
    run_sql(__file__, "down")
