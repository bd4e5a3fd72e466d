"""The read model behind ``ecsync status``: what is going on, from the database alone.

A seller asking "is it working?" should not have to read logs, and the answer must not
depend on the daemon being alive to give it: everything here comes from the tables the
daemon and every cycle keep up to date (``leases``, ``cycles``, ``products``, ``changes``,
``api_usage``). No network call is made, and nothing is written.

The same functions feed the daemon's Prometheus gauges, so ``status`` and ``/metrics``
cannot disagree.
"""

from __future__ import annotations

import os
import re
import socket
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ecsync.amazon.governor import DOCUMENTED
from ecsync.channels.budget import Window
from ecsync.channels.kinds import channel_kind
from ecsync.config import BACK_TO_BACK_PERIOD, Settings
from ecsync.lock import Holder, read_holder
from ecsync.store.quote_age import quote_ages
from ecsync.store.schema import Account, ApiUsage, Change, Cycle, Lease, Listing, Product

# A holder whose heartbeat is older than this is reported stalled. Heartbeats come at least
# every 10 s (real time, whatever the simulator's speed), so 30 s is three missed beats.
STALL_AFTER = timedelta(seconds=30)
RECENT_CYCLES = 10
REASON_CYCLES = 5  # top held/failed reasons are taken from this many recent cycles
TOP_REASONS = 5
NO_QUOTE_EXAMPLES = 5  # ASINs shown that were fetched but never got a good quote

# The `sync --json` fields every cycle entry carries, even a cycle still running.
SUMMARY_FIELDS: dict[str, Any] = {
    "cycle_id": 0,
    "status": "running",
    "asins": 0,
    "spapi_requests": 0,
    "spapi_throttled": 0,
    "quotes_ok": 0,
    "quotes_out_of_stock": 0,
    "quotes_no_eligible_offer": 0,
    "quotes_unknown_asin": 0,
    "quotes_error": 0,
    "changes_planned": 0,
    "changes_applied": 0,
    "changes_failed": 0,
    "changes_held": 0,
    "channel_calls": 0,
    "duration_s": 0.0,
    "fetch_floor_s": 0.0,
    "error": None,
}


def iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def process_alive(pid: int, host: str) -> bool | None:
    """Whether ``pid`` still runs: True or False on this host (POSIX), None when unknowable.

    On Windows ``os.kill(pid, 0)`` would terminate the process, so there only the heartbeat
    tells; on another host (shared PostgreSQL) likewise.
    """
    if pid <= 0 or host != socket.gethostname() or os.name != "posix":
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def holder_view(holder: Holder, now: datetime) -> dict[str, Any]:
    """A lock holder as JSON, with whether it is still alive."""
    age = (now - holder.heartbeat_at).total_seconds()
    alive = process_alive(holder.pid, holder.host)
    return {
        "name": holder.name,
        "pid": holder.pid,
        "host": holder.host,
        "since": iso(holder.since),
        "heartbeat_at": iso(holder.heartbeat_at),
        "heartbeat_age_s": round(age, 1),
        "state": holder.state,
        "phase": holder.phase,
        "progress": holder.progress,
        "alive": alive if alive is not None else age <= STALL_AFTER.total_seconds(),
    }


def _mode(progress: dict[str, Any]) -> str | None:
    """``continuous`` or ``sweep`` as the daemon's heartbeat says; a heartbeat written before
    it carried its mode says so by its scheduler's figures (continuous only)."""
    mode = progress.get("mode")
    if mode in ("continuous", "sweep"):
        return str(mode)
    return "continuous" if isinstance(progress.get("refresh"), dict) else None


