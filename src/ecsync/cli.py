"""The command line: parses, loads config, calls the service layer, owns console output."""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from ecsync import __version__
from ecsync.app import App, configure_logging, open_app
from ecsync.change_text import describe_change, describe_row, why
from ecsync.channels.kinds import kind_names
from ecsync.cli_changes import changes_app
from ecsync.clock import Stop
from ecsync.config import Settings, load_settings, parse_duration, require_credentials
from ecsync.domain.plan import PlannedChange
from ecsync.engine.collect import Scope
from ecsync.engine.cycle import CycleOptions, CycleRunner, CycleSummary
from ecsync.engine.pull import PullReport, pull_accounts
from ecsync.engine.runtime import run_with_stop
from ecsync.errors import EcsyncError, ImportRejected, Interrupted, UsageError
from ecsync.listings_csv import parse_listings_csv
from ecsync.lock import InstanceLock, lock_path
from ecsync.progress import FetchProgress
from ecsync.sim.command import sim_command
from ecsync.status import read_status, render_status
from ecsync.store.engine import transaction
from ecsync.store.history import change_history, cycle_changes, listing_names
from ecsync.store.repo import ListingKey, account_summaries, apply_import, import_conflicts
from ecsync.store.retention import run_retention

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
app.add_typer(changes_app, name="changes")


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
        out.print(f"{file}: read as {parsed.encoding}, {plural(total, 'row')}")
        keys = [
            ListingKey(account=r.account, asin=r.asin, item_id=r.item_id, sku=r.sku, line=r.line)
            for r in parsed.rows
        ]
        with transaction(application.sessions) as session:
            problems = parsed.problems + import_conflicts(session, keys)
            if problems:
                bad = _bad_lines(problems)
                out.print(f"{file}: nothing imported, {plural(bad, 'bad row')}:")
                raise ImportRejected(
                    [f"{file}: {problem}" for problem in sorted(problems, key=_line_number)]
                )
            outcome = apply_import(session, keys)
    out.print(
        f"imported: {outcome.added} added, {outcome.updated} updated, {outcome.unchanged} unchanged"
    )


def plural(count: int, noun: str) -> str:
    """``1 bad row``, ``2 bad rows``: a count and its noun, agreeing."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _bad_lines(problems: list[str]) -> int:
    return len({problem.split(":", 1)[0] for problem in problems})


def _line_number(problem: str) -> int:
    head = problem.split(":", 1)[0]
    return int(head.removeprefix("line ")) if head.startswith("line ") else 0


@app.command()
def demo() -> None:
    """Run the simulator, build a demo shop and run two cycles (needs no network)."""
    from ecsync.demo import run_demo  # the simulator loads only when asked for

    result = run_demo(
        observer_factory=lambda: FetchProgress(err, live=err.is_terminal),
        on_step=lambda message: out.print(f"[bold]>[/bold] {message}"),
    )
    table = Table(title="the two cycles")
    table.add_column("")
    table.add_column("cycle 1 (full)", justify="right")
    table.add_column("cycle 2 (after the market moved)", justify="right")
    first, second = result.first.as_dict(), result.second.as_dict()
    for key in DEMO_FIELDS:
        table.add_row(key.replace("_", " "), _cell(first.get(key)), _cell(second.get(key)))
    out.print(table)
    settings = load_settings(result.directory / "ecsync.toml")
    application = open_app(settings)
    try:
        with transaction(application.sessions) as session:
            rows = cycle_changes(session, result.second.cycle_id)
    finally:
        application.close()
    changes = Table(title=f"what cycle 2 changed, and why ({plural(len(rows), 'change')})")
    for column in ("account", "asin", "change", "status", "why"):
        changes.add_column(column)
    for row in rows[:15]:
        changes.add_row(
            row.account,
            row.asin,
            describe_row(row),
            row.status,
            row.reason,
        )
    out.print(changes)
    example = rows[0].asin if rows else "ASIN"
    me = invocation()
    out.print(
        f"The demo shop stays in {result.directory}/ (the simulator has stopped): try\n"
        f"  {me} --config {result.directory}/ecsync.toml status\n"
        f"  {me} --config {result.directory}/ecsync.toml history {example}",
        markup=False,
        highlight=False,
    )


def invocation(argv0: str | None = None) -> str:
    """How to run this ecsync again from the same shell: ``ecsync`` when that is the one on
    PATH, else the path it was started by (``.venv/bin/ecsync`` after ``make demo``)."""
    started = Path(argv0 if argv0 is not None else sys.argv[0])
    if started.name == "__main__.py":  # python -m ecsync
        return f"{sys.executable} -m ecsync"
    on_path = shutil.which("ecsync")
    if on_path and started.name == "ecsync" and Path(on_path).resolve() == started.resolve():
        return "ecsync"
    if started.name != "ecsync":
        return "ecsync" if on_path else f"{sys.executable} -m ecsync"
    try:
        relative = str(started.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(started.resolve())
    return relative if "/" in relative else f"./{relative}"


DEMO_FIELDS = (
    "status",
    "asins",
    "spapi_requests",
    "spapi_throttled",
    "quotes_ok",
    "quotes_out_of_stock",
    "quotes_no_eligible_offer",
    "quotes_unknown_asin",
    "quotes_error",
    "changes_planned",
    "changes_applied",
    "changes_failed",
    "changes_held",
    "channel_calls",
    "duration_s",
    "fetch_floor_s",
)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    return "-" if value is None else str(value)


@app.command()
def pull(
    account: Annotated[str | None, typer.Option("--account", help="Account name.")] = None,
    all_accounts: Annotated[bool, typer.Option("--all", help="Every active account.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Import a channel account's existing items as listings, with their current state.

    Exits 1 naming the accounts that could not be read; the others are imported anyway.
    """
    if bool(account) == all_accounts:
        raise UsageError("pull: give either --account NAME or --all")
    with _opened() as application:
        configured = {a.name: a for a in application.settings.accounts}
        if account and account not in configured:
            known = ", ".join(configured) or "none configured"
            raise UsageError(f"pull: unknown account {account!r} (known: {known})")
        names = [account] if account else [a.name for a in configured.values() if a.active]
        require_credentials(application.settings, names, amazon=False)
        report = run_with_stop(lambda stop: pull_accounts(application, names, stop))
    if as_json:
        out.print_json(dumps(_pull_json(report)))
    else:
        _print_pull(report)
    if report.failed:
        for name, reason in report.failed.items():
            err.print(f"{name}: not pulled: {reason}", markup=False, highlight=False)
        done = [o.account for o in report.outcomes]
        raise EcsyncError(
            f"pull failed for {', '.join(report.failed)}"
            + (f"; {', '.join(done)} pulled and saved" if done else "")
        )


