"""Run the Pulumi program once per committed stack file under mocks; policy tests read the records."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mockstack import STACKS, Deployment, deploy  # noqa: E402

_cache: dict[str, Deployment] = {}


@pytest.fixture(scope="session")
def deployments() -> dict[str, Deployment]:
    """Stack name -> what `pulumi up` would declare for Pulumi.<stack>.yaml."""
    for stack in STACKS:
        if stack not in _cache:
            _cache[stack] = deploy(stack)
    return _cache