def daemon_view(session: Session, now: datetime) -> dict[str, Any]:
    """``running``, ``idle``, ``stalled`` or ``stopped``, with who, where and what next."""
    view: dict[str, Any] = {
        "state": "stopped",
        "pid": None,
        "host": None,
        "since": None,
        "heartbeat_at": None,
        "heartbeat_age_s": None,
        "next_cycle_at": None,
        "phase": "",
        "progress": {},
        "interval_s": None,
        "mode": None,
        "note": "",
    }
    holder = read_holder(session, "daemon")
    if holder is None:
        row = session.get(Lease, "daemon")
        if row is None:
            view["note"] = "no daemon has run on this database yet"
        else:
            view["heartbeat_at"] = iso(row.heartbeat_at)
            view["note"] = f"the last daemon stopped cleanly at {iso(row.heartbeat_at)}"
        return view
    age = (now - holder.heartbeat_at).total_seconds()
    interval = holder.progress.get("interval_s")
    view.update(
        pid=holder.pid,
        host=holder.host,
        since=iso(holder.since),
        heartbeat_at=iso(holder.heartbeat_at),
        heartbeat_age_s=round(age, 1),
        next_cycle_at=iso(holder.next_cycle_at),
        phase=holder.phase,
        progress={k: v for k, v in holder.progress.items() if k not in ("interval_s", "mode")},
        interval_s=interval if isinstance(interval, int | float) else None,
        mode=_mode(holder.progress),
    )
    alive = process_alive(holder.pid, holder.host)
    if alive is False:
        view["state"] = "stopped"
        view["note"] = (
            f"pid {holder.pid} ended without releasing the daemon lock (killed or crashed) "
            f"after its last heartbeat at {iso(holder.heartbeat_at)}; the next daemon takes "
            "the lock over"
        )
    elif age > STALL_AFTER.total_seconds():
        view["state"] = "stalled"
        view["note"] = (
            f"no heartbeat for {age:.0f} s (expected every 10 s at most): the daemon is stuck "
            f"in phase {holder.phase or 'unknown'!r} or its host is down"
        )
    else:
        view["state"] = holder.state if holder.state in ("running", "idle") else "running"
    return view


def lock_view(session: Session, now: datetime) -> dict[str, Any] | None:
    """Who holds the lock a new ``sync`` or ``daemon`` would run into, or None.

    The cycle lock comes first: its holder (the daemon or a manual sync) is working now.
    A holder whose process is gone is not reported: its lock is taken over on next use.
    """
    for name in ("cycle", "daemon"):
        holder = read_holder(session, name)
        if holder is not None:
            view = holder_view(holder, now)
            if view["alive"]:
                return view
    return None


def cycle_views(
    session: Session, now: datetime, limit: int = RECENT_CYCLES
) -> list[dict[str, Any]]:
    """The most recent cycles first, each with the ``sync --json`` fields and its times."""
    cycle_holder = read_holder(session, "cycle")
    rows = session.scalars(select(Cycle).order_by(Cycle.id.desc()).limit(limit))
    views = []
    for cycle in rows:
        entry: dict[str, Any] = {**SUMMARY_FIELDS, **(cycle.summary or {})}
        entry.update(
            cycle_id=cycle.id,
            status=cycle.status,
            started_at=iso(cycle.started_at),
            finished_at=iso(cycle.finished_at),
            error=cycle.error,
            dry_run=cycle.dry_run,
            pid=cycle.pid,
            host=cycle.host,
        )
        if cycle.status == "running":
            running_here = (
                cycle_holder is not None
                and (cycle_holder.pid, cycle_holder.host) == (cycle.pid, cycle.host)
                and holder_view(cycle_holder, now)["alive"]
            )
            entry["alive"] = running_here
            entry["duration_s"] = round((now - cycle.started_at).total_seconds(), 1)
            if running_here and cycle_holder is not None:
                entry["phase"] = cycle_holder.phase
                entry["progress"] = cycle_holder.progress
        views.append(entry)
    return views


def _active_asins() -> Any:
    """ASINs a cycle would fetch: listed on an active account (as ``collect`` selects)."""
    return (
        select(Listing.asin)
        .join(Account, Account.id == Listing.account_id)
        .where(Listing.status == "listed", Account.active.is_(True))
        .distinct()
    )