def _pull_json(report: PullReport) -> dict[str, Any]:
    return {
        "accounts": [
            {
                "account": o.account,
                "items": o.items,
                "added": o.added,
                "changed": o.changed,
                "unchanged": o.unchanged,
                "gone": o.gone,
                "skipped": o.skipped,
                "unread": o.problems,
                "calls": report.calls.get(o.account, 0),
            }
            for o in report.outcomes
        ],
        "failed": report.failed,
    }


def _print_pull(report: PullReport) -> None:
    table = Table(title="pulled")
    columns = ("account", "items", "added", "changed", "unchanged", "gone", "skipped", "unread")
    for column in columns:
        table.add_column(column, justify="left" if column == "account" else "right")
    for outcome in report.outcomes:
        table.add_row(
            outcome.account,
            str(outcome.items),
            str(outcome.added),
            str(outcome.changed),
            str(outcome.unchanged),
            str(outcome.gone),
            str(len(outcome.skipped)),
            str(outcome.problems),
        )
    out.print(table)
    for outcome in report.outcomes:
        for problem in outcome.skipped[:20]:
            err.print(f"{outcome.account}: skipped {problem}", markup=False, highlight=False)
        if outcome.problems:
            err.print(
                f"{outcome.account}: partial read: {outcome.problems} items could not be read "
                "(see the log); nothing was retired by absence",
                markup=False,
                highlight=False,
            )


