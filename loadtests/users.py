"""One abstract Locust user per protocol; concrete users (locustfile.py) hold only tasks.

Each client times a call with time.perf_counter() and fires `environment.events.request` with one
name per logical operation, as Locust's `examples/custom_xmlrpc_client` does. A failed call is
reported with its exception and does not stop the user. Connection settings come from the JSON
file named by AGENTDB_LOAD_CONFIG, which `agentdb load` writes (see loadtests/load.py).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

# Locust has monkey-patched the standard library by now, so psycopg picks a gevent-friendly wait
# function (psycopg.waiting detects gevent's patching and avoids its C wait loop).
import psycopg
from locust import User

CONFIG_ENV = "AGENTDB_LOAD_CONFIG"


@cache
def config() -> dict[str, Any]:
    """The run's connection settings: {"dsn": {key: url}, "redis_url": url, ...}."""
    return json.loads(Path(os.environ[CONFIG_ENV]).read_text())


class TimedClient:
    """Times a block and reports it to Locust under one operation name."""

    request_type = "call"

    def __init__(self, environment: Any, stage: str):
        self.environment = environment
        # Which phase step the samples belong to (locustfile.py keeps one histogram per stage).
        self.stage = stage

    @contextmanager
    def measure(self, name: str) -> Iterator[None]:
        exception: BaseException | None = None
        start = time.perf_counter()
        try:
            yield
        except Exception as exc:  # reported to Locust, not raised: the user goes on with its next task
            exception = exc
            self._after_failure(exc)
        elapsed_ms = (time.perf_counter() - start) * 1000
        self.environment.events.request.fire(
            request_type=self.request_type,
            name=name,
            response_time=elapsed_ms,
            response_length=0,
            exception=exception,
            context={"stage": self.stage},
        )

    def _after_failure(self, exc: Exception) -> None:
        """Hook: recover the connection after a failed call."""


class PostgresClient(TimedClient):
    """One psycopg 3 connection (autocommit; transactions are explicit) for one simulated agent."""

    request_type = "postgres"

    def __init__(self, environment: Any, stage: str, dsn: str):
        super().__init__(environment, stage)
        self.dsn = dsn
        self.conn = self._connect()

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(self.dsn, autocommit=True, connect_timeout=10)

    def _after_failure(self, exc: Exception) -> None:
        if self.conn.closed or self.conn.broken:
            self.conn = self._connect()

    def close(self) -> None:
        self.conn.close()


class RedisClient(TimedClient):
    """A Redis client with short timeouts (loadtests.hotcache.connect_redis)."""

    request_type = "redis"

    def __init__(self, environment: Any, stage: str, url: str):
        from loadtests.hotcache import connect_redis

        super().__init__(environment, stage)
        self.redis = connect_redis(url)

    def close(self) -> None:
        self.redis.close()


class PostgresUser(User):
    """An agent talking to one application database through PgBouncer (`database` = its key)."""

    abstract = True
    database: str = ""
    stage: str = "mixed"  # the mixed profile; locustfile.py's capacity users name their operation

    def on_start(self) -> None:
        super().on_start()
        self.pg = PostgresClient(self.environment, self.stage, config()["dsn"][self.database])

    def on_stop(self) -> None:
        self.pg.close()
        super().on_stop()


class RedisUser(User):
    """An agent talking to Redis."""

    abstract = True
    stage: str = "mixed"

    def on_start(self) -> None:
        super().on_start()
        self.cache_client = RedisClient(self.environment, self.stage, config()["redis_url"])

    def on_stop(self) -> None:
        self.cache_client.close()
        super().on_stop()
