"""No dead settings: changing any key of the settings model changes what the stack is made of.

What a stack is made of, from the cheapest to read: the rendered files of both realizations, the
cron jobs and the runtime settings written into each database, and, for settings only the Docker
realization reads, the resources the Pulumi program declares (under mocks). The whole settings
document the schema resources carry is left out of the last: carrying a value is not reading it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from pydantic.alias_generators import to_camel

from infra import credentials as sec
from infra import cron, migrations, render, topology
from infra.databases import DATABASES
from infra.settings import Settings
from tests.pulumi.mockstack import DYNAMIC, deploy

STATE = Path("/srv/agentdb-test")
# Changed values the field's type cannot suggest (any other value the model accepts would do).
CHANGED: dict[str, Any] = {
    "bind_address": "127.0.0.2",
    "runbook_base_url": "https://example.invalid/runbooks/",
    "base_image": "debian:bookworm-slim",
    "grafana_image": "grafana/grafana-oss:11.3.1",
    "databases": ["qlearning", "orchestrator", "afs"],
    "log_rotation_age_min": 30,  # must divide a day
    "postgres_host": "db.example.com",
    "postgres_admin_user": "agentdb_admin",
    "backup_repo_path": "/srv/backups/agentdb",
    "backup_repos": [{"type": "posix", "path": "/srv/backups/second"}],
}


def changed_value(name: str) -> Any:
    """A valid value other than the default for settings field `name`."""
    field = Settings.model_fields[name]
    default = field.default
    if name in CHANGED:
        return CHANGED[name]
    if isinstance(default, bool):
        return not default
    if isinstance(default, int) and name.endswith("_port"):
        # Far from the others: a cluster's nodes and members take the ports after each base port.
        return default + 10007
    if isinstance(default, int):
        return default + 1
    if isinstance(default, float):
        return default / 2
    choices = [choice for choice in get_args(field.annotation) if choice != default]
    if choices:
        return choices[0]
    raise AssertionError(f"{name}: add a changed value to CHANGED")


def footprint(settings: Settings) -> dict[str, str]:
    """Rendered files (local and Docker), the topology, cron jobs and database runtime values, by name."""
    secrets = {name: f"password-of-{name}" for name in sec.secret_names(settings)}
    out: dict[str, str] = {}
    for realization, layout in (
        ("local", render.Layout.local(STATE, settings, 15)),
        ("docker", render.Layout.docker(settings)),
    ):
        for name, rendered in render.render(settings, secrets, layout).items():
            out[f"{realization}:{name}"] = f"{rendered.mode:o} {rendered.content}"
    # What runs, with its ports (the local runner passes some of them on command lines, not in files).
    out["topology"] = repr(topology.build(settings))
    for key, db in DATABASES.items():
        out[f"cron:{key}"] = repr(cron.jobs(db, settings))
        out[f"database:{key}"] = repr(migrations.runtime_values(key, settings))
    return out


# A key is read when changing it changes any shape of stack: a single server, a cluster, the tools on.
BASES: list[dict[str, Any]] = [{}, {"replicas": 2}, {"tools": True}, {"postgres_mode": "external"}]
_declared: dict[str, dict] = {}


def declared(tmp_path: Path, config: dict[str, Any]) -> dict:
    """What the Pulumi program declares for a dev stack file holding only `config`."""
    cache_key = repr(sorted(config.items()))
    if cache_key not in _declared:
        path = tmp_path / "Pulumi.dev.yaml"
        path.write_text(yaml.safe_dump({"config": {f"agentdb:{to_camel(k)}": v for k, v in config.items()}}))
        resources = deploy("dev", stack_file=path).resources
        # Keyed by name: the program registers resources concurrently, in no fixed order.
        _declared[cache_key] = {
            (r.type, r.name): {k: v for k, v in r.inputs.items() if not (r.type == DYNAMIC and k == "settings")}
            for r in resources
        }
    return _declared[cache_key]


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_changing_the_setting_changes_the_stack(name, tmp_path):
    value = changed_value(name)
    # Every shape of stack: keys of the cluster or of the tools are ignored by a stack without them.
    for base in BASES:
        if footprint(Settings(**{**base, name: value})) != footprint(Settings(**base)):
            return
    # Nothing the local runner or the databases see changed: the Docker program must read it.
    assert declared(tmp_path, {name: value}) != declared(tmp_path, {}), (
        f"agentdb:{to_camel(name)} is read by nothing: no rendered file, cron job, database setting or Pulumi"
        " resource changes with it"
    )


@pytest.mark.parametrize("key", list(DATABASES))
def test_each_runtime_setting_is_a_setting_with_a_place_in_the_database(key):
    for name in DATABASES[key].runtime_settings:
        assert name in Settings.model_fields, f"{key}: {name} is not a settings field"
        assert name in migrations.RUNTIME_SETTINGS, f"{key}: infra.migrations does not know where {name} goes"


def test_every_runtime_setting_is_used_by_a_database():
    used = {name for db in DATABASES.values() for name in db.runtime_settings}
    assert set(migrations.RUNTIME_SETTINGS) == used
