"""sql/<db>/privileges.yaml: the four files parse, and a malformed one is refused with what is wrong."""

from __future__ import annotations

import pytest

from infra import privileges
from infra.databases import DATABASES


@pytest.mark.parametrize("key", list(DATABASES))
def test_every_database_has_a_valid_privileges_file(key):
    spec = privileges.load(DATABASES[key])
    assert spec.path.exists()
    assert spec.readonly_volatile == {}, "the readonly roles run no VOLATILE function"


BAD = {
    "unknown key": ("grants: {}", "unknown keys ['grants']"),
    "not a mapping": ("- a\n- b", "expected a mapping"),
    "not yaml": ("security_definer: [", "not valid YAML"),
    "no parentheses": ("security_definer:\n  f:\n    roles: []\n    why: x", "'f' is not a function signature"),
    "unknown role": (
        "security_definer:\n  f():\n    roles: [admin]\n    why: x",
        "f(): roles must be a list of app, readonly",
    ),
    "no why": ("security_definer:\n  f():\n    roles: [app]", "f(): expected exactly the keys roles and why"),
    "empty why": ("security_definer:\n  f():\n    roles: [app]\n    why: ''", "f(): say why"),
    "allow-list without why": ("readonly_volatile:\n  f(): ''", "readonly_volatile: f(): say why"),
}


@pytest.mark.parametrize(("text", "message"), BAD.values(), ids=BAD.keys())
def test_a_malformed_privileges_file_is_refused(tmp_path, text, message):
    path = tmp_path / "privileges.yaml"
    path.write_text(text)
    with pytest.raises(privileges.PrivilegesError) as exc:
        privileges.parse(path)
    assert str(path) in str(exc.value) and message in str(exc.value)
