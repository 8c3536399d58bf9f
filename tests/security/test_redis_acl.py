"""Redis ACL on the session stack: default user off, the app user without admin or dangerous commands,
the exporter user read-only."""

from __future__ import annotations

import socket

import pytest
import redis

from infra import credentials as sec

# NOPERM from the ACL; DEBUG is also refused by enable-debug-command; a script's inner call by the ACL.
REFUSED = r"(?i)NOPERM|no permissions|not allowed|can't run this command"

# Commands no application needs, each its own case: server config, wiping, debugging, ACL, key scans.
APP_FORBIDDEN = [
    ("CONFIG", "SET", "maxmemory", "1"),
    ("CONFIG", "GET", "requirepass"),
    ("FLUSHALL",),
    ("FLUSHDB",),
    ("DEBUG", "SLEEP", "0"),
    ("SHUTDOWN", "NOSAVE"),
    ("ACL", "LIST"),
    ("ACL", "SETUSER", "intruder", "on", ">pw", "+@all"),
    ("KEYS", "*"),
    ("MONITOR",),
    ("SAVE",),
    ("BGSAVE",),
    ("BGREWRITEAOF",),
    ("REPLICAOF", "127.0.0.1", "1"),
    ("MODULE", "LIST"),
    ("CLIENT", "KILL", "TYPE", "normal"),
    ("MIGRATE", "127.0.0.1", "1", "k", "0", "1"),
    ("SORT", "k"),
]

# What the application does with Redis: a hot cache of values with TTLs, counters, hashes.
APP_ALLOWED = [
    ("SET", "security:k", "v", "EX", "60"),
    ("GET", "security:k"),
    ("EXPIRE", "security:k", "30"),
    ("INCR", "security:n"),
    ("HSET", "security:h", "f", "v"),
    ("HGETALL", "security:h"),
    ("SCAN", "0", "MATCH", "security:*"),
    ("DEL", "security:k", "security:n", "security:h"),
    ("PING",),
    ("INFO", "memory"),
]

EXPORTER_FORBIDDEN = [
    ("SET", "security:x", "1"),
    ("DEL", "security:x"),
    ("HSET", "security:h", "f", "v"),
    ("EXPIRE", "security:x", "1"),
    ("FLUSHALL",),
    ("CONFIG", "SET", "maxmemory", "1"),
    ("EVAL", "return redis.call('SET', 'security:x', '1')", "0"),
    ("ACL", "LIST"),
]


def _client(stack, user: str | None, secret: str | None) -> redis.Redis:
    s = stack.settings
    password = stack.local.secrets()[secret] if secret else None
    return redis.Redis(host=s.bind_address, port=s.redis_port, username=user, password=password, socket_timeout=5)


@pytest.fixture
def app(stack):
    client = _client(stack, sec.REDIS_APP_USER, "redis_app")
    yield client
    client.close()


@pytest.fixture
def exporter(stack):
    client = _client(stack, sec.REDIS_EXPORTER_USER, "redis_exporter")
    yield client
    client.close()


def test_unauthenticated_clients_are_refused(stack):
    client = _client(stack, None, None)
    with pytest.raises(redis.AuthenticationError):
        client.ping()
    client.close()


@pytest.mark.parametrize("secret", ["", "redis_app", "redis_exporter", "postgres"])
def test_the_default_user_is_disabled(stack, secret):
    """With `user default off` no password works for it, not even another user's."""
    password = stack.local.secrets()[secret] if secret else ""
    s = stack.settings
    # A raw RESP exchange: the client library would send HELLO first and hide AUTH's own reply.
    args = [b"AUTH", b"default", password.encode()]
    request = b"*3\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
    with socket.create_connection((s.bind_address, s.redis_port), timeout=5) as conn:
        conn.sendall(request)
        reply = conn.recv(512).decode()
    assert reply.startswith("-WRONGPASS"), reply
    assert "disabled" in reply


@pytest.mark.parametrize("command", APP_FORBIDDEN, ids=[" ".join(c[:2]) for c in APP_FORBIDDEN])
def test_the_app_user_cannot_run_admin_or_dangerous_commands(app, command):
    with pytest.raises(redis.ResponseError, match=REFUSED):
        app.execute_command(*command)


@pytest.mark.parametrize("command", APP_ALLOWED, ids=[c[0] for c in APP_ALLOWED])
def test_the_app_user_can_run_what_the_cache_needs(app, command):
    app.execute_command(*command)


@pytest.mark.parametrize("command", EXPORTER_FORBIDDEN, ids=[" ".join(c[:2])[:20] for c in EXPORTER_FORBIDDEN])
def test_the_exporter_user_cannot_write(app, exporter, command):
    app.set("security:x", "1")
    with pytest.raises(redis.ResponseError, match=REFUSED):
        exporter.execute_command(*command)
    assert app.get("security:x") == b"1"
    app.delete("security:x")


def test_the_exporter_user_can_read_what_it_scrapes(exporter):
    assert exporter.ping()
    assert "redis_version" in exporter.info()
