"""The `timpora` command line: the app and its subcommands, registered in the order of the workflow.

The commands live by group: `cli_data` (simulate, validate, ingest, features),
`cli_models` (train, promote, retrain, rollback, models, rank, drift), `cli_loop`
(simulate-loop), `cli_access` (keys, audit), `cli_lists` (lists, assign,
outcomes-template), `cli_serve` (serve) and `cli_settings` (settings); what they share is in `cli_common`.
Each imports its packages inside the commands, so `timpora --help` stays fast.
"""

from __future__ import annotations

import typer

from timpora import cli_access, cli_data, cli_lists, cli_loop, cli_models, cli_serve, cli_settings

EXIT_CODES = (
    "Exit codes (every command): 0 done; 1 runtime or data error; 2 usage error or unknown filter value; "
    "3 not registered (train, retrain); 4 not promoted (promote, retrain)."
)

app = typer.Typer(
    name="timpora",
    help=(
        "Timpora: ranked, explained inspection lists for immigration supervision teams. "
        "Workflow: simulate (or bring data) -> validate -> features -> train -> rank -> serve."
    ),
    epilog=EXIT_CODES,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.command("simulate")(cli_data.simulate)
app.command("validate")(cli_data.validate)
app.command("ingest")(cli_data.ingest)
app.command("features")(cli_data.features)
app.command("train")(cli_models.train)
app.command("promote")(cli_models.promote)
app.command("retrain")(cli_models.retrain)
app.command("simulate-loop")(cli_loop.simulate_loop)
app.command("rollback")(cli_models.rollback)
app.command("models")(cli_models.models)
app.command("rank")(cli_models.rank)
app.command("drift")(cli_models.drift)
app.add_typer(cli_access.keys_app, name="keys", help="API keys for the service: create, list, revoke, demo.")
app.add_typer(cli_access.audit_app, name="audit", help="The service's audit log of scoring requests.")
app.command("lists")(cli_lists.lists)
app.command("assign")(cli_lists.assign)
app.command("outcomes-template")(cli_lists.outcomes_template)
app.command("serve")(cli_serve.serve)
app.command("settings")(cli_settings.show_settings)
