"""``ecsync changes``: the journal's open changes, and the seller's word on held ones.

``changes`` lists; ``changes release`` hands held changes to the next cycle, which sends the
same target without the guard that held it (the price floor still applies);
``changes reject`` keeps the channel as it is until the source moves. A bad id writes
nothing and exits 2.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from ecsync.change_text import describe_row, why
from ecsync.domain.guards import DecisionKind
from ecsync.errors import UsageError
from ecsync.store.decisions import OPEN, STATUSES, ChangeRow, decide, list_changes
from ecsync.store.engine import transaction

log = logging.getLogger(__name__)

changes_app = typer.Typer(
    help="The journal's open changes; release or reject held ones.",
    invoke_without_command=True,
)

ById = Annotated[str, typer.Option("--by", help="Who decides, recorded in the journal.")]


@changes_app.callback(invoke_without_command=True)
def changes(
    ctx: typer.Context,
    status: Annotated[
        str | None,
        typer.Option("--status", help=f"One of {', '.join(STATUSES)} (default: open ones)."),
    ] = None,
    account: Annotated[str | None, typer.Option("--account", help="Account name.")] = None,
    asin: Annotated[str | None, typer.Option("--asin", help="ASIN.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List changes (held, planned and sent ones unless --status says otherwise)."""
    if ctx.invoked_subcommand is not None:
        return
    from ecsync.cli import _opened, dumps, out  # the CLI module registers this one

    if status is not None and status not in STATUSES:
        raise UsageError(f"--status: unknown {status!r} (known: {', '.join(STATUSES)})")
    with _opened() as application:
        _check_account(account, [a.name for a in application.settings.accounts])
        with transaction(application.sessions) as session:
            rows = list_changes(
                session, statuses=(status,) if status else OPEN, account=account, asin=asin
            )
    now = datetime.now(UTC)
    if as_json:
        out.print_json(dumps([_as_dict(row, now) for row in rows]))
        return
    if not rows:
        out.print("no changes match")
        return
    out.print(_table(rows, now))


@changes_app.command("release")
def release(
    change_ids: Annotated[list[int] | None, typer.Argument(help="Held change ids.")] = None,
    all_held: Annotated[bool, typer.Option("--all", help="Every held change.")] = False,
    account: Annotated[str | None, typer.Option("--account", help="Only this account.")] = None,
    by: ById = "cli",
) -> None:
    """Send held changes next cycle without the guard that held them (the floor stays)."""
    if bool(change_ids) == all_held:
        raise UsageError("changes release: give change ids or --all")
    _decide(DecisionKind.RELEASED, None if all_held else change_ids, account, by)


@changes_app.command("reject")
def reject(
    change_ids: Annotated[list[int], typer.Argument(help="Held change ids.")],
    by: ById = "cli",
) -> None:
    """Keep the channel as it is until the source (Amazon price or availability) moves."""
    _decide(DecisionKind.REJECTED, change_ids, None, by)


def _decide(kind: DecisionKind, ids: list[int] | None, account: str | None, by: str) -> None:
    from ecsync.cli import _opened, out

    by = by.strip()
    if not by or len(by) > 64:
        raise UsageError("--by: give a name of 1 to 64 characters")
    with _opened() as application:
        _check_account(account, [a.name for a in application.settings.accounts])
        now = datetime.now(UTC)
        with transaction(application.sessions) as session:
            decided = decide(session, kind, ids, account=account, by=by, now=now)
    if not decided:
        out.print("no held changes" + (f" on {account}" if account else ""))
        return
    listed = ", ".join(str(i) for i in decided)
    log.info("%d changes %s by %s: %s", len(decided), kind.value, by, listed)
    if kind is DecisionKind.RELEASED:
        out.print(
            f"released {_count(len(decided), 'held change')} ({listed}): the next cycle sends "
            "them without the guard that held them (a continuous daemon: within seconds, after "
            "a fresh quote); the price floor still applies"
        )
    else:
        out.print(
            f"rejected {_count(len(decided), 'held change')} ({listed}): the channel stays as "
            "it is until the source moves"
        )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _check_account(account: str | None, known: list[str]) -> None:
    if account is not None and account not in known:
        raise UsageError(f"--account: unknown {account!r} (known: {', '.join(known) or 'none'})")


def _state(price: Any, visible: Any, quantity: Any) -> dict[str, Any]:
    return {"price": price, "visible": visible, "quantity": quantity}


def _as_dict(row: ChangeRow, now: datetime) -> dict[str, Any]:
    return {
        "id": row.id,
        "cycle_id": row.cycle_id,
        "account": row.account,
        "asin": row.asin,
        "item_id": row.item_id,
        "kind": row.kind,
        "old": _state(row.old_price, row.old_visible, row.old_quantity),
        "new": _state(row.new_price, row.new_visible, row.new_quantity),
        "reason": row.reason,
        "status": row.status,
        "error": row.error,
        "created_at": row.created_at.isoformat(timespec="seconds"),
        "age_s": round((now - row.created_at).total_seconds(), 1),
        "decided_by": row.decided_by,
        "decided_at": row.decided_at.isoformat(timespec="seconds") if row.decided_at else None,
    }


def _age(seconds: float) -> str:
    seconds = max(seconds, 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _table(rows: list[ChangeRow], now: datetime) -> Table:
    table = Table(title=_count(len(rows), "change"))
    for column in ("id", "account", "asin", "change", "status", "age", "why"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            str(row.id),
            row.account,
            row.asin,
            describe_row(row),
            row.status,
            _age((now - row.created_at).total_seconds()),
            why(row),
        )
    return table
