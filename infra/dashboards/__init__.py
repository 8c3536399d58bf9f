"""Grafana dashboards as code (grafana-foundation-sdk); `python -m infra.dashboards` writes the JSON."""

from __future__ import annotations

from pathlib import Path

from infra.dashboards import common, pgbouncer, postgres, qlearning, redis, workload
from infra.databases import REPO_ROOT
from infra.settings import Settings

OUTPUT_DIR = REPO_ROOT / "config" / "grafana" / "dashboards"
# Databases with a dedicated workload module; the others get the generic workload dashboard.
DEDICATED = {"qlearning": qlearning}


def build_all(settings: Settings | None = None) -> dict[str, str]:
    """File name -> JSON text of every dashboard, for the enabled databases of `settings`."""
    settings = settings or Settings()
    boards = {postgres.UID: postgres.build(), pgbouncer.UID: pgbouncer.build(), redis.UID: redis.build()}
    for db in settings.enabled:
        module = DEDICATED.get(db.key)
        boards[module.UID if module else workload.uid(db)] = module.build() if module else workload.build(db)
    return {f"{uid}.json": common.to_json(board) for uid, board in boards.items()}


def write(directory: Path = OUTPUT_DIR) -> list[Path]:
    """Regenerate the committed JSON; remove dashboards that are no longer generated."""
    directory.mkdir(parents=True, exist_ok=True)
    files = build_all()
    for stale in directory.glob("*.json"):
        if stale.name not in files:
            stale.unlink()
    paths = []
    for name, text in files.items():
        path = directory / name
        path.write_text(text)
        paths.append(path)
    return paths
