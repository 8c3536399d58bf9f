"""No password on a command line: any local user can read those (ps), only the owner an environment."""

from __future__ import annotations

import subprocess
import threading
import time


def test_psql_keeps_the_superuser_password_off_its_command_line(stack):
    """LocalStack.psql, which `agentdb load`, seeding and the tests call, is watched while it runs."""
    query = threading.Thread(target=stack.psql, args=("qlearning", "SELECT pg_sleep(1.5) -- watched"))
    seen: list[str] = []
    query.start()
    deadline = time.monotonic() + 30
    while query.is_alive() and time.monotonic() < deadline:
        ps = subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, text=True, check=True)
        seen += [line for line in ps.stdout.splitlines() if "watched" in line]
        time.sleep(0.1)
    query.join()
    assert seen, "psql was not seen running"
    passwords = [v for v in stack.local.secrets().values() if len(v) >= 12]
    assert [p for p in passwords if any(p in line for line in seen)] == []
