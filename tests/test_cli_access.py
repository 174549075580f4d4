"""`timpora keys` and `timpora audit` through Typer's test runner, on files under tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from serving.keys import KeyStore, Role
from serving.request_log import AuditLog
from timpora.cli_access import audit_app, keys_app

runner = CliRunner()
WIDE = {"COLUMNS": "200"}  # rich tables would otherwise wrap cells at 80 columns


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    return tmp_path / "serving" / "keys.json"


def keys(*args: str | Path) -> Result:
    return runner.invoke(keys_app, [str(a) for a in args], env=WIDE)


def _token(output: str) -> str:
    [token] = [word for word in output.split() if word.startswith("tpk_")]
    return token


def test_create_prints_a_token_that_authenticates(keys_file: Path) -> None:
    result = keys("create", "--role", "supervisor", "--label", "team [north]", "--keys-file", keys_file)
    assert result.exit_code == 0, result.output
    key = KeyStore(keys_file).authenticate(_token(result.output))
    assert key is not None and key.role is Role.SUPERVISOR and key.label == "team [north]"
    assert key.key_id in result.output
    assert "not be shown again" in result.output and "Authorization: Bearer" in result.output


def test_create_default_label_is_role_and_date(keys_file: Path) -> None:
    result = keys("create", "--role", "analyst", "--keys-file", keys_file)
    assert result.exit_code == 0, result.output
    [key] = KeyStore(keys_file).list()
    assert key.label.startswith("analyst-20")


def test_unknown_role_exits_1_with_a_message(keys_file: Path) -> None:
    result = keys("create", "--role", "root", "--keys-file", keys_file)
    assert result.exit_code == 1
    assert "error:" in result.stderr and "root" in result.stderr and "supervisor" in result.stderr
    assert "Traceback" not in result.output
    assert not keys_file.exists()


def test_label_with_a_terminal_escape_exits_1_with_a_message(keys_file: Path) -> None:
    result = keys("create", "--role", "analyst", "--label", "ops\x1b[2J\nroot", "--keys-file", keys_file)
    assert result.exit_code == 1
    assert "error:" in result.stderr and "control" in result.stderr
    assert "Traceback" not in result.output and not keys_file.exists()


def test_create_makes_the_audit_secret_beside_the_keys_file(keys_file: Path) -> None:
    assert keys("create", "--role", "analyst", "--keys-file", keys_file).exit_code == 0
    secret = keys_file.parent / "audit.secret"
    assert secret.stat().st_mode & 0o777 == 0o600
    assert secret.read_text().strip() not in keys("list", "--keys-file", keys_file).output


def test_list_shows_keys_but_no_secrets(keys_file: Path) -> None:
    store = KeyStore(keys_file)
    kept, token = store.create("system", "nightly [batch]")
    gone, _ = store.create("analyst", "old")
    store.revoke(gone.key_id)
    hashes = [line for line in keys_file.read_text().splitlines() if "sha256" in line]

    result = keys("list", "--keys-file", keys_file)
    assert result.exit_code == 0, result.output
    assert kept.key_id in result.output and "nightly [batch]" in result.output
    assert gone.key_id not in result.output
    assert token not in result.output and token.split("_", 2)[2] not in result.output
    assert all(line.split('"')[3] not in result.output for line in hashes)

    everything = keys("list", "--all", "--keys-file", keys_file)
    assert gone.key_id in everything.output and "old" in everything.output


def test_list_without_keys(keys_file: Path) -> None:
    result = keys("list", "--keys-file", keys_file)
    assert result.exit_code == 0 and "No active keys" in result.output


def test_revoke(keys_file: Path) -> None:
    key, token = KeyStore(keys_file).create("supervisor", "s")
    result = keys("revoke", key.key_id, "--keys-file", keys_file)
    assert result.exit_code == 0, result.output
    assert "Revoked" in result.output and key.key_id in result.output
    assert KeyStore(keys_file).authenticate(token) is None

    again = keys("revoke", key.key_id, "--keys-file", keys_file)
    assert again.exit_code == 1 and "already revoked" in again.stderr
    unknown = keys("revoke", "k_00000000", "--keys-file", keys_file)
    assert unknown.exit_code == 1 and "k_00000000" in unknown.stderr


def test_demo_prints_one_token_per_role(keys_file: Path) -> None:
    first = keys("demo", "--keys-file", keys_file)
    assert first.exit_code == 0, first.output
    lines = first.output.splitlines()
    assert [line.split()[0] for line in lines] == [r.value for r in Role]
    store = KeyStore(keys_file)
    for line in lines:
        role, token = line.split()
        key = store.authenticate(token)
        assert key is not None and key.role == role
    second = keys("demo", "--keys-file", keys_file)
    assert all(store.authenticate(line.split()[1]) is None for line in lines)
    assert len(second.output.splitlines()) == 3


def test_corrupt_keys_file_is_an_error_not_a_traceback(keys_file: Path) -> None:
    keys_file.parent.mkdir(parents=True)
    keys_file.write_text("{oops")
    result = keys("list", "--keys-file", keys_file)
    assert result.exit_code == 1
    assert "corrupt keys file" in result.stderr and result.exception is not None
    assert isinstance(result.exception, SystemExit)


def test_audit_tail_shows_records(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    for i in range(30):
        log.append(
            {
                "key_id": "k_0123abcd",
                "key_label": "team [north]",
                "role": "supervisor",
                "endpoint": "/inspection_list",
                "status": 200,
                "as_of": "2025-06-30",
                "n_cases": 50,
                "model_version": "3",
                "list_id": f"list-{i:02d}",
            }
        )
    args = ["tail", "-n", "5", "--audit-log", str(log.path)]
    result = runner.invoke(audit_app, args, env=WIDE)
    assert result.exit_code == 0, result.output
    assert "team [north]" in result.output and "/inspection_list" in result.output
    assert "list-29" in result.output and "list-25" in result.output and "list-24" not in result.output

    raw = runner.invoke(audit_app, [*args, "--json"], env=WIDE)
    assert raw.exit_code == 0
    assert [r["list_id"] for r in map(__import__("json").loads, raw.output.splitlines())] == [
        f"list-{i}" for i in range(25, 30)
    ]


def test_audit_tail_in_a_narrow_pipe_keeps_every_value_whole(tmp_path: Path) -> None:
    """Piped (not a terminal, 80 columns), tail prints tab-separated lines, not a table that cuts cells."""
    log = AuditLog(tmp_path / "audit.jsonl")
    label = "kantor-imigrasi-cilegon-supervisor-shift-b"
    record = {"key_label": label, "role": "supervisor", "endpoint": "/inspection_list", "status": 200}
    log.append(record | {"list_id": "L-2026-06-30-1a2b3c4d", "time": "2026-06-30T08:00:00.000Z"})
    result = runner.invoke(audit_app, ["tail", "--audit-log", str(log.path)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    header, row = result.output.splitlines()
    assert header.split("\t")[:4] == ["time", "role", "key_label", "endpoint"]
    assert row.split("\t")[2] == label and "L-2026-06-30-1a2b3c4d" in row.split("\t")


def test_demo_keys_if_missing_keeps_the_keys_in_use(tmp_path: Path) -> None:
    keys = str(tmp_path / "keys.json")
    first = runner.invoke(keys_app, ["demo", "--if-missing", "--keys-file", keys], env=WIDE)
    assert first.exit_code == 0 and first.output.count("tpk_") == 3, first.output
    again = runner.invoke(keys_app, ["demo", "--if-missing", "--keys-file", keys], env=WIDE)
    assert again.exit_code == 0 and "stay in use" in again.output and "tpk_" not in again.output
    store = KeyStore(Path(keys))
    assert len(store.list(include_revoked=False)) == 3 and len(store.list(include_revoked=True)) == 3
    rotated = runner.invoke(keys_app, ["demo", "--keys-file", keys], env=WIDE)
    assert rotated.exit_code == 0 and len(store.list(include_revoked=True)) == 6  # plain demo rotates


def test_audit_tail_without_a_log(tmp_path: Path) -> None:
    result = runner.invoke(audit_app, ["tail", "--audit-log", str(tmp_path / "none.jsonl")], env=WIDE)
    assert result.exit_code == 0 and "No audit records" in result.output


def test_every_option_has_help() -> None:
    import typer.main

    for app in (keys_app, audit_app):
        group = typer.main.get_command(app)
        for command in group.commands.values():  # type: ignore[attr-defined]
            assert command.help, command.name
            for param in command.params:
                assert getattr(param, "help", None), f"{command.name} {param.name}"


def test_audit_hash_ids_recomputes_a_records_digest(tmp_path: Path) -> None:
    from serving.request_log import hash_ids, load_or_create_secret

    secret_file = tmp_path / "audit.secret"
    secret = load_or_create_secret(secret_file)
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("P0004132\nP0000007\n")
    result = runner.invoke(audit_app, ["hash-ids", str(ids_file), "--secret", str(secret_file)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == hash_ids(["P0004132", "P0000007"], secret)
    assert secret.hex() not in result.output
