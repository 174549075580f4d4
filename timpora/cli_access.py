"""`timpora keys` and `timpora audit`: who may call the scoring service, and what they asked.

Wiring only: the key store and the audit log live in `serving.keys` and
`serving.request_log`, imported inside the commands so that `--help` stays fast.
Data (labels, tokens, log records) is printed with markup off: a label may hold "[".
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from timpora.cli_common import console, fail, say, settings

if TYPE_CHECKING:
    from serving.keys import KeyStore

keys_app = typer.Typer(
    help="API keys for the scoring service: create, list, revoke. Only a hash of each key is stored.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
audit_app = typer.Typer(
    help="The scoring service's append-only audit log (one record per request).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

KeysFile = Annotated[
    Path | None,
    typer.Option(
        "--keys-file",
        help="Keys file. Default: TIMPORA_KEYS_FILE, else <home>/serving/keys.json.",
    ),
]
AuditFile = Annotated[
    Path | None,
    typer.Option(
        "--audit-log",
        help="Audit log. Default: TIMPORA_AUDIT_LOG, else <home>/serving/audit.jsonl.",
    ),
]


def _store(keys_file: Path | None) -> KeyStore:
    from serving.keys import KeyStore

    return KeyStore(keys_file or settings().keys_path)


def _secret_path(keys_file: Path | None) -> Path:
    """The audit secret: beside --keys-file when given, else the settings' (`TIMPORA_AUDIT_SECRET`)."""
    return keys_file.parent / "audit.secret" if keys_file else settings().audit_secret_path


def _ensure_audit_secret(keys_file: Path | None) -> None:
    """Create the audit log's HMAC secret with the keys file (mode 0600; it is never printed)."""
    from serving.request_log import AuditSecretError, load_or_create_secret

    try:
        load_or_create_secret(_secret_path(keys_file))
    except AuditSecretError as exc:
        fail(str(exc))


@keys_app.command("create")
def create_key(
    role: Annotated[str, typer.Option(help="Role of the key: system, supervisor or analyst.")],
    label: Annotated[
        str | None, typer.Option(help="Who or what the key is for. Default: <role>-<today's date>.")
    ] = None,
    keys_file: KeysFile = None,
) -> None:
    """Create a key and print it once: only its hash is stored."""
    from serving.keys import KeyStoreError

    if label is None:
        label = f"{role.strip().lower()}-{dt.date.today().isoformat()}"
    try:
        key, token = _store(keys_file).create(role, label)
    except KeyStoreError as exc:
        fail(str(exc))
    _ensure_audit_secret(keys_file)
    say(f"Created key {key.key_id} ({key.role.value}, label {key.label!r}):")
    say(token)
    say("It will not be shown again: store it now. Send it as the header 'Authorization: Bearer <key>'.")
    say(f"Key id (public, for `timpora keys revoke`): {key.key_id}")


@keys_app.command("list")
def list_keys(
    show_all: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    keys_file: KeysFile = None,
) -> None:
    """List keys (active only unless --all): id, label, role, dates. Never prints secrets or hashes."""
    from serving.keys import KeyStoreError

    store = _store(keys_file)
    try:
        keys = store.list(include_revoked=show_all)
    except KeyStoreError as exc:
        fail(str(exc))
    if not keys:
        say(f"No {'' if show_all else 'active '}keys in {store.path}.")
        return
    table = Table("key_id", "label", "role", "created", "revoked")
    for key in keys:
        table.add_row(
            Text(key.key_id, no_wrap=True),
            Text(key.label),
            key.role.value,
            key.created_at,
            key.revoked_at or "",
        )
    console.print(table)


@keys_app.command("revoke")
def revoke_key(
    key_id: Annotated[str, typer.Argument(help="Public id of the key, like k_3f9a1c2e (see `keys list`).")],
    keys_file: KeysFile = None,
) -> None:
    """Revoke a key; a running service refuses it from its next request."""
    from serving.keys import KeyStoreError

    try:
        key = _store(keys_file).revoke(key_id)
    except KeyStoreError as exc:
        fail(str(exc))
    say(f"Revoked {key.key_id} ({key.role.value}, label {key.label!r}) at {key.revoked_at}.")


