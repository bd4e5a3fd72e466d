"""One sync cycle: collect, fetch, plan, push, over the one database.

The cycle row is written first and settled last, so ``status`` can always tell what ran,
what it did and how it ended, even after a crash.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ecsync.amazon.client import OffersClient
from ecsync.amazon.errors import AuthFailed
from ecsync.amazon.governor import RateGovernor
from ecsync.amazon.metered import MeteredPricing
from ecsync.app import App
from ecsync.channels import open_account
from ecsync.channels.errors import ChannelAuthError, ChannelError
from ecsync.channels.protocol import ChannelAdapter
from ecsync.clock import Clock, Stop, SystemClock
from ecsync.config import DaemonSettings
from ecsync.domain.plan import PlannedChange
from ecsync.engine.collect import Scope, collect_asins
from ecsync.engine.fetch import Fetcher, FetchObserver, FetchStats, QuotesHandler, QuoteSink
from ecsync.engine.plan import Planner
from ecsync.engine.push import AccountPusher
from ecsync.engine.reconcile import (
    ReadResult,
    ReconcileOutcome,
    apply_reconcile,
    listed_skus,
    read_account,
)
from ecsync.engine.refresh import (
    Refresher,
    RefreshState,
    RefreshStats,
    asin_states,
    effective_max_quote_age,
    full_quote_rate,
)
from ecsync.errors import Interrupted
from ecsync.lock import InstanceLock
from ecsync.store.journal import (
    INTERRUPTED,
    JournaledChange,
    cycle_change_counts,
    mark_interrupted_cycles,
    open_changes,
    supersede_open_changes,
    unplanned_quotes,
)
from ecsync.store.quotes import QuoteWrite, write_quotes
from ecsync.store.runner import DbRunner
from ecsync.store.schema import Account, Cycle

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CycleOptions:
    scope: Scope = field(default_factory=Scope)
    dry_run: bool = False
    skip_fetch: bool = False
    stock_only: bool = False
    deadline: float | None = None  # wall-clock time by which the cycle must be done
    reconcile: bool | None = None  # None: when due (every `reconcile_every` cycles)
    refresh: RefreshWindow | None = None  # continuous mode: this cycle is one window
    # (account, reason), the moment an account's mass-hide guard trips (Planner's on_trip)
    on_trip: Callable[[str, str], None] | None = None


@dataclass(frozen=True, slots=True)
class RefreshWindow:
    """A continuous-mode cycle: its fetch phase is the refresher running until ``until``
    (wall clock), on the scheduler the daemon keeps across windows."""

    until: float
    state: RefreshState


@dataclass
class CycleSummary:
    """The ``sync --json`` record (INTERFACE.md)."""

    cycle_id: int = 0
    status: str = "running"
    asins: int = 0
    spapi_requests: int = 0
    spapi_throttled: int = 0
    quotes_ok: int = 0
    quotes_out_of_stock: int = 0
    quotes_no_eligible_offer: int = 0
    quotes_unknown_asin: int = 0
    quotes_error: int = 0
    changes_planned: int = 0
    changes_applied: int = 0
    changes_failed: int = 0
    changes_held: int = 0
    channel_calls: int = 0
    duration_s: float = 0.0
    fetch_floor_s: float = 0.0
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        extra = data.pop("extra")
        return {**data, **extra}

    def add_fetch(self, stats: FetchStats) -> None:
        self.spapi_requests = stats.requests
        self.spapi_throttled = stats.throttled
        self.quotes_ok = stats.statuses.get("ok", 0)
        self.quotes_out_of_stock = stats.statuses.get("out_of_stock", 0)
        self.quotes_no_eligible_offer = stats.statuses.get("no_eligible_offer", 0)
        self.quotes_unknown_asin = stats.statuses.get("unknown_asin", 0)
        self.quotes_error = stats.statuses.get("error", 0)
        self.fetch_floor_s = round(stats.floor_s, 3)
        self.extra["spapi_granted_rate"] = stats.granted_rate
        self.extra["spapi_token_refusals"] = stats.token_refusals
        self.extra["spapi_retries"] = stats.retries
        self.extra["spapi_outage"] = stats.circuit_open


HEARTBEAT_S = 5.0


def quote_cadence(daemon: DaemonSettings, continuous: bool, asins: int) -> timedelta:
    """How old a quote may normally get (staleness is twice this): the sweep's interval, or
    in continuous mode the scheduler's effective ``max_quote_age`` for ``asins`` ASINs (the
    configured one, or two full passes when the quotas cannot keep it:
    ``effective_max_quote_age``; else quotes the scheduler is allowed to let age would be
    judged stale), never shorter than a window. Simulated time, like the settings."""
    if not continuous:
        return daemon.period
    bound = effective_max_quote_age(daemon.max_quote_age.total_seconds(), asins, full_quote_rate())
    return max(timedelta(seconds=bound), daemon.window)


class CycleRunner:
    def __init__(
        self,
        app: App,
        stop: Stop,
        *,
        fetch_observer: FetchObserver | None = None,
        clock: Clock | None = None,
        lock: InstanceLock | None = None,
        heartbeat_every_s: float = HEARTBEAT_S,
    ) -> None:
        self._app = app
        self._stop = stop
        self._fetch_observer = fetch_observer
        self._clock = clock or SystemClock()
        self._db = DbRunner(app.sessions)
        self._lock = lock
        self._heartbeat_every_s = heartbeat_every_s
        self._fetcher: Fetcher | None = None
        self._refresher: Refresher | None = None
        # Continuous mode, planned again from the stored quotes at the window's start:
        # (listing id, ASIN) of changes earlier cycles left open (``open_changes``), and the
        # ASINs an interrupted cycle quoted but maybe never planned (``unplanned_quotes``).
        self._replan: list[tuple[int, str]] = []
        self._unplanned: list[str] = []
        self._pushers: dict[str, AccountPusher] = {}
        self._reconciling: asyncio.Task[None] | None = None
        self.phase = "starting"
        self.preview: list[PlannedChange] = []
        self.summary = CycleSummary()  # the running cycle's, kept when it is interrupted

    def progress(self) -> dict[str, Any]:
        """What this cycle is doing now, for the lease heartbeat and ``status``."""
        data: dict[str, Any] = {"phase": self.phase}
        if self._fetcher is not None:
            stats = self._fetcher.stats
            data.update(
                batches_done=stats.batches_done,
                batches=stats.batches,
                throttled=stats.throttled,
                errors=stats.statuses.get("error", 0),
            )
        if self._refresher is not None:
            # The scheduler's figures (queue, quote age, probe hits) for status and /metrics.
            data["refresh"] = {
                **self._refresher.stats.as_dict(),
                **self._refresher.scheduler_metrics(self._clock.time()),
            }
        if self._pushers:
            data["applied"] = sum(p.tally.applied for p in self._pushers.values())
        return data

    async def _keep_alive(self) -> None:
        """Refresh the cycle lease while the cycle works, so a hang shows as stalled."""
        lock = self._lock
        if lock is None:
            return
        while not await self._stop.sleep(self._heartbeat_every_s):
            await self._db.run(
                functools.partial(_beat, lock=lock, phase=self.phase, progress=self.progress())
            )

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.time(), UTC)

    async def run(self, options: CycleOptions) -> CycleSummary:
        started = self._clock.monotonic()
        summary = self.summary = CycleSummary()
        try:
            summary.cycle_id = await self._db.run(lambda s: self._open(s, options))
        except BaseException:
            self._db.close()
            raise
        log.info("cycle %d started%s", summary.cycle_id, " (dry run)" if options.dry_run else "")
        pushers: dict[str, AccountPusher] = {}
        keep_alive = asyncio.create_task(self._keep_alive(), name="heartbeat")
        try:
            self.phase = "collect"
            asins = await self._db.run(lambda s: collect_asins(s, options.scope))
            summary.asins = len(asins)
            planner = Planner(
                self._app.settings,
                options.scope,
                cycle_id=summary.cycle_id,
                stock_only=options.stock_only,
                default_stale_after=self._app.settings.scaled(
                    2 * self._quote_cadence(options, len(asins))
                ),
                keep_preview=options.dry_run,
                continuous=options.refresh is not None,
                on_trip=options.on_trip,
                replanned=frozenset(listing_id for listing_id, _ in self._replan),
            )
            if not options.dry_run:
                self.phase = "reconcile"
                pushers = self._pushers = await self._pushers_for(options, summary)
            self.phase = "fetch"
            await self._pipeline(asins, options, summary, planner, pushers)
            self._tally(summary, planner, pushers)
            summary.status = self._outcome(summary, options)
        except Interrupted as exc:
            summary.status = "partial"
            summary.error = f"{INTERRUPTED}{exc}"
            raise
        except (AuthFailed, ChannelAuthError) as exc:
            summary.status = "failed"
            summary.error = str(exc)
            log.error("cycle %d failed: %s", summary.cycle_id, exc)
        except Exception as exc:
            summary.status = "failed"
            summary.error = f"{type(exc).__name__}: {exc}"
            log.exception("cycle %d failed", summary.cycle_id)
        finally:
            self.phase = "finishing"
            keep_alive.cancel()
            await asyncio.gather(keep_alive, return_exceptions=True)
            for pusher in pushers.values():
                summary.channel_calls += pusher.adapter.calls
                await pusher.adapter.aclose()
            if not options.dry_run:
                counts = await self._db.run(lambda s: cycle_change_counts(s, summary.cycle_id))
                summary.changes_applied = counts.get("applied", 0)
                summary.changes_failed = counts.get("failed", 0)
                summary.changes_held = counts.get("held", 0)
                summary.extra["changes_pending"] = counts.get("planned", 0) + counts.get("sent", 0)
                # Counted only now: what failed or could not go out (it waits for the next
                # cycle) leaves the cycle partial, not ok. (A reconcile skipped for a spent
                # budget is reported in reconcile_errors; the cycle's own work still ran.)
                if summary.status == "ok" and (
                    summary.extra["changes_pending"] or summary.changes_failed
                ):
                    summary.status = "partial"
                if summary.extra.get("deadline_reached") and not summary.error:
                    summary.error = (
                        f"deadline reached: {summary.extra['changes_pending']} changes could "
                        "not be sent in time and stay planned for the next cycle ("
                        + ", ".join(summary.extra["deadline_reached"])
                        + ")"
                    )
            summary.duration_s = round(self._clock.monotonic() - started, 3)
            await self._db.run(lambda s: self._close(s, summary))
            self._db.close()
            self._log_summary(summary)
        return summary

    async def _pushers_for(
        self, options: CycleOptions, summary: CycleSummary
    ) -> dict[str, AccountPusher]:
        """Open an adapter per account in scope; reconcile first when it is due."""
        settings = self._app.settings
        names = await self._db.run(lambda s: accounts_in_scope(s, options.scope))
        pushers = self._pushers = {
            name: AccountPusher(
                open_account(settings, name, self._db, self._stop, self._clock),
                self._db,
                self._stop,
                self._clock,
                deadline=options.deadline,
            )
            for name in names
        }
        due = await self._db.run(
            lambda s: accounts_due_for_reconcile(
                s, {n: settings.reconcile_every(n) for n in names}, options.reconcile
            )
        )
        if due:
            # Runs beside the first fetch batches; planning waits for it (see _pipeline).
            adapters = [pushers[name].adapter for name in due]
            self._reconciling = asyncio.create_task(
                self._reconcile(adapters, summary), name="reconcile"
            )
        return pushers

    async def _reconcile(self, adapters: Sequence[ChannelAdapter], summary: CycleSummary) -> None:
        async def one(adapter: ChannelAdapter) -> None:
            try:
                expected = await self._db.run(
                    functools.partial(listed_skus, account_name=adapter.account)
                )
                result = await read_account(adapter, expected)
            except ChannelAuthError as exc:
                # Stays with its account: the others reconcile, plan and push as usual.
                log.error(
                    "%s: stopped for this cycle, its changes stay planned: %s", adapter.account, exc
                )
                self._pushers[adapter.account].fail(str(exc))
                return
            except ChannelError as exc:
                log.warning("%s: reconcile skipped this cycle: %s", adapter.account, exc)
                summary.extra.setdefault("reconcile_errors", {})[adapter.account] = str(exc)
                return
            now = self._now()
            outcome = await self._db.run(functools.partial(_reconcile_one, result=result, now=now))
            log.info(
                "%s: reconciled %d items in %d calls: %d drifted, %d gone%s",
                outcome.account,
                outcome.items,
                result.calls,
                outcome.drifted,
                outcome.gone,
                "" if outcome.complete else f" (partial read: {outcome.problems} problems)",
            )
            summary.extra.setdefault("reconciled", {})[outcome.account] = {
                "items": outcome.items,
                "drifted": outcome.drifted,
                "gone": outcome.gone,
            }
            if not outcome.complete:
                # Partial: what was read is refreshed, nothing was retired by its absence.
                summary.extra.setdefault("reconcile_partial", {})[outcome.account] = (
                    outcome.problems
                )

        await asyncio.gather(*(one(adapter) for adapter in adapters))

    async def _pipeline(
        self,
        asins: Sequence[str],
        options: CycleOptions,
        summary: CycleSummary,
        planner: Planner,
        pushers: dict[str, AccountPusher],
    ) -> None:
        """Fetch -> plan -> push, all three running at once."""
        batches: asyncio.Queue[Sequence[QuoteWrite] | list[str] | None] = asyncio.Queue()

        async def plan_loop() -> None:
            if self._reconciling is not None:
                await self._reconciling  # plan against the channels' real state
                self.phase = "fetch"
            # The mass-hide guard's denominators: listed items as the reconcile left them.
            # In continuous mode also the hides of the last guard window, from the journal.
            await self._db.run(functools.partial(planner.start, now=self._now()))
            while (batch := await batches.get()) is not None:
                await self._plan(batch, options, planner, pushers)
            released = await self._db.run(planner.finish, commit=not options.dry_run)
            self._send(released, pushers)

        async def on_quotes(writes: Sequence[QuoteWrite]) -> None:
            await batches.put(writes)

        push_tasks = [asyncio.create_task(p.run(), name=f"push-{n}") for n, p in pushers.items()]
        plan_task = asyncio.create_task(plan_loop(), name="plan")
        try:
            if options.skip_fetch:
                for i in range(0, len(asins), PLAN_CHUNK):
                    await batches.put(list(asins[i : i + PLAN_CHUNK]))
            elif options.refresh is not None:
                # What earlier cycles left unsent is planned again now, from the stored
                # quotes (as a sweep's next cycle would): its ASINs may not be quoted for hours.
                replan = sorted({asin for _, asin in self._replan} | set(self._unplanned))
                if replan:
                    log.info("re-planning %d ASINs earlier cycles left unfinished", len(replan))
                for i in range(0, len(replan), PLAN_CHUNK):
                    await batches.put(replan[i : i + PLAN_CHUNK])
                await self._refresh(options, options.refresh, summary, on_quotes)
            elif asins:
                await self._fetch(asins, options, summary, on_quotes)
            await batches.put(None)
            await _until_done(plan_task, self._stop)
            self.phase = "push"
            for pusher in pushers.values():
                pusher.close()
            for task in push_tasks:
                await _until_done(task, self._stop)
        finally:
            plan_task.cancel()
            for push_task in push_tasks:
                push_task.cancel()
            extra = [self._reconciling] if self._reconciling else []
            for reconciling in extra:
                reconciling.cancel()
            await asyncio.gather(plan_task, *push_tasks, *extra, return_exceptions=True)

    async def _plan(
        self,
        batch: Sequence[QuoteWrite] | list[str],
        options: CycleOptions,
        planner: Planner,
        pushers: dict[str, AccountPusher],
    ) -> None:
        writes = [w for w in batch if isinstance(w, QuoteWrite)]
        asins = [w.asin for w in writes] or [a for a in batch if isinstance(a, str)]
        now = self._now()

        def work(session: Session) -> list[JournaledChange]:
            if options.dry_run and writes:
                write_quotes(session, writes, now)  # seen by the planner, then rolled back
            return planner.plan_batch(session, asins, now)

        journaled = await self._db.run(work, commit=not options.dry_run)
        self._send(journaled, pushers)

    @staticmethod
    def _send(changes: Sequence[JournaledChange], pushers: dict[str, AccountPusher]) -> None:
        for change in changes:
            if change.account in pushers:
                pushers[change.account].put(change)

    async def _fetch(
        self,
        asins: Sequence[str],
        options: CycleOptions,
        summary: CycleSummary,
        on_quotes: QuotesHandler,
    ) -> None:
        settings = self._app.settings.amazon
        client, governor, fetcher = self._amazon(options, on_quotes, settings.concurrency)
        try:
            await fetcher.run(asins)
        finally:
            summary.add_fetch(fetcher.stats)
            summary.extra["spapi_operations"] = governor.operation_counts()
            await client.aclose()

    def _amazon(
        self, options: CycleOptions, on_quotes: QuotesHandler, concurrency: int
    ) -> tuple[OffersClient, RateGovernor, Fetcher]:
        """The SP-API client, its rate governor and the fetcher over them, for one cycle or
        reporting window (the caller closes the client)."""
        settings = self._app.settings.amazon
        client = OffersClient(settings)
        governor = RateGovernor(self._db, client.credentials_key, self._stop, self._clock)
        fetcher = self._fetcher = Fetcher(
            client=client,
            governor=governor,
            db=self._db,
            settings=settings,
            stop=self._stop,
            observer=self._fetch_observer,
            on_quotes=on_quotes,
            write=not options.dry_run,
            clock=self._clock,
            concurrency=concurrency,
        )
        return client, governor, fetcher

    def _quote_cadence(self, options: CycleOptions, asins: int) -> timedelta:
        return quote_cadence(self._app.settings.daemon, options.refresh is not None, asins)

    async def _refresh(
        self,
        options: CycleOptions,
        window: RefreshWindow,
        summary: CycleSummary,
        on_quotes: QuotesHandler,
    ) -> None:
        """Continuous mode's fetch phase: the refresher until the window's end."""
        states = await self._db.run(lambda s: asin_states(s, options.scope))
        added, removed = window.state.sync(states, self._clock.time())
        if added or removed:
            log.info("refresh: %d ASINs (%d added, %d retired)", len(states), added, removed)
        settings = self._app.settings.amazon
        # Few batches waiting for a slot: each is chosen closer to when it is sent.
        client, governor, fetcher = self._amazon(options, on_quotes, min(2, settings.concurrency))
        pricing = MeteredPricing(client, governor)
        log.info(
            "refreshing %d ASINs until %s",
            len(states),
            datetime.fromtimestamp(window.until, UTC).isoformat(timespec="seconds"),
        )
        refresher = self._refresher = Refresher(
            scheduler=window.state.scheduler,
            fetcher=fetcher,
            pricing=pricing,
            sink=QuoteSink(
                self._db, write=not options.dry_run, clock=self._clock, on_quotes=on_quotes
            ),
            db=self._db,
            settings=settings,
            stop=self._stop,
            clock=self._clock,
            scope=options.scope,
        )
        try:
            await refresher.run(window.until)
        finally:
            summary.add_fetch(fetcher.stats)
            _add_refresh(summary, refresher.stats, pricing)
            summary.extra["spapi_operations"] = governor.operation_counts()
            summary.extra["refresh"]["scheduler"] = window.state.scheduler.metrics(
                self._clock.time()
            )
            await client.aclose()

    def _tally(
        self, summary: CycleSummary, planner: Planner, pushers: dict[str, AccountPusher]
    ) -> None:
        tally = planner.tally
        summary.changes_planned = tally.planned
        summary.changes_held = tally.held
        summary.extra["held_hides"] = tally.held_hides
        summary.extra["held_drops"] = tally.held_drops
        summary.extra["mass_hide_tripped"] = sorted(tally.tripped_accounts)
        summary.extra["released"] = tally.released
        summary.extra["rejected_kept"] = tally.rejected_kept
        if tally.warnings:
            summary.extra["warnings"] = sorted(tally.warnings)
        late = sorted(n for n, p in pushers.items() if p.tally.past_deadline)
        if late:
            summary.extra["deadline_reached"] = late
        down = {n: p.tally.unavailable for n, p in pushers.items() if p.tally.unavailable}
        if down:
            summary.extra["channel_unavailable"] = down
            summary.error = summary.error or "channel unavailable, changes stay planned: " + (
                "; ".join(f"{name}: {error}" for name, error in sorted(down.items()))
            )
        errors = {name: e for p in pushers.values() for name, e in p.tally.errors.items()}
        if errors:
            summary.extra["account_errors"] = errors
        self.preview = tally.preview

    def _outcome(self, summary: CycleSummary, options: CycleOptions) -> str:
        """``failed`` when nothing could be trusted (SP-API gave no answer at all, or every
        account in scope was refused); ``partial`` when some of it did not get through."""
        if options.dry_run:
            return "dry_run"
        answered = (
            summary.quotes_ok
            + summary.quotes_out_of_stock
            + summary.quotes_no_eligible_offer
            + summary.quotes_unknown_asin
        )
        if summary.extra.get("spapi_outage") or (summary.quotes_error and not answered):
            summary.error = summary.error or (
                f"SP-API outage: all {summary.quotes_error} quotes failed, none answered; "
                "nothing was planned from them"
            )
            return "failed"
        errors = summary.extra.get("account_errors") or {}
        if self._pushers and set(self._pushers) <= set(errors):
            summary.error = summary.error or "every account failed: " + "; ".join(
                f"{name}: {errors[name]}" for name in sorted(errors)
            )
            return "failed"
        if errors:
            summary.error = summary.error or "; ".join(
                f"{name}: {errors[name]}" for name in sorted(errors)
            )
        if (
            summary.quotes_error
            or summary.changes_failed
            or summary.extra.get("account_errors")
            or summary.extra.get("changes_pending")
        ):
            return "partial"
        return "ok"

    def _open(self, session: Session, options: CycleOptions) -> int:
        now = self._now()
        if not options.dry_run:
            stale = mark_interrupted_cycles(session, now)
            if stale:
                log.warning("%d earlier cycles did not finish; marked failed", stale)
        cycle = Cycle(
            started_at=now,
            status="running",
            dry_run=options.dry_run,
            host=socket.gethostname(),
            pid=os.getpid(),
            options={
                "platforms": list(options.scope.platforms),
                "accounts": list(options.scope.accounts),
                "max_items": options.scope.max_items,
                "dry_run": options.dry_run,
                "skip_fetch": options.skip_fetch,
                "stock_only": options.stock_only,
            },
            summary={},
        )
        session.add(cycle)
        session.flush()
        if not options.dry_run:
            if options.refresh is not None:
                self._replan = open_changes(session, cycle.id)
                self._unplanned = unplanned_quotes(session, cycle.id)
            superseded = supersede_open_changes(session, cycle.id, now)
            if superseded:
                log.info("%d unfinished changes from earlier cycles will be re-planned", superseded)
        return cycle.id

    def _close(self, session: Session, summary: CycleSummary) -> None:
        cycle = session.get(Cycle, summary.cycle_id)
        assert cycle is not None
        cycle.finished_at = self._now()
        cycle.status = summary.status
        cycle.summary = summary.as_dict()
        cycle.error = summary.error

    @staticmethod
    def _log_summary(summary: CycleSummary) -> None:
        log.info(
            "cycle %d %s in %.1f s: %d ASINs (%d requests, %d throttled; %d ok, %d out of stock, "
            "%d no eligible offer, %d unknown to Amazon, %d errors); "
            "changes %d planned, %d applied, %d failed, %d held; %d channel calls",
            summary.cycle_id,
            summary.status,
            summary.duration_s,
            summary.asins,
            summary.spapi_requests,
            summary.spapi_throttled,
            summary.quotes_ok,
            summary.quotes_out_of_stock,
            summary.quotes_no_eligible_offer,
            summary.quotes_unknown_asin,
            summary.quotes_error,
            summary.changes_planned,
            summary.changes_applied,
            summary.changes_failed,
            summary.changes_held,
            summary.channel_calls,
        )


PLAN_CHUNK = 200


def _add_refresh(summary: CycleSummary, stats: RefreshStats, pricing: MeteredPricing) -> None:
    """The single quotes count with the batches' in the quote totals; the rest in
    ``extra["refresh"]``, with each metered operation's requests and throttles."""
    singles = stats.single_statuses
    summary.quotes_ok += singles.get("ok", 0)
    summary.quotes_out_of_stock += singles.get("out_of_stock", 0)
    summary.quotes_no_eligible_offer += singles.get("no_eligible_offer", 0)
    summary.quotes_unknown_asin += singles.get("unknown_asin", 0)
    summary.quotes_error += singles.get("error", 0)
    summary.extra["refresh"] = {
        **stats.as_dict(),
        "requests": dict(pricing.requests),
        "throttled": dict(pricing.throttled),
    }


