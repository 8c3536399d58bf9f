"""Data generators for `agentdb seed --db <key>`: one module per database, `sample(conn)` and `volume(conn, ...)`.

`seed()` is the one way in, used by `agentdb seed` and by `agentdb load` when a database it loads
has no volume data yet.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import psycopg

from infra.databases import Database


class SeedError(ValueError):
    """The data cannot be generated as asked: the message says why."""


def generator(db: Database) -> ModuleType:
    try:
        return importlib.import_module(f"infra.seeds.{db.key}")
    except ModuleNotFoundError:
        raise SeedError(f"database {db.key} has no data generator (infra/seeds/{db.key}.py)") from None


def seed(dsn: str, db: Database, *, sample: bool = False, scale: float = 1.0, seed: int = 42) -> None:
    """Load the sample data set, or the volume at `scale` (1.0 is the 30-day volume), in one transaction.

    `dsn` is a superuser connection string; the data is written as the database's owner.
    """
    module = generator(db)
    if sample and not hasattr(module, "sample"):
        raise SeedError(f"{db.key} has no sample data set")
    if not sample and not hasattr(module, "volume"):
        raise SeedError(f"{db.key} has no volume generator; try --sample")
    with psycopg.connect(dsn) as conn:
        conn.execute(f'SET ROLE "{db.owner}"')
        if sample:
            module.sample(conn)
        else:
            try:
                module.volume(conn, scale=scale, seed=seed)
            except ValueError as exc:  # a scale the generator refuses: nothing was committed
                raise SeedError(str(exc)) from None
        conn.commit()