@keys_app.command("demo")
def demo_keys(
    keys_file: KeysFile = None,
    if_missing: Annotated[
        bool,
        typer.Option(
            "--if-missing",
            help="Keep the demo keys in use when every role has one (their users stay signed in).",
        ),
    ] = False,
) -> None:
    """One demo key per role (labelled demo-<role>), revoking earlier demo keys. For local demos only."""
    from serving.keys import KeyStoreError, Role, create_demo_keys

    if if_missing:
        try:
            active = {key.label for key in _store(keys_file).list(include_revoked=False)}
        except KeyStoreError as exc:
            fail(str(exc))
        if {f"demo-{role.value}" for role in Role} <= active:
            say("Demo keys exist, one per role, and stay in use (only their hashes are stored, so they are")
            say("not shown again); `timpora keys demo` makes new ones and signs their users out.")
            return
    try:
        tokens = create_demo_keys(_store(keys_file))
    except KeyStoreError as exc:
        fail(str(exc))
    _ensure_audit_secret(keys_file)
    for role, token in tokens.items():
        say(f"{role.value}  {token}")


@audit_app.callback()
def audit() -> None:
    """The scoring service's append-only audit log (one record per request)."""
    # A callback keeps `audit` a command group even with one subcommand, run alone or attached.


@audit_app.command("tail")
def audit_tail(
    lines: Annotated[int, typer.Option("-n", "--lines", min=1, help="How many of the latest records.")] = 20,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the raw JSON lines instead of a table.")
    ] = False,
    audit_log: AuditFile = None,
) -> None:
    """Show the latest audit records, oldest first."""
    from serving.request_log import AuditLog

    log = AuditLog(audit_log or settings().audit_path)
    try:
        records = log.tail(lines)
    except OSError as exc:
        fail(f"cannot read audit log {log.path}: {exc.strerror or exc}")
    if as_json:
        for record in records:
            typer.echo(json.dumps(record, ensure_ascii=False))
        return
    if not records:
        say(f"No audit records in {log.path}.")
        return
    columns = (
        "time",
        "role",
        "key_label",
        "endpoint",
        "status",
        "as_of",
        "n_cases",
        "model_version",
        "list_id",
    )
    if not console.is_terminal:  # a pipe or a file: tab-separated, whole values (a table would cut them)
        typer.echo("\t".join(columns))  # plain text: a rich console would expand the tabs
        for record in records:
            values = ("" if record.get(c) is None else str(record.get(c)) for c in columns)
            typer.echo("malformed" if "malformed" in record and len(record) == 1 else "\t".join(values))
        return
    table = Table(
        "time", "role", "key label", "endpoint", "status", "as_of", "cases", "model version", "list id"
    )
    for record in records:
        if "malformed" in record and len(record) == 1:
            table.add_row("malformed", *[""] * (len(columns) - 1))
            continue
        table.add_row(*(Text("" if record.get(c) is None else str(record.get(c))) for c in columns))
    console.print(table)


@audit_app.command("hash-ids")
def audit_hash_ids(
    ids_file: Annotated[Path, typer.Argument(help="The list's person ids, one a line, in the list's order.")],
    secret: Annotated[
        Path | None,
        typer.Option(help="Audit secret file. Default: TIMPORA_AUDIT_SECRET, else beside the keys file."),
    ] = None,
) -> None:
    """Print the `ids_hmac` the audit log holds for a list of ids, to check a record against a list."""
    from serving.request_log import AuditSecretError, hash_ids, read_secret

    try:
        ids = [line.strip() for line in ids_file.read_text(encoding="utf-8").splitlines() if line.strip()]
        key = read_secret(secret or settings().audit_secret_path)
    except (OSError, UnicodeDecodeError, AuditSecretError) as exc:
        fail(str(exc))
    typer.echo(hash_ids(ids, key))
