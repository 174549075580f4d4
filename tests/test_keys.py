"""API keys: tokens authenticate only while active, the file holds no secret, changes are seen live."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest

from serving.keys import (
    ApiKey,
    KeyStore,
    KeyStoreError,
    Role,
    create_demo_keys,
)


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    return KeyStore(tmp_path / "serving" / "keys.json")


def test_create_authenticate_revoke_round_trip(store: KeyStore) -> None:
    key, token = store.create(Role.SUPERVISOR, "team north")
    assert key.key_id.startswith("k_") and len(key.key_id) == 10
    assert token.startswith(f"tpk_{key.key_id[2:]}_")
    assert key.role is Role.SUPERVISOR and key.label == "team north" and key.active
    assert key.created_at.endswith("Z") and len(key.created_at) == len("2025-01-01T00:00:00Z")
    assert store.authenticate(token) == key
    assert store.list() == [key]

    revoked = store.revoke(key.key_id)
    assert not revoked.active and revoked.revoked_at is not None
    assert store.authenticate(token) is None
    assert store.list() == [revoked]
    assert store.list(include_revoked=False) == []


def test_role_given_as_text(store: KeyStore) -> None:
    key, _ = store.create("analyst", "a")
    assert key.role is Role.ANALYST


def test_keys_are_independent(store: KeyStore) -> None:
    (a, token_a), (b, token_b) = store.create("system", "a"), store.create("analyst", "b")
    assert a.key_id != b.key_id and token_a != token_b
    store.revoke(a.key_id)
    assert store.authenticate(token_a) is None
    assert store.authenticate(token_b) == b


def _tampered(token: str) -> list[str]:
    prefix, id_hex, secret = token[:4], token[4:12], token[13:]
    other_hex = format((int(id_hex, 16) + 1) % 16**8, "08x")
    flipped = ("A" if secret[0] != "A" else "B") + secret[1:]
    return (
        [
            f"{prefix}{id_hex}_{flipped}",  # changed secret
            f"{prefix}{id_hex}_{secret[:-1]}",  # truncated secret
            f"{prefix}{id_hex}_{secret}x",  # extended secret
            f"{prefix}{other_hex}_{secret}",  # changed key id
            f"{prefix}{id_hex}_",  # no secret
            f"xyz_{id_hex}_{secret}",  # wrong prefix
            token[4:],  # no prefix
            f" {token}",
            f"Bearer {token}",
            f"{prefix}{id_hex}_{secret}\u00e9",  # non-ASCII
            token + "a" * 300,  # oversized
            "",
            "garbage",
            "tpk_",
            "tpk__",
            "tpk_zzzzzzzz_secret",
        ]
        + ([f"{prefix}{id_hex.upper()}_{secret}"] if id_hex.upper() != id_hex else [])
    )  # id not canonical


def test_tampered_tokens_are_rejected(store: KeyStore) -> None:
    _, token = store.create("supervisor", "s")
    assert store.authenticate(token) is not None
    for bad in _tampered(token):
        assert store.authenticate(bad) is None, bad


def test_token_for_another_key_id_is_rejected(store: KeyStore) -> None:
    _, token_a = store.create("analyst", "a")
    b, _ = store.create("system", "b")
    secret_a = token_a.split("_", 2)[2]
    assert store.authenticate(f"tpk_{b.key_id[2:]}_{secret_a}") is None


def test_file_holds_no_secret_and_is_private(store: KeyStore) -> None:
    key, token = store.create("system", "batch job")
    secret = token.split("_", 2)[2]
    text = store.path.read_text()
    assert secret not in text and token not in text
    data = json.loads(text)
    assert data["version"] == 1
    [entry] = data["keys"]
    assert set(entry) == {"key_id", "label", "role", "created_at", "revoked_at", "sha256"}
    assert entry["key_id"] == key.key_id and entry["role"] == "system" and len(entry["sha256"]) == 64
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    store.revoke(key.key_id)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    leftovers = [p.name for p in store.path.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_missing_file_means_no_keys(store: KeyStore) -> None:
    assert store.list() == []
    assert store.authenticate("tpk_0123abcd_whatever") is None
    assert not store.path.exists()


@pytest.mark.parametrize("role", ["root", "", "supervisors"])
def test_unknown_role_is_refused(store: KeyStore, role: str) -> None:
    with pytest.raises(KeyStoreError, match="system, supervisor, analyst"):
        store.create(role, "x")
    assert not store.path.exists()


@pytest.mark.parametrize("label", ["", "   "])
def test_empty_label_is_refused(store: KeyStore, label: str) -> None:
    with pytest.raises(KeyStoreError, match="label"):
        store.create("analyst", label)


@pytest.mark.parametrize(
    "label", ["team\nnorth", "x\x1b[31mred", "a\rb", "tab\there", "bell\x07", "line\u2028sep", "z\u200bw"]
)
def test_label_with_control_characters_is_refused(store: KeyStore, label: str) -> None:
    with pytest.raises(KeyStoreError, match="control or invisible characters"):
        store.create("analyst", label)
    assert not store.path.exists()


def test_overlong_label_is_refused_and_ordinary_ones_pass(store: KeyStore) -> None:
    with pytest.raises(KeyStoreError, match="at most"):
        store.create("analyst", "x" * 201)
    key, _ = store.create("analyst", "Équipe nord [Jakarta] #2")
    assert key.label == "Équipe nord [Jakarta] #2"


def test_revoke_unknown_or_revoked_names_the_id(store: KeyStore) -> None:
    key, _ = store.create("analyst", "a")
    with pytest.raises(KeyStoreError, match="k_00000000"):
        store.revoke("k_00000000")
    store.revoke(key.key_id)
    with pytest.raises(KeyStoreError, match=f"{key.key_id}.*already revoked"):
        store.revoke(key.key_id)


def test_revocation_is_seen_by_a_running_store(store: KeyStore) -> None:
    key, token = store.create("supervisor", "s")
    server = KeyStore(store.path)  # as a service would hold it
    assert server.authenticate(token) == key
    KeyStore(store.path).revoke(key.key_id)  # as `timpora keys revoke` would, in another process
    assert server.authenticate(token) is None
    later, later_token = KeyStore(store.path).create("analyst", "new")
    assert server.authenticate(later_token) == later


def test_unchanged_file_is_not_reread(store: KeyStore, monkeypatch: pytest.MonkeyPatch) -> None:
    _, token = store.create("system", "s")
    server = KeyStore(store.path)
    assert server.authenticate(token) is not None
    import serving.keys as keys_module

    def fail(text: str) -> object:
        raise AssertionError("re-parsed an unchanged file")

    monkeypatch.setattr(keys_module, "_parse_file", fail)
    for _ in range(3):
        assert server.authenticate(token) is not None


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        '{"version": 2, "keys": []}',
        '{"version": 1}',
        '{"version": 1, "keys": [{"key_id": "k_0123abcd"}]}',
        '{"version": 1, "keys": [{"key_id": "k_0123abcd", "label": "x", "role": "root", '
        '"created_at": "2025-01-01T00:00:00Z", "revoked_at": null, "sha256": "' + "0" * 64 + '"}]}',
        b"\xff\xfe".decode("latin-1"),
    ],
)
def test_corrupt_file_names_the_file(store: KeyStore, content: str) -> None:
    store.path.parent.mkdir(parents=True)
    store.path.write_text(content, encoding="latin-1")
    for call in (
        store.list,
        lambda: store.authenticate("tpk_0123abcd_s"),
        lambda: store.create("system", "x"),
    ):
        with pytest.raises(KeyStoreError, match=re.escape(f"corrupt keys file {store.path}")):
            call()


def test_file_corrupted_while_running_is_an_error(store: KeyStore) -> None:
    _, token = store.create("system", "s")
    assert store.authenticate(token) is not None
    store.path.write_text("{")
    with pytest.raises(KeyStoreError, match="corrupt"):
        store.authenticate(token)


def test_demo_keys_replace_previous_demo_keys(store: KeyStore) -> None:
    other, other_token = store.create("supervisor", "real supervisor")
    first = create_demo_keys(store)
    assert set(first) == set(Role)
    for role, token in first.items():
        key = store.authenticate(token)
        assert key is not None and key.role is role and key.label == f"demo-{role.value}"
    second = create_demo_keys(store)
    assert all(store.authenticate(token) is None for token in first.values())
    assert all(store.authenticate(token) is not None for token in second.values())
    assert store.authenticate(other_token) == other
    active = store.list(include_revoked=False)
    assert sorted(k.label for k in active) == ["demo-analyst", "demo-supervisor", "demo-system", other.label]
    assert len(store.list()) == 7


def test_api_key_carries_no_hash(store: KeyStore) -> None:
    key, _ = store.create("analyst", "a")
    assert set(ApiKey.__dataclass_fields__) == {"key_id", "label", "role", "created_at", "revoked_at"}
    assert "sha256" not in repr(key)