def quote_view(session: Session, now: datetime, interval_s: float) -> dict[str, Any]:
    """Counts by quote status, and how many quotes are older than one and two intervals."""
    active = _active_asins().subquery()
    in_scope = Product.asin.in_(select(active.c.asin))
    by_status: dict[str, int] = {}
    attempted = Product.last_attempt_at.is_not(None)
    for status, tried, count in session.execute(
        select(Product.quote_status, attempted, func.count())
        .where(in_scope)
        .group_by(Product.quote_status, attempted)
    ):
        # No good quote: never attempted at all, or attempted (every cycle, maybe) and failed.
        key = status or ("no_good_quote" if tried else "never_fetched")
        by_status[key] = by_status.get(key, 0) + int(count)
    failing = [
        {"asin": asin, "last_error": error, "attempts": int(errors or 0)}
        for asin, error, errors in session.execute(
            select(Product.asin, Product.last_error, Product.error_count)
            .where(in_scope, Product.quote_status.is_(None), attempted)
            .order_by(Product.asin)
            .limit(NO_QUOTE_EXAMPLES)
        )
    ]

    def older_than(seconds: float) -> int:
        cutoff = now - timedelta(seconds=seconds)
        return int(
            session.scalar(select(func.count()).where(in_scope, Product.fetched_at < cutoff)) or 0
        )

    never = int(
        session.scalar(
            select(func.count()).where(
                in_scope, Product.fetched_at.is_(None), Product.last_attempt_at.is_(None)
            )
        )
        or 0
    )
    oldest = session.scalar(select(func.min(Product.fetched_at)).where(in_scope))
    ages = quote_ages(session, in_scope, now)
    return {
        "by_status": dict(sorted(by_status.items())),
        "total": sum(by_status.values()),
        "interval_s": round(interval_s, 3),
        "older_than_1x": older_than(interval_s),
        "older_than_2x": older_than(2 * interval_s),
        "never_fetched": never,
        "no_good_quote": by_status.get("no_good_quote", 0),
        "no_good_quote_examples": failing,
        "oldest_fetched_at": iso(oldest),
        "age_s": ages.as_dict(),
        "quoted": ages.quoted,
        "never_quoted": ages.never_quoted,
    }


def operations_view(session: Session) -> dict[str, Any] | None:
    """Each SP-API operation's use of its quota over the last reporting window, or None.

    The window is the latest finished cycle (in continuous mode: reporting window) whose
    summary carries ``spapi_operations`` (the governor's per-operation counts). Capacity is
    what Amazon's bucket could grant over that window at most: ``burst + rate x seconds``,
    with the rate Amazon reported last (``api_usage``) or, before any answer carried one,
    the documented rate. ``used`` is requests / capacity: near 1 the quota is spent, well
    under 1 it is idle.
    """
    rows = session.execute(
        select(Cycle.id, Cycle.started_at, Cycle.finished_at, Cycle.summary)
        .where(Cycle.dry_run.is_(False), Cycle.finished_at.is_not(None))
        .order_by(Cycle.id.desc())
        .limit(RECENT_CYCLES)
    )
    found = next(
        (
            row
            for row in rows
            if row.finished_at is not None
            and isinstance((row.summary or {}).get("spapi_operations"), dict)
        ),
        None,
    )
    if found is None or found.finished_at is None:
        return None
    cycle_id, started, finished = found.id, found.started_at, found.finished_at
    counts: dict[str, Any] = found.summary["spapi_operations"]
    seconds = max(0.0, (finished - started).total_seconds())
    granted: dict[str, tuple[float | None, float]] = {}
    for row in session.scalars(select(ApiUsage).where(ApiUsage.key.like("spapi:%"))):
        granted[row.key.rsplit(":", 1)[-1]] = (row.granted_rate, row.burst)
    operations: dict[str, dict[str, Any]] = {}
    for operation, entry in sorted(counts.items()):
        requests = int(entry.get("requests") or 0)
        throttled = int(entry.get("throttled") or 0)
        documented = DOCUMENTED.get(operation)
        reported, burst = granted.get(operation, (None, documented.burst if documented else 1))
        rate = reported or (documented.rate if documented else None)
        capacity = round(burst + rate * seconds, 1) if rate else None
        operations[operation] = {
            "requests": requests,
            "throttled": throttled,
            "rate": rate,
            "rate_source": "reported" if reported else "documented",
            "capacity": capacity,
            "used": round(requests / capacity, 4) if capacity else None,
            "throttled_share": round(throttled / requests, 4) if requests else 0.0,
        }
    return {
        "cycle_id": cycle_id,
        "started_at": iso(started),
        "finished_at": iso(finished),
        "window_s": round(seconds, 1),
        "operations": operations,
    }


