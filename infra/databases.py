"""The application databases agentdb knows, with their names and roles: one source for every module."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SQL_ROOT = REPO_ROOT / "sql"


@dataclass(frozen=True)
class Database:
    """One application database: its settings key, its PostgreSQL name, its three roles, and the
    settings it reads at run time (written into it on every upgrade by infra.migrations)."""

    key: str
    name: str
    owner: str
    app_role: str
    readonly_role: str
    runtime_settings: tuple[str, ...] = ()

    @property
    def sql_dir(self) -> Path:
        return SQL_ROOT / self.key

    @property
    def roles(self) -> tuple[str, str, str]:
        return (self.owner, self.app_role, self.readonly_role)


# Role names follow the documents where they name them (seed 002: ai_agent_app, ai_agent_readonly),
# and `<key>_app` / `<key>_readonly` otherwise.
DATABASES: dict[str, Database] = {
    db.key: db
    for db in (
        Database(
            "qlearning",
            "qlearning_db",
            "qlearning_owner",
            "qlearning_app",
            "qlearning_readonly",
            ("retention_days",),
        ),
        Database(
            "orchestrator",
            "ai_agent_orchestrator",
            "ai_agent_owner",
            "ai_agent_app",
            "ai_agent_readonly",
            ("partition_premake_months",),
        ),
        Database("afs", "afs", "afs_owner", "afs_app", "afs_readonly"),
        Database(
            "agentic", "agentic", "agentic_owner", "agentic_app", "agentic_readonly", ("partition_premake_months",)
        ),
    )
}
