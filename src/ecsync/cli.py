"""The command line: parses, loads config, calls the service layer, owns console output."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ecsync import __version__
from ecsync.app import App, configure_logging, open_app
from ecsync.config import Settings, load_settings
from ecsync.errors import EcsyncError, ImportRejected, NotImplementedYet, UsageError
from ecsync.listings_csv import parse_listings_csv
from ecsync.store.engine import transaction
from ecsync.store.repo import ListingKey, account_summaries, apply_import, import_conflicts

log = logging.getLogger(__name__)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

app = typer.Typer(
    name="ecsync",
    help="Keep BASE and eBay listings in line with their Amazon Japan source offers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
accounts_app = typer.Typer(help="Channel accounts.", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")


class State:
    config: Path | None = None


STATE = State()


@app.callback()
def _global(
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Config file (else $ECSYNC_CONFIG, else ./ecsync.toml)."),
    ] = None,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        out.print(f"ecsync {__version__}")
        raise typer.Exit(0)
    STATE.config = config


def _settings(*, owns_log_file: bool = False) -> Settings:
    settings = load_settings(STATE.config)
    configure_logging(settings, owns_log_file=owns_log_file)
    return settings


@contextmanager
def _opened(*, migrate: bool = False) -> Iterator[App]:
    application = open_app(_settings(), migrate=migrate)
    try:
        yield application
    finally:
        application.close()


def _not_yet(command: str) -> None:
    raise NotImplementedYet(f"`ecsync {command}`: not implemented yet")


@app.command()
def init() -> None:
    """Create the database, or migrate it to the current schema (idempotent)."""
    with _opened(migrate=True) as application:
        out.print(f"database ready: {application.engine.url.render_as_string(hide_password=True)}")


@accounts_app.command("list")
def accounts_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The configured channel accounts and their state."""
    with _opened() as application:
        with transaction(application.sessions) as session:
            summaries = account_summaries(session)
        configured = {a.name: a for a in application.settings.accounts}
    if as_json:
        out.print_json(
            data=[
                {
                    "name": s.name,
                    "platform": s.platform,
                    "active": s.active,
                    "configured": s.name in configured,
                    "pricing": configured[s.name].pricing if s.name in configured else None,
                    "endpoint": configured[s.name].endpoint if s.name in configured else None,
                    "listings": s.listings,
                    "last_reconciled_at": _iso(s.last_reconciled_at),
                    "token_expires_at": _iso(s.token_expires_at),
                }
                for s in summaries
            ]
        )
        return
    table = Table(title="Channel accounts")
    for column in ("name", "platform", "state", "pricing", "listings", "reconciled"):
        table.add_column(column)
    for s in summaries:
        account = configured.get(s.name)
        state = "active" if s.active else ("inactive" if account else "not in config")
        listed = ", ".join(f"{count} {status}" for status, count in sorted(s.listings.items()))
        table.add_row(
            s.name,
            s.platform,
            state,
            account.pricing if account else "-",
            listed or "0",
            _iso(s.last_reconciled_at) or "never",
        )
    out.print(table)
    if not summaries:
        out.print("no accounts configured: add [[accounts]] tables to the config file")


@app.command("import")
def import_csv(
    file: Annotated[
        Path, typer.Argument(help="CSV with columns platform,account,asin,item_id,sku")
    ],
) -> None:
    """Add or update listings from a CSV file; all or nothing."""
    with _opened() as application:
        accounts = {a.name: a.platform for a in application.settings.accounts}
        try:
            parsed = parse_listings_csv(file, accounts)
        except OSError as exc:
            raise UsageError(f"{file}: cannot read: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise UsageError(f"{file}: {exc}") from None
        total = len(parsed.rows) + _bad_lines(parsed.problems)
        out.print(f"{file}: read as {parsed.encoding}, {total} rows")
        keys = [
            ListingKey(account=r.account, asin=r.asin, item_id=r.item_id, sku=r.sku, line=r.line)
            for r in parsed.rows
        ]
        with transaction(application.sessions) as session:
            problems = parsed.problems + import_conflicts(session, keys)
            if problems:
                out.print(f"{file}: nothing imported, {_bad_lines(problems)} bad rows:")
                raise ImportRejected(sorted(problems, key=_line_number))
            outcome = apply_import(session, keys)
    out.print(
        f"imported: {outcome.added} added, {outcome.updated} updated, {outcome.unchanged} unchanged"
    )


def _bad_lines(problems: list[str]) -> int:
    return len({problem.split(":", 1)[0] for problem in problems})


def _line_number(problem: str) -> int:
    head = problem.split(":", 1)[0]
    return int(head.removeprefix("line ")) if head.startswith("line ") else 0


@app.command()
def demo() -> None:
    """Run the simulator, build a demo shop and run two cycles (needs no network)."""
    _not_yet("demo")


@app.command()
def pull(
    account: Annotated[str | None, typer.Option("--account", help="Account name.")] = None,
    all_accounts: Annotated[bool, typer.Option("--all", help="Every active account.")] = False,
) -> None:
    """Import a channel account's existing items as listings."""
    _settings()
    _not_yet("pull")


@app.command()
def sync(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; write nothing.")
    ] = False,
    platforms: Annotated[str | None, typer.Option("--platforms", help="e.g. base,ebay")] = None,
    accounts: Annotated[str | None, typer.Option("--accounts", help="e.g. base-1,ebay-1")] = None,
    max_items: Annotated[int | None, typer.Option("--max-items", min=1)] = None,
    skip_fetch: Annotated[bool, typer.Option("--skip-fetch")] = False,
    stock_only: Annotated[bool, typer.Option("--stock-only")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Run one cycle now."""
    _settings()
    _not_yet("sync")


@app.command()
def daemon(
    interval: Annotated[str | None, typer.Option("--interval", help="e.g. 3h, 30m, 900s")] = None,
) -> None:
    """Run cycles forever, one every interval."""
    _settings()
    _not_yet("daemon")


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Last cycles, quote freshness, pending changes, lock holder, API budgets."""
    _settings()
    _not_yet("status")


@app.command()
def history(asin: Annotated[str, typer.Argument(help="The ASIN")]) -> None:
    """Every change ever planned for the ASIN's listings, with outcome."""
    _settings()
    _not_yet("history")


def _iso(value: Any) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


@app.command("sim")
def sim() -> None:
    """Run the marketplace simulator in the foreground."""
    _not_yet("sim")


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (tests call this in-process)."""
    try:
        app(args=argv, prog_name="ecsync", standalone_mode=False)
    except EcsyncError as exc:
        err.print(f"ecsync: {exc}", markup=False, highlight=False)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("ecsync: interrupted")
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            return 2
        if isinstance(exc, click.exceptions.Abort):
            return 130
        log.exception("unexpected error")
        return 1
    return 0


def main() -> None:
    sys.exit(run())


def dumps(data: Any) -> str:
    return json.dumps(data, default=str, ensure_ascii=False)