REFRESH_QUEUE_KINDS = ("urgent", "new", "overdue", "in_flight")


def refresh_view(progress: dict[str, Any]) -> dict[str, Any] | None:
    """The continuous scheduler's live figures from a heartbeat's ``progress``, or None.

    A running continuous engine puts its scheduler's ``metrics(now)`` under ``refresh`` in
    its progress (the lease row): that is how they reach ``status``, which runs in another
    process. Sweep mode has no scheduler, so there is nothing to show (not zeros).
    ``probe_hit_ratio``: probes that led to a real change (``probe_hits``) over probes sent.
    """
    live = progress.get("refresh")
    if not isinstance(live, dict):
        return None
    probes = int(live.get("probes") or 0)
    hits = int(live.get("probe_hits") or 0)
    raw = live.get("queue")
    queue: dict[str, Any] = raw if isinstance(raw, dict) else {}
    return {
        **live,
        "queue": {kind: int(queue.get(kind) or 0) for kind in (*REFRESH_QUEUE_KINDS, *queue)},
        "probes": probes,
        "probe_hits": hits,
        "probe_hit_ratio": round(hits / probes, 4) if probes else None,
    }


def change_counts(session: Session) -> dict[str, int]:
    """Every change in the journal, by status."""
    rows = session.execute(select(Change.status, func.count()).group_by(Change.status))
    return {status: int(count) for status, count in sorted(rows)}


_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _reason_key(status: str, reason: str, error: str | None) -> str:
    """One line per kind of reason: numbers blanked so that 'cut 63%' and 'cut 71%' group."""
    text = error or reason or "(no reason recorded)"
    if status == "held" and "held:" in text:
        text = text[text.rindex("held:") :]
    return _NUMBER.sub("N", text.strip())[:200]