@app.command()
def sync(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; write nothing.")
    ] = False,
    platforms: Annotated[str | None, typer.Option("--platforms", help="e.g. base,ebay")] = None,
    accounts: Annotated[str | None, typer.Option("--accounts", help="e.g. base-1,ebay-1")] = None,
    max_items: Annotated[
        int | None, typer.Option("--max-items", min=1, help="At most this many ASINs.")
    ] = None,
    skip_fetch: Annotated[
        bool, typer.Option("--skip-fetch", help="Plan from stored quotes.")
    ] = False,
    stock_only: Annotated[
        bool, typer.Option("--stock-only", help="Plan visibility and quantity only.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    reconcile: Annotated[
        bool | None,
        typer.Option(
            "--reconcile/--no-reconcile",
            help="Read every account in bulk first, or not (default: when due, "
            "see reconcile_every).",
        ),
    ] = None,
    deadline: Annotated[
        str | None,
        typer.Option(
            "--deadline",
            help="e.g. 30m: what cannot be sent by then stays planned (default: the daemon's "
            "interval x deadline_fraction).",
        ),
    ] = None,
) -> None:
    """Run one cycle now."""
    budget = _deadline_option(deadline)
    with _opened() as application:
        scope = Scope(
            platforms=_split(platforms, "--platforms", allowed=kind_names()),
            accounts=_split(
                accounts, "--accounts", allowed=tuple(a.name for a in application.settings.accounts)
            ),
            max_items=max_items,
        )
        settings = application.settings
        deadline_s = settings.scaled(
            budget or settings.daemon.period * settings.daemon.deadline_fraction
        ).total_seconds()
        options = CycleOptions(
            scope=scope,
            dry_run=dry_run,
            skip_fetch=skip_fetch,
            stock_only=stock_only,
            reconcile=reconcile,
            deadline=time.time() + deadline_s,
        )
        in_scope = [
            a.name
            for a in application.settings.accounts
            if a.active
            and (not scope.platforms or a.platform in scope.platforms)
            and (not scope.accounts or a.name in scope.accounts)
        ]
        require_credentials(
            application.settings, [] if dry_run else in_scope, amazon=not skip_fetch
        )
        summary, preview = _run_cycle(
            application,
            options,
            on_interrupt=lambda partial: _print_summary(partial, as_json=as_json),
        )
        if dry_run:
            _print_plan(application, preview, as_json=as_json, summary=summary)
            return
        run_retention(application.sessions, application.settings)
    _print_summary(summary, as_json=as_json)
    if summary.status == "failed":
        raise typer.Exit(1)


def _deadline_option(value: str | None) -> timedelta | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise UsageError(f"--deadline: {exc}") from None


def _split(value: str | None, option: str, *, allowed: tuple[str, ...]) -> tuple[str, ...]:
    if not value:
        return ()
    items = tuple(item.strip() for item in value.split(",") if item.strip())
    unknown = [item for item in items if item not in allowed]
    if unknown:
        raise UsageError(
            f"{option}: unknown {', '.join(repr(u) for u in unknown)} "
            f"(known: {', '.join(allowed) or 'none'})"
        )
    return items


def _run_cycle(
    application: App,
    options: CycleOptions,
    *,
    on_interrupt: Callable[[CycleSummary], None] = lambda _summary: None,
) -> tuple[CycleSummary, list[PlannedChange]]:
    """Run the cycle under the cycle lock; an interrupted one still shows what it did."""
    live = err.is_terminal
    settings = application.settings
    lock = InstanceLock(
        application.sessions,
        "cycle",
        lock_path(settings.database_url, settings.config_path, "cycle"),
    )
    lock.acquire()

    async def main(stop: Stop) -> tuple[CycleSummary, list[PlannedChange]]:
        with FetchProgress(err, live=live) as progress:
            runner = CycleRunner(application, stop, fetch_observer=progress, lock=lock)
            try:
                summary = await runner.run(options)
            except Interrupted:
                on_interrupt(runner.summary)
                raise
            return summary, runner.preview

    try:
        return run_with_stop(main)
    finally:
        lock.release()


PLAN_ROWS = 50


def _print_plan(
    application: App, preview: list[PlannedChange], *, as_json: bool, summary: CycleSummary
) -> None:
    with transaction(application.sessions) as session:
        names = listing_names(session, {c.listing_id for c in preview})
    rows: list[dict[str, Any]] = [
        {
            "account": names[c.listing_id].account,
            "asin": names[c.listing_id].asin,
            "item_id": names[c.listing_id].item_id,
            "kind": c.kind.value,
            "status": c.status.value,
            "old": {"price": c.old.price, "visible": c.old.visible, "quantity": c.old.quantity},
            "new": {"price": c.new.price, "visible": c.new.visible, "quantity": c.new.quantity},
            "reason": c.reason,
        }
        for c in preview
    ]
    if as_json:
        out.print_json(dumps({**summary.as_dict(), "changes": rows}))
        return
    table = Table(
        title=f"dry run: {plural(len(rows), 'change')} would be made ({summary.changes_held} held)"
    )
    for column in ("account", "asin", "item", "change", "status", "why"):
        table.add_column(column)
    for c, row in zip(preview[:PLAN_ROWS], rows, strict=False):
        table.add_row(
            row["account"],
            row["asin"],
            row["item_id"],
            describe_change(
                c.kind.value,
                (c.old.price, c.old.visible, c.old.quantity),
                (c.new.price, c.new.visible, c.new.quantity),
            ),
            row["status"],
            row["reason"],
        )
    out.print(table)
    if len(rows) > PLAN_ROWS:
        out.print(f"... and {len(rows) - PLAN_ROWS} more (use --json for every change)")