def _beat(session: Session, *, lock: InstanceLock, phase: str, progress: dict[str, Any]) -> None:
    lock.heartbeat(phase=phase, progress=progress, session=session)


def _reconcile_one(session: Session, *, result: ReadResult, now: datetime) -> ReconcileOutcome:
    return apply_reconcile(session, result, now)


async def _until_done(task: asyncio.Task[Any], stop: Stop) -> None:
    """Await ``task``, but give up (and raise Interrupted) the moment a stop arrives."""
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if task.done():
        task.result()
        return
    raise Interrupted(stop.reason)


def accounts_in_scope(session: Session, scope: Scope) -> list[str]:
    query = select(Account.name).where(Account.active.is_(True)).order_by(Account.name)
    if scope.platforms:
        query = query.where(Account.platform.in_(scope.platforms))
    if scope.accounts:
        query = query.where(Account.name.in_(scope.accounts))
    return list(session.scalars(query))


def accounts_due_for_reconcile(
    session: Session, every: Mapping[str, int], forced: bool | None
) -> list[str]:
    """Accounts never read in bulk (no pull or reconcile yet), or whose last read is
    ``every[name]`` cycles back counting this one (1: every cycle); ``forced`` True or False
    overrides."""
    if forced is not None:
        return list(every) if forced else []
    due = []
    for account in session.scalars(select(Account).where(Account.name.in_(list(every)))):
        if account.last_reconciled_at is None:
            due.append(account.name)
            continue
        cycles_since = session.scalar(
            select(func.count())
            .select_from(Cycle)
            .where(
                Cycle.dry_run.is_(False),
                Cycle.status != "running",
                Cycle.started_at > account.last_reconciled_at,
            )
        )
        if (cycles_since or 0) + 1 >= every[account.name]:  # + 1: this cycle counts
            due.append(account.name)
    return sorted(due)
