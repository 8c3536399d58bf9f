"""The state-directory ownership walk that `agentdb up` runs on every start, also on a running stack."""

import os

import pytest

from infra.runner import _chown_tree

NOBODY = (65534, 65534)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")


def owner_of(path):
    st = path.lstat()
    return st.st_uid, st.st_gid


@pytest.fixture
def state(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "postgresql.conf").write_text("x")
    live = tmp_path / "data"
    (live / "postgres" / "base").mkdir(parents=True)
    (live / "postgres" / "base" / "pg_internal.init").write_text("x")
    return tmp_path, live


def test_first_walk_gives_everything_to_the_service_user(state):
    root, live = state
    _chown_tree(root, NOBODY, live)
    for path in [root, *root.rglob("*")]:
        assert owner_of(path) == NOBODY, path


def test_files_written_later_by_root_are_given_away_on_the_next_walk(state):
    root, live = state
    _chown_tree(root, NOBODY, live)
    (root / "etc" / "pgbouncer.ini").write_text("x")
    _chown_tree(root, NOBODY, live)
    assert owner_of(root / "etc" / "pgbouncer.ini") == NOBODY


def test_a_service_owned_data_directory_is_not_walked(state):
    # A running PostgreSQL creates and removes files in its data directory at any moment; the
    # walk must not list it. A root-owned marker inside shows whether the walk went in.
    root, live = state
    _chown_tree(root, NOBODY, live)
    marker = live / "postgres" / "base" / "marker"
    marker.write_text("x")
    _chown_tree(root, NOBODY, live)
    assert owner_of(marker) == (0, 0)


def test_a_path_that_vanishes_is_skipped(state):
    root, _ = state
    _chown_tree(root / "data" / "postgres" / "base" / "gone", NOBODY, root / "data")


def test_symlinks_are_left_alone(state):
    root, live = state
    (root / "link").symlink_to("/etc/hostname")
    _chown_tree(root, NOBODY, live)
    assert owner_of(root / "link") == (0, 0)
    assert os.stat("/etc/hostname").st_uid == 0