def _print_summary(summary: CycleSummary, *, as_json: bool) -> None:
    data = summary.as_dict()
    if as_json:
        out.print_json(data=data)
        return
    table = Table(title=f"cycle {summary.cycle_id}: {summary.status}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for key, value in data.items():
        if value is None or key in ("cycle_id", "error"):  # the error gets a line of its own
            continue
        table.add_row(
            key.replace("_", " "), f"{value:.1f}" if isinstance(value, float) else str(value)
        )
    out.print(table)
    if summary.error:
        out.print(f"{summary.status}: {summary.error}", markup=False, highlight=False)


@app.command()
def daemon(
    interval: Annotated[str | None, typer.Option("--interval", help="e.g. 3h, 30m, 900s")] = None,
    mode: Annotated[
        str | None,
        typer.Option("--mode", help="continuous or sweep (default: [daemon] mode)"),
    ] = None,
) -> None:
    """Run cycles forever: a sweep every interval, or a continuous refresh reported per window."""
    from ecsync.daemon import interval_override, mode_override, run_daemon  # only when asked

    # Not the log file's owner yet: a second daemon about to exit 3 must not rotate it.
    settings = _settings()
    if interval is not None:
        every = interval_override(interval)
        settings = settings.model_copy(
            update={"daemon": settings.daemon.model_copy(update={"interval": every})}
        )
    if mode is not None:
        chosen = mode_override(mode)
        settings = settings.model_copy(
            update={"daemon": settings.daemon.model_copy(update={"mode": chosen})}
        )
    require_credentials(settings, [a.name for a in settings.accounts if a.active], amazon=True)
    application = open_app(settings)
    try:
        run_daemon(application, on_locked=lambda: configure_logging(settings, owns_log_file=True))
    finally:
        application.close()


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Last cycles, quote freshness, pending changes, lock holder, API budgets."""
    with _opened() as application, transaction(application.sessions) as session:
        data = read_status(session, application.settings)
    if as_json:
        out.print_json(dumps(data))
        return
    for renderable in render_status(data):
        out.print(renderable)


@app.command()
def history(
    asin: Annotated[str, typer.Argument(help="The ASIN")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every change ever planned for the ASIN's listings, with outcome."""
    with _opened() as application, transaction(application.sessions) as session:
        rows = change_history(session, asin)
    if as_json:
        out.print_json(dumps([asdict(row) for row in rows]))
        return
    if not rows:
        out.print(f"no changes recorded for {asin}")
        return
    table = Table(title=f"history of {asin}")
    for column in ("when", "cycle", "account", "item", "change", "status", "why"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            _iso(row.at) or "",
            str(row.cycle_id),
            row.account,
            row.item_id,
            describe_row(row),
            row.status,
            why(row, _iso(row.decided_at)),
        )
    out.print(table)


def _iso(value: Any) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


app.command("sim")(sim_command)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (tests call this in-process)."""
    try:
        # Without standalone mode click *returns* a command's exit status (typer.Exit(1) from
        # a failed cycle): dropping it would tell cron and systemd that all went well.
        code = app(args=argv, prog_name="ecsync", standalone_mode=False)
    except EcsyncError as exc:
        err.print(f"ecsync: {exc}", markup=False, highlight=False)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("ecsync: interrupted")
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    except SQLAlchemyError as exc:  # past open_app (which names the URL): still one line
        cause = getattr(exc, "orig", None) or exc
        first = next((line.strip() for line in str(cause).splitlines() if line.strip()), "")
        err.print(f"ecsync: database error: {first}", markup=False, highlight=False)
        return 2
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            return 2
        if isinstance(exc, click.exceptions.Abort):
            return 130
        log.exception("unexpected error")
        return 1
    return code if isinstance(code, int) else 0


def main() -> None:
    sys.exit(run())


def dumps(data: Any) -> str:
    return json.dumps(data, default=str, ensure_ascii=False)
