"""The Backups row of the PostgreSQL overview: what each backup alert (config/rules/backup.yml.j2) watches."""

from infra.dashboards.common import graph, row, single


def panels() -> list:
    """Repository reachable, backup age, WAL archiving, verify and restore drill; then their history."""
    return [
        row("Backups"),
        single(
            "Backup repository",
            "min(agentdb_backup_repository_up)",
            description="pgbackrest info through the stack's configuration at each scrape (BackupRepositoryDown)",
            thresholds=[(None, "red"), (1, "green")],
        ),
        single(
            "Last full or diff backup",
            'time() - max(agentdb_backup_last_success_timestamp_seconds{type=~"full|diff"})',
            unit="s",
            description="Age of the newest full or differential backup (BackupTooOld: 26 h warns, 50 h pages)",
            thresholds=[(None, "green"), (93600, "orange"), (180000, "red")],
        ),
        single(
            "WAL archiving failing",
            "max(agentdb_archiver_failing)",
            description="1 while the latest archive_command failed (WALArchivingFailing)",
            thresholds=[(None, "green"), (1, "red")],
        ),
        single(
            "Last verify",
            "min(agentdb_backup_verify_last_ok)",
            description="pgbackrest verify, daily at 02:00 UTC: 1 passed, 0 failed",
            thresholds=[(None, "red"), (1, "green")],
        ),
        single(
            "Last restore drill",
            "min(agentdb_backup_drill_last_ok)",
            description="The restore drill (infra/drill.py): 1 passed, 0 failed (RestoreDrillFailing)",
            thresholds=[(None, "red"), (1, "green")],
        ),
        single(
            "Last drill passed",
            "time() - max(agentdb_backup_drill_last_success_timestamp_seconds)",
            unit="s",
            description="Age of the last passing restore drill; its duration is graphed below",
        ),
        graph(
            "Backup age by type",
            [("time() - max by (type) (agentdb_backup_last_success_timestamp_seconds)", "{{type}}")],
            unit="s",
        ),
        graph(
            "WAL archiving",
            [
                ("max by (server) (agentdb_archiver_last_archived_age_seconds)", "last archived age {{server}}"),
                ("max by (server) (agentdb_archiver_ready_segments)", "segments waiting {{server}}"),
                ("sum by (server) (increase(agentdb_archiver_failed_count[5m]))", "failures in 5m {{server}}"),
            ],
        ),
        graph(
            "Restore drill and verify duration",
            [
                ("max(agentdb_backup_drill_last_duration_seconds)", "drill"),
                ("max(agentdb_backup_verify_last_duration_seconds)", "verify"),
            ],
            unit="s",
        ),
    ]
