"""Further pgBackRest repositories (`agentdb:backupRepos`): typed entries rendered as repo2, repo3, ...

Repository 1 is always the stack's repository host. Each further entry is one of:

- `posix`: a directory the repository host keeps a second repository in (another disk, a mount of
  another machine). Tested here (tests/faults/test_second_repository.py).
- `s3`: an S3-compatible object store (endpoint, bucket, region, path in the bucket); its access key
  and secret key are secrets, read from files the operator puts in the stack's secrets directory
  (`backup-repo<N>-s3-key`, `backup-repo<N>-s3-key-secret`). Untested here: the machine has no
  object store.
- `host`: another pgBackRest repository host, reached over TLS with the certificate files named in
  the entry. The database side pushes its WAL there too; pgBackRest takes backups only on a
  repository host, so backups into it are scheduled on that host. Untested here.

The repository host renders posix and s3 entries (it writes them); the database side reaches them
through the repository host, as it reaches repository 1. A `host` entry is the database side's own.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel


def _plain(value: str, what: str) -> str:
    # Every value lands on a line of pgbackrest.conf: a line break would add options of its own.
    if not value or any(not c.isprintable() or c.isspace() for c in value):
        raise ValueError(f"{what} {value!r} must be non-empty, without spaces or control characters")
    return value


class _Entry(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class PosixRepo(_Entry):
    """A second repository in a directory of the repository host."""

    type: Literal["posix"]
    path: str = Field(description="absolute path of the repository on the repository host")

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        _plain(value, "path")
        if not value.startswith("/") or ".." in value.split("/") or value.rstrip("/") == "":
            raise ValueError(f"path {value!r} must be absolute, not the root, and hold no '..' parts")
        return value.rstrip("/")


class S3Repo(_Entry):
    """An S3-compatible object store, written by the repository host."""

    type: Literal["s3"]
    endpoint: str = Field(description="the store's host name, e.g. s3.eu-west-1.amazonaws.com or minio.internal")
    bucket: str
    region: str
    path: str = Field("/agentdb", description="where in the bucket the repository is")
    uri_style: Literal["host", "path"] = Field("host", description="path for most self-hosted stores")

    @field_validator("endpoint", "bucket", "region", "path")
    @classmethod
    def _values(cls, value: str) -> str:
        return _plain(value, "value")


class HostRepo(_Entry):
    """Another pgBackRest repository host, reached over TLS by the database side."""

    type: Literal["host"]
    host: str
    port: int = Field(8432, ge=1, le=65535)
    config: str = Field("/etc/pgbackrest/pgbackrest.conf", description="its pgbackrest.conf, on that host")
    ca_file: str
    cert_file: str
    key_file: str

    @field_validator("host", "config", "ca_file", "cert_file", "key_file")
    @classmethod
    def _values(cls, value: str) -> str:
        return _plain(value, "value")


RepoEntry = Annotated[PosixRepo | S3Repo | HostRepo, Field(discriminator="type")]


def s3_secret_names(index: int) -> tuple[str, str]:
    """The secret files holding repository `index`'s access key and secret key."""
    return f"backup-repo{index}-s3-key", f"backup-repo{index}-s3-key-secret"
