import psycopg


def test_stack_comes_up_with_every_service_healthy(stack):
    lines = [line for line in stack.up_output.splitlines() if line.startswith(tuple(s for s in stack.settings.ports()))]
    assert lines, stack.up_output
    for line in lines:
        assert "RUNNING" in line and line.rstrip().endswith("healthy"), line


def test_app_role_reaches_each_database_through_pgbouncer(stack):
    for db in stack.settings.enabled:
        with psycopg.connect(stack.dsn(db.key, "app", "pgbouncer")) as conn:
            assert conn.execute("SELECT current_database(), current_user").fetchone() == (
                db.name,
                db.app_role,
            )