def change_reasons(
    session: Session, cycles: int = REASON_CYCLES
) -> dict[str, list[dict[str, Any]]]:
    """The most common reasons changes were held or failed in the last few cycles."""
    recent = (
        select(Cycle.id)
        .where(Cycle.dry_run.is_(False))
        .order_by(Cycle.id.desc())
        .limit(cycles)
        .subquery()
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for status in ("held", "failed"):
        counter: Counter[str] = Counter()
        examples: dict[str, str] = {}
        rows = session.execute(
            select(Change.reason, Change.error).where(
                Change.status == status, Change.cycle_id.in_(select(recent.c.id))
            )
        )
        for reason, error in rows:
            key = _reason_key(status, reason, error)
            counter[key] += 1
            examples.setdefault(key, (error or reason or "")[:300])
        out[status] = [
            {"reason": key, "count": count, "example": examples[key]}
            for key, count in counter.most_common(TOP_REASONS)
        ]
    return out


def _windows(settings: Settings, platform: str, account: str) -> list[Window]:
    try:
        configured = settings.account(account)
    except KeyError:
        return []
    return channel_kind(platform).windows(configured, settings.runtime.time_scale)


def budget_view(session: Session, settings: Settings, now: datetime) -> dict[str, dict[str, Any]]:
    """What each API allowance has left, keyed like ``api_usage`` (read only, no calls).

    Channel windows (``base:<acct>:hour|day``, ``ebay:<acct>:day``) count calls in fixed
    windows; a row from an earlier window means the allowance is whole again. SP-API rows
    are token buckets: their granted rate and how many requests could go out right now.
    """
    rows = {row.key: row for row in session.scalars(select(ApiUsage))}
    ts = now.timestamp()
    out: dict[str, dict[str, Any]] = {}
    for account in settings.accounts:
        if not account.active:
            continue
        for window in _windows(settings, account.platform, account.name):
            key = f"{account.platform}:{account.name}:{window.name}"
            row = rows.pop(key, None)
            current = (
                row is not None
                and row.window_start is not None
                and row.window_start.timestamp() >= window.start(ts) - 1e-3
            )
            used = row.window_count if row is not None and current else 0
            limit = window.limit
            out[key] = {
                "platform": account.platform,
                "account": account.name,
                "window": window.name,
                "limit": limit,
                "used": min(used, limit),
                "remaining": max(0, limit - used),
                "resets_at": iso(datetime.fromtimestamp(window.resets_at(ts), UTC)),
            }
    for key, row in sorted(rows.items()):
        if not key.startswith("spapi:"):
            continue
        operation = key.rsplit(":", 1)[-1]
        rate = row.rate or 0.0
        available = 0
        if rate > 0:
            interval = 1.0 / rate
            tolerance = (row.burst - 1) * interval
            arrival = row.updated_at.timestamp()
            available = int(max(0.0, min(row.burst, (ts - arrival + tolerance) / interval + 1)))
        out[key] = {
            "platform": "spapi",
            "account": "amazon",
            "operation": operation,
            "granted_rate": row.granted_rate,
            "paced_rate": round(rate, 6),
            "per_hour": round(rate * 3600, 1),
            "remaining": available,
            "cooldown_until": iso(row.cooldown_until),
        }
    return out


def read_status(
    session: Session, settings: Settings, now: datetime | None = None
) -> dict[str, Any]:
    """The whole ``status --json`` object (INTERFACE.md)."""
    now = now or datetime.now(UTC)
    daemon = daemon_view(session, now)
    lock = lock_view(session, now)
    interval_s = daemon["interval_s"]
    if not interval_s:  # no daemon (None), or one running back to back (`--interval 0`)
        # Judge quote ages by the period the daemon itself judges them by (its deadline,
        # stale_after, /healthz): back to back, the default cadence, not the config's interval.
        period = settings.daemon.period if interval_s is None else BACK_TO_BACK_PERIOD
        interval_s = settings.scaled(period).total_seconds()
    return {
        "generated_at": iso(now),
        "daemon": daemon,
        "lock": lock,
        "cycles": cycle_views(session, now),
        "quotes": quote_view(session, now, interval_s),
        "changes": change_counts(session),
        "change_reasons": change_reasons(session),
        "budgets": budget_view(session, settings, now),
        "operations": operations_view(session),
        "refresh": _live_refresh(daemon, lock),
    }


def _live_refresh(daemon: dict[str, Any], lock: dict[str, Any] | None) -> dict[str, Any] | None:
    """The scheduler's figures from the daemon's heartbeat, else from a live cycle holder's
    (a continuous run started by hand)."""
    if daemon["state"] != "stopped":
        found = refresh_view(daemon["progress"])
        if found is not None:
            return found
    if lock is not None and isinstance(lock.get("progress"), dict):
        return refresh_view(lock["progress"])
    return None


# --- the human view ---------------------------------------------------------------------

CHANGE_MEANING = {
    "planned": "written, waiting to be sent",
    "sent": "sent, answer not recorded yet (the next cycle settles it)",
    "applied": "confirmed by the channel",
    "failed": "refused by the channel",
    "held": "stopped by a guard, not sent: see `ecsync changes --status held`",
    "superseded": "left unfinished or held, re-planned by a later cycle",
    "skipped": "price move under min_change, not sent (one row per listing and target)",
    "unknown": "sent before an interruption, never confirmed; re-planned by a later cycle",
    "released": "released by you: sent by the next cycle without the guard that held it",
    "rejected": "rejected by you: kept as is until the source moves",
}


def _ago(value: str | None, now: datetime) -> str:
    if not value:
        return "never"
    at = datetime.fromisoformat(value)
    seconds = (now - at).total_seconds()
    when = at.strftime("%Y-%m-%d %H:%M:%S UTC")
    if seconds >= 0:
        return f"{when} ({_span(seconds)} ago)"
    return f"{when} (in {_span(-seconds)})"


def _rel(value: str | None, now: datetime) -> str:
    """Relative only ("in 3 min", "2 h ago"), for table cells."""
    if not value:
        return "-"
    seconds = (now - datetime.fromisoformat(value)).total_seconds()
    return f"{_span(seconds)} ago" if seconds >= 0 else f"in {_span(-seconds)}"


def _span(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _progress_text(phase: str, progress: dict[str, Any]) -> str:
    parts = [f"phase {phase or '?'}"]
    if progress.get("batches"):
        parts.append(f"fetched {progress.get('batches_done', 0)}/{progress['batches']} batches")
    if progress.get("throttled"):
        parts.append(f"{progress['throttled']} throttled")
    if progress.get("errors"):
        parts.append(f"{progress['errors']} quote errors")
    if "applied" in progress:
        applied = progress["applied"]
        parts.append(f"{applied} change{'' if applied == 1 else 's'} applied")
    return ", ".join(parts)


def _daemon_lines(data: dict[str, Any], now: datetime) -> list[str]:
    d = data["daemon"]
    state = d["state"]
    interval = d.get("interval_s")
    # In continuous mode a cycle is a reporting window: the refresh never stops, the
    # window only closes the books (cycle row, alerts) and the next one starts at once.
    continuous = d.get("mode") == "continuous"
    cycle = "window" if continuous else "cycle"
    every = (
        f"continuous refresh, a reporting window every {_span(interval)}"
        if continuous and interval
        else f"a cycle every {_span(interval)}"
        if interval
        else "cycles back to back (interval 0)"
        if interval == 0
        else ""
    )
    who = f"pid {d['pid']} on {d['host']}, started {_ago(d['since'], now)}"
    if state == "running":
        doing = "refreshing (reporting window)" if continuous else "running a cycle"
        lines = [f"[bold green]Daemon: {doing}[/] — {_progress_text(d['phase'], d['progress'])}"]
        due = "this window closes" if continuous else "next cycle due"
        lines.append(f"  {who}; {every}; {due} {_ago(d['next_cycle_at'], now)}")
    elif state == "idle":
        waiting = d["phase"] == "waiting for the cycle lock"
        head = (
            f"waiting for another ecsync run (a manual sync?) to finish before its {cycle}"
            if waiting
            else f"next {cycle} at {_ago(d['next_cycle_at'], now)}"
        )
        lines = [f"[bold green]Daemon: idle[/] — {head}", f"  {who}; {every}"]
    elif state == "stalled":
        lines = [
            f"[bold red]Daemon: STALLED[/] — {d['note']}",
            f"  {who}. Look at the log file; restart the service if it stays stalled.",
        ]
    else:
        lines = [
            "[bold yellow]Daemon: stopped[/] — no daemon is running"
            + (f": {d['note']}" if d["note"] else ""),
            "  Start one with `ecsync daemon` (README: Running as a service).",
        ]
    if d.get("heartbeat_at") and state != "stopped":
        lines.append(f"  last heartbeat {_rel(d['heartbeat_at'], now)}")
    return lines


def _lock_line(data: dict[str, Any], now: datetime) -> str:
    lock = data["lock"]
    if lock is None:
        return "Lock: free — a manual `ecsync sync` could run now."
    daemon_pid = data["daemon"].get("pid")
    who = "the daemon" if lock["pid"] == daemon_pid else "a manual sync or another instance"
    if lock["name"] == "cycle":
        return (
            f"Lock: a cycle is running, held by {who} (pid {lock['pid']} on {lock['host']}, "
            f"since {_ago(lock['since'], now)}): a manual sync now would exit with status 3."
        )
    cycles = "windows" if data["daemon"].get("mode") == "continuous" else "cycles"
    return (
        f"Lock: held by the daemon (pid {lock['pid']} on {lock['host']}); between its {cycles} "
        "a manual sync can run, and the daemon waits for it."
    )


def _cycles_table(cycles: list[dict[str, Any]], now: datetime, *, windows: bool = False) -> Table:
    what = "reporting windows" if windows else "cycles"
    table = Table(title=f"Last {what} (most recent first)", title_justify="left")
    for column in ("#", "started", "took", "result", "ASINs", "quotes", "changes", "note"):
        table.add_column(column, justify="right" if column in ("#", "took", "ASINs") else "left")
    for c in cycles[:5]:
        status = c["status"]
        if status == "running" and not c.get("alive", True):
            status = "did not finish"
        style = {"ok": "green", "partial": "yellow", "failed": "red"}.get(status, "")
        started = _rel(c.get("started_at"), now)
        quotes = "/".join(
            str(c.get(f"quotes_{s}", 0))
            for s in ("ok", "out_of_stock", "no_eligible_offer", "error")
        )
        changes = "/".join(
            str(c.get(k, 0))
            for k in ("changes_applied", "changes_failed", "changes_held", "changes_pending")
        )
        note = c.get("error") or ""
        if c["status"] == "running" and c.get("phase"):
            note = _progress_text(c["phase"], c.get("progress") or {})
        if c.get("dry_run"):
            note = ("dry run " + note).strip()
        if c["status"] == "running":  # counts are written when the cycle ends
            quotes = changes = asins = "-"
        else:
            asins = str(c.get("asins", 0))
        table.add_row(
            str(c["cycle_id"]),
            started,
            _span(float(c.get("duration_s") or 0)),
            f"[{style}]{status}[/]" if style else status,
            asins,
            quotes,
            changes,
            note[:120],
        )
    return table


def _quote_lines(quotes: dict[str, Any], now: datetime, *, unit: str = "interval") -> list[str]:
    by = quotes["by_status"]
    if not quotes["total"]:
        return ["Quotes: no listed ASINs yet (add listings with `ecsync import` or `ecsync pull`)."]
    labels = {
        "ok": "ok",
        "out_of_stock": "out of stock",
        "no_eligible_offer": "no eligible offer",
        "unknown_asin": "unknown to Amazon (hidden)",
        "error": "error (last good quote kept)",
        "no_good_quote": "fetched but no good quote yet",
        "never_fetched": "never fetched",
    }
    order = [*labels, *sorted(set(by) - set(labels))]
    parts = [f"{by[s]} {labels.get(s, s)}" for s in order if by.get(s)]
    interval = quotes["interval_s"]
    failing = [
        f"  no good quote yet: {entry['asin']} ({entry['attempts']} failed attempts; last "
        f"error: {entry['last_error'] or '?'})"
        for entry in quotes.get("no_good_quote_examples", [])
    ]
    default_stale = (
        "two intervals"
        if unit == "interval"
        else "twice [daemon] max_quote_age (at least two windows)"
    )
    return [
        f"Quotes: {quotes['total']} listed ASINs — " + ", ".join(parts),
        *failing,
        _age_line(quotes),
        f"  freshness: {quotes['older_than_1x']} older than one {unit} ({_span(interval)}), "
        f"{quotes['older_than_2x']} older than two ({_span(2 * interval)}); oldest fetched "
        f"{_ago(quotes['oldest_fetched_at'], now)}",
        f"  (a quote older than its account's stale_after, by default {default_stale}, or no "
        "good quote for that long since listing, makes the stale policy act: hide by default)",
    ]


def _age_line(quotes: dict[str, Any]) -> str:
    ages = quotes.get("age_s") or {}
    never = quotes.get("never_quoted", 0)
    if ages.get("max") is None:
        return f"  quote age: none quoted yet; {never} never quoted"
    return (
        f"  quote age: p50 {_span(ages['p50'])}, p95 {_span(ages['p95'])}, max "
        f"{_span(ages['max'])} over {quotes.get('quoted', 0)} quoted; {never} never quoted"
    )


def _operation_lines(operations: dict[str, Any] | None) -> list[str]:
    """One line per SP-API operation: requests against what its quota allowed."""
    if not operations or not operations["operations"]:
        return []
    lines = [
        f"SP-API quota use in the last window (cycle {operations['cycle_id']}, "
        f"{_span(operations['window_s'])}):"
    ]
    for name, op in operations["operations"].items():
        if op["capacity"]:
            use = f"{op['requests']} / {op['capacity']:g} ({op['used']:.0%})"
        else:
            use = f"{op['requests']} requests (quota unknown)"
        rate = f"{op['rate']:g}/s {op['rate_source']}" if op["rate"] else "rate unknown"
        lines.append(
            f"  {name}: {use}, {op['throttled']} throttled ({op['throttled_share']:.1%}); {rate}"
        )
    return lines


def _refresh_lines(refresh: dict[str, Any] | None) -> list[str]:
    """The continuous scheduler's queue and probe hit rate (nothing in sweep mode)."""
    if refresh is None:
        return []
    queue = ", ".join(
        f"{count} {kind.replace('_', ' ')}" for kind, count in refresh["queue"].items()
    )
    ratio = refresh["probe_hit_ratio"]
    hits = f"{refresh['probe_hits']} led to a change" + (
        f" ({ratio:.1%})" if ratio is not None else ""
    )
    return [f"Refresh (continuous): queue {queue}; {refresh['probes']} probes, {hits}"]


def _changes_table(changes: dict[str, int], reasons: dict[str, list[dict[str, Any]]]) -> Table:
    table = Table(title="Changes in the journal", title_justify="left")
    table.add_column("status")
    table.add_column("count", justify="right")
    table.add_column("meaning")
    for status, count in changes.items():
        table.add_row(status, str(count), CHANGE_MEANING.get(status, ""))
    for status in ("held", "failed"):
        for entry in reasons.get(status, []):
            table.add_row(f"  {status}: why", str(entry["count"]), entry["reason"], style="dim")
    return table


def _budgets_table(budgets: dict[str, dict[str, Any]], now: datetime) -> Table:
    table = Table(title="API budgets left", title_justify="left")
    for column in ("account", "budget", "left", "limit", "note"):
        table.add_column(column, justify="right" if column in ("left", "limit") else "left")
    for budget in budgets.values():
        if budget["platform"] == "spapi":
            rate = budget.get("granted_rate")
            table.add_row(
                "amazon (SP-API)",
                budget["operation"],
                f"{budget['remaining']} now",
                f"{budget['per_hour']:.0f}/h",
                f"granted {rate:g}/s" if rate else "rate not reported yet",
            )
        else:
            table.add_row(
                budget["account"],
                f"per {budget['window']}",
                str(budget["remaining"]),
                str(budget["limit"]),
                f"resets {_rel(budget['resets_at'], now)}",
            )
    return table


def render_status(data: dict[str, Any]) -> list[RenderableType]:
    """The status for a person: what runs, what ran, what is stale, what is held, what is
    left of each API allowance; each line says what it means."""
    now = datetime.fromisoformat(data["generated_at"])
    out: list[RenderableType] = [Text.from_markup(line) for line in _daemon_lines(data, now)]
    out.append(Text(_lock_line(data, now)))
    if data["cycles"]:
        windows = data["daemon"].get("mode") == "continuous"
        out.append(_cycles_table(data["cycles"], now, windows=windows))
        out.append(
            Text(
                "quotes: ok / out of stock / no eligible offer / error; changes: applied / "
                "failed / held by a guard / left open for the next "
                + ("window" if windows else "cycle"),
                style="dim",
            )
        )
    else:
        out.append(Text("Cycles: none yet (run `ecsync sync` or start `ecsync daemon`)."))
    unit = "window" if data["daemon"].get("mode") == "continuous" else "interval"
    out.extend(Text(line) for line in _quote_lines(data["quotes"], now, unit=unit))
    out.extend(Text(line) for line in _operation_lines(data.get("operations")))
    out.extend(Text(line) for line in _refresh_lines(data.get("refresh")))
    if data["changes"]:
        out.append(_changes_table(data["changes"], data["change_reasons"]))
    else:
        out.append(Text("Changes: none planned yet."))
    if data["budgets"]:
        out.append(_budgets_table(data["budgets"], now))
    return out
