"""``ecsync daemon``: a cycle every interval, for months, and never silently stuck.

What the system ecsync replaces got wrong, and what this module does instead:

- *It hung for 40 hours without a log line.* Every cycle has a deadline (a share of the
  interval) enforced here, on top of every call's own timeouts: when it passes, the cycle is
  told to stop, recorded as failed with what it did not reach, and the daemon goes on. A
  heartbeat row in the database is refreshed every few seconds, working or idle, so
  ``status`` and ``/healthz`` tell a stuck daemon from a busy one.
- *It ran three copies of itself.* The ``daemon`` lock is held for the process's life and
  the ``cycle`` lock for each cycle, which a manual ``sync`` also takes: the daemon waits
  for a manual sync rather than running beside it.
- *It ignored Ctrl+C during waits.* Every wait takes the ``Stop``; SIGINT/SIGTERM end the
  process within 2 s from anywhere, keeping the work done (exit 130).
- *Stale error counters re-ran whole cycles.* Each cycle gets a new runner with fresh
  counters; the next cycle starts one interval after the previous START, whatever the
  outcome, never overlapping (an overrun is followed at once by the next, with a warning);
  ``--interval 0`` starts it as soon as the previous one ends (after one that did not
  succeed, no sooner than :data:`FAILED_PAUSE` after its start: a lasting failure must not
  become a tight loop).

Two modes (``[daemon] mode``, ``--mode``): ``sweep`` runs the cycle above every interval;
``continuous`` refreshes without pause (``engine/refresh.py``) and records one cycle per
reporting ``window``, whose fetch phase is the refresher running until the window ends; the
next window starts at once. The refresh scheduler lives in the daemon across windows, so what
it learned is kept; only a restart (or a listing added or retired) changes what it holds.
Every guarantee above holds in both modes.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecsync.alerts import (
    DAEMON_STARTED,
    DAEMON_STOPPED,
    Alert,
    Alerts,
    cycle_alerts,
    trip_alert,
)
from ecsync.amazon.client import BATCH_SIZE, OFFERS_BATCH
from ecsync.amazon.governor import DOCUMENTED
from ecsync.app import App
from ecsync.clock import Clock, Stop, SystemClock
from ecsync.config import Settings, parse_duration
from ecsync.domain.refresh import RefreshPolicy, RefreshScheduler
from ecsync.engine.collect import Scope, collect_asins
from ecsync.engine.cycle import CycleOptions, CycleRunner, RefreshWindow
from ecsync.engine.fetch import BatchReport, FetchStats
from ecsync.engine.refresh import RefreshState, full_quote_rate
from ecsync.engine.runtime import run_with_stop
from ecsync.errors import Interrupted, LockHeld, UsageError
from ecsync.health import DaemonMetrics, HealthServer, HealthState, cycle_succeeded
from ecsync.lock import InstanceLock, lock_path
from ecsync.status import (
    SUMMARY_FIELDS,
    budget_view,
    iso,
    operations_view,
    quote_view,
    refresh_view,
)
from ecsync.store.engine import transaction
from ecsync.store.retention import run_retention
from ecsync.store.schema import Cycle

log = logging.getLogger(__name__)
T = TypeVar("T")

HEARTBEAT_S = 5.0  # real seconds, whatever the time scale: the lease must stay fresh (<= 10 s)
STOP_GRACE_S = 1.2  # after SIGTERM, the cycle's own clean stop gets this long, then is cancelled
DEADLINE_GRACE_S = 30.0  # after the deadline, likewise (the daemon is not shutting down)
RETENTION_EVERY = timedelta(days=1)  # journal retention cadence, on the simulator's scale
LOCK_POLL_S = 1.0  # how often a due cycle re-tries a cycle lock held by a manual sync
PROGRESS_LOG_S = 60.0  # a working cycle writes a progress line at least this often
STORE_REFRESH_S = 60.0  # quote-age and budget gauges are re-read this often (simulated)
STORE_REFRESH_MIN_S = 2.0  # ...but never more often than this, in real seconds
ALERT_FLUSH_S = 0.5  # queued alerts get this long at shutdown
# ``--interval 0``: a cycle that did not succeed is followed no sooner than this long after
# its start (on the simulator's scale). A lasting failure (a refused token, an API down) fails
# every cycle within a second; back to back, that asked Amazon's LWA again and wrote a failed
# cycle several times a second until someone noticed.
FAILED_PAUSE = timedelta(minutes=5)


MODES = ("sweep", "continuous")


def cadence_s(settings: Settings) -> float:
    """Real seconds between cycle rows: the interval (sweep) or the reporting window."""
    daemon = settings.daemon
    every = daemon.window if daemon.mode == "continuous" else daemon.interval
    return settings.scaled(every).total_seconds()


def refresh_policy(settings: Settings) -> RefreshPolicy:
    """The scheduler's policy in real seconds (faster against a sped-up simulator)."""
    scale = settings.runtime.time_scale
    default = RefreshPolicy()
    return RefreshPolicy(
        max_quote_age_s=settings.scaled(settings.daemon.max_quote_age).total_seconds(),
        prior_rate_per_day=default.prior_rate_per_day * scale,
        prior_weight_s=default.prior_weight_s / scale,
        # Simulated time too: unscaled, at --speed 100 the priority list was rebuilt only
        # every 8 simulated hours (when not exhausted first), ranking on stale ages.
        rebuild_s=default.rebuild_s / scale,
    )


def sweep_floor_s(asins: int, settings: Settings) -> float:
    """Real seconds a sweep of ``asins`` takes at getItemOffersBatch's documented rate."""
    quota = DOCUMENTED[OFFERS_BATCH]
    batches = -(-asins // BATCH_SIZE)
    return max(0.0, batches - quota.burst) / (quota.rate * settings.runtime.time_scale)


def human_duration(seconds: float) -> str:
    """``3h``, ``2h 30m``, ``45 s``, ``1.2 s``: for log lines a seller reads."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    if not hours:
        return f"{minutes}m"
    return f"{hours}h {minutes}m" if minutes else f"{hours}h"


@dataclass(frozen=True, slots=True)
class DeadlineHit:
    """Where a cycle was when its deadline passed."""

    budget_s: float
    phase: str
    progress: dict[str, Any] = field(default_factory=dict)


def deadline_message(hit: DeadlineHit, summary: dict[str, Any]) -> str:
    """'deadline reached ...: what it did not reach', from the cycle's own counters."""
    parts = []
    if hit.phase in ("starting", "collect"):
        parts.append("collecting the ASINs did not finish")
    elif hit.phase == "reconcile":
        parts.append("reading the channels (reconcile) did not finish")
    asins = int(summary.get("asins") or 0)
    fetched = sum(
        int(summary.get(f"quotes_{s}") or 0)
        for s in ("ok", "out_of_stock", "no_eligible_offer", "error")
    )
    if asins and fetched < asins:
        parts.append(f"{asins - fetched} of {asins} ASINs not fetched, so not planned")
    pending = int(summary.get("changes_pending") or 0)
    if pending:
        parts.append(f"{pending} changes not pushed (the next cycle re-plans them)")
    if not parts:
        parts.append("the cycle was finishing")
    return (
        f"deadline reached after {human_duration(hit.budget_s)} in phase {hit.phase}: "
        + "; ".join(parts)
    )


class _FetchLog:
    """Fetch progress for an unattended process: one INFO line to start, DEBUG per batch
    (the heartbeat writes a progress line every minute, so a long fetch is never silent)."""

    def fetch_started(self, asins: int, batches: int) -> None:
        log.info("fetching %d ASINs in %d batches", asins, batches)

    def batch_done(self, report: BatchReport, stats: FetchStats) -> None:
        log.debug(
            "batch %d/%d: %d ASINs in %.2f s",
            report.index,
            report.total,
            report.asins,
            report.seconds,
        )


def cycle_period_s(settings: Settings) -> float:
    """The real seconds a cycle is judged by (deadline, health, alert gap, quote age): the
    reporting window (continuous), the interval, or for a zero interval (back to back) the
    default cadence's."""
    daemon = settings.daemon
    if daemon.mode == "continuous":
        return settings.scaled(daemon.window).total_seconds()
    return settings.scaled(daemon.period).total_seconds()


class Daemon:
    """The schedule loop. ``run`` returns only through ``Interrupted`` (or ``max_cycles``,
    for tests); the locks, the health server and the alert channel belong to the caller."""

    def __init__(
        self,
        app: App,
        stop: Stop,
        *,
        daemon_lock: InstanceLock,
        cycle_lock: InstanceLock,
        alerts: Alerts,
        metrics: DaemonMetrics,
        health: HealthState,
        clock: Clock | None = None,
    ) -> None:
        self._app = app
        self._stop = stop
        self._daemon_lock = daemon_lock
        self._cycle_lock = cycle_lock
        self._alerts = alerts
        self._metrics = metrics
        self._health = health
        self._clock = clock or SystemClock()
        settings = app.settings
        self.mode = settings.daemon.mode
        # interval_s: from one cycle's start to the next (0: back to back); period_s: what a
        # cycle is judged by (deadline, health, alert gap, quote age).
        self.interval_s = cadence_s(settings)
        self.period_s = cycle_period_s(settings)
        fraction = settings.daemon.deadline_fraction
        self._refresh: RefreshState | None = None
        if self.mode == "continuous":
            # The window's refresh runs to its end; what it found then gets a share of a
            # window more to be planned and pushed.
            self.deadline_s = self.period_s * (1 + max(0.1, 1 - fraction))
            scale = settings.runtime.time_scale
            self._refresh = RefreshState(
                RefreshScheduler(refresh_policy(settings)),
                full_rate=full_quote_rate(scale),
                time_scale=scale,
            )
        else:
            self.deadline_s = self.period_s * fraction
        self._budget_s = self.deadline_s  # the running cycle's (see _cycle_budget_s)
        self.cycles_run = 0
        self._state = "idle"
        self._phase = "starting"
        self._next_cycle_at: float | None = None  # wall clock
        self._runner: CycleRunner | None = None
        self._beat_lock = asyncio.Lock()
        self._pruned_at: float | None = None  # wall clock of the last journal retention
        # Accounts whose mass-hide trip this window was alerted at once (continuous mode):
        # the window's own guard alert leaves them out. Written from the planning thread.
        self._tripped_live: set[str] = set()

    # --- the loop -------------------------------------------------------------------------

    async def run(self, max_cycles: int | None = None) -> None:
        settings = self._app.settings
        scale = settings.runtime.time_scale
        every = settings.daemon.window if self.mode == "continuous" else settings.daemon.interval
        scaled = f" (time_scale {scale:g}: {every} simulated)" if scale != 1 else ""
        if self.mode == "continuous":
            log.info(
                "daemon started: pid %d on %s, continuous refresh, a reporting window every %s%s",
                os.getpid(),
                socket.gethostname(),
                human_duration(self.interval_s),
                scaled,
            )
        else:
            cadence = (
                f"a cycle every {human_duration(self.interval_s)}"
                if self.interval_s > 0
                else "cycles back to back (interval 0)"
            )
            log.info(
                "daemon started: pid %d on %s, %s%s, each with a deadline of %s",
                os.getpid(),
                socket.gethostname(),
                cadence,
                scaled,
                human_duration(self.deadline_s),
            )
        self._alert(
            Alert(
                DAEMON_STARTED,
                "daemon started",
                f"ecsync daemon started (pid {os.getpid()}): {every}.",
                "info",
            )
        )
        await self._startup_state()
        beating = asyncio.create_task(self._heartbeats(), name="daemon-heartbeat")
        reading = asyncio.create_task(self._store_gauges(), name="daemon-store-gauges")
        reason = "stopped"
        try:
            await self._loop(max_cycles)
        except Interrupted as exc:
            reason = str(exc) or "stop requested"
            raise
        except BaseException as exc:
            reason = f"crashed: {type(exc).__name__}: {exc}"
            raise
        finally:
            beating.cancel()
            reading.cancel()
            await asyncio.gather(beating, reading, return_exceptions=True)
            log.info("daemon stopping (%s) after %d cycles", reason, self.cycles_run)
            self._alert(
                Alert(
                    DAEMON_STOPPED,
                    "daemon stopped",
                    f"ecsync daemon (pid {os.getpid()}) stopped after {self.cycles_run} cycles: "
                    f"{reason}.",
                    "warning" if reason.startswith("crashed") else "info",
                )
            )

    async def _loop(self, max_cycles: int | None) -> None:
        next_start = self._clock.monotonic()
        while max_cycles is None or self.cycles_run < max_cycles:
            wait = next_start - self._clock.monotonic()
            if wait > 0:
                self._state, self._phase = "idle", "sleeping"
                self._next_cycle_at = self._clock.time() + wait
                log.info(
                    "next cycle at %s (in %s)",
                    iso(datetime.fromtimestamp(self._next_cycle_at, UTC)),
                    human_duration(wait),
                )
                await self._beat()
                if await self._stop.sleep(wait):
                    raise Interrupted(self._stop.reason)
            if self._stop.is_set():
                raise Interrupted(self._stop.reason)
            await self._take_cycle_lock()
            started = self._clock.monotonic()
            next_start = started + self.interval_s
            self._next_cycle_at = self._clock.time() + self.interval_s
            try:
                succeeded = await self._cycle()
            finally:
                self._cycle_lock.release()
            self.cycles_run += 1
            took = self._clock.monotonic() - started
            if not succeeded and not self._stop.is_set():
                if self.interval_s == 0:
                    next_start = self._after_failure(started)
                elif self.mode == "continuous":
                    # A window cut short (a refused token, the SP-API breaker) must not leave
                    # the refresh asleep until its end: the next one follows after the pause.
                    next_start = min(next_start, self._after_failure(started))
            overran = 0 < self.interval_s <= took and self.mode == "sweep"
            if overran and not self._stop.is_set():
                log.warning(
                    "the cycle took %s, longer than the interval (%s): the next one starts "
                    "now (cycles never overlap)",
                    human_duration(took),
                    human_duration(self.interval_s),
                )

    def _after_failure(self, started: float) -> float:
        """``--interval 0``, or a continuous window, after a cycle that did not succeed: when
        the next may start.

        :data:`FAILED_PAUSE` after this one's start, as if it were the interval: a lasting
        failure fails within a second and must not be retried in a tight loop, while a long
        cycle that failed (its deadline, hours in) is followed at once, as any other. In
        continuous mode the refresh is meant to run without pause: a window that failed early
        is not followed at its window's end (an hour of sell-outs left on sale) but after
        this pause."""
        settings = self._app.settings
        pause = settings.scaled(FAILED_PAUSE).total_seconds()
        next_start = started + pause
        wait = next_start - self._clock.monotonic()
        if wait > 0:
            simulated = (
                f" ({human_duration(FAILED_PAUSE.total_seconds())} simulated)"
                if settings.runtime.time_scale != 1
                else ""
            )
            if self.mode == "continuous":
                log.warning(
                    "the window did not succeed: the next window starts %s%s after it "
                    "started, not at its window's end, nor at once (a lasting failure is not "
                    "retried in a tight loop)",
                    human_duration(pause),
                    simulated,
                )
            else:
                log.warning(
                    "the cycle did not succeed: with --interval 0 the next one starts %s%s "
                    "after it started, not at once, so a lasting failure is not retried in a "
                    "tight loop",
                    human_duration(pause),
                    simulated,
                )
        return next_start

    async def _take_cycle_lock(self) -> None:
        """Take the cycle lock; while a manual sync holds it, wait (stop-responsive).

        Taken and released on the event loop's thread: filelock's state is per thread.
        """
        waited = False
        while True:
            try:
                self._cycle_lock.acquire()
            except LockHeld as exc:
                if not waited:
                    waited = True
                    log.warning("a cycle is due, but %s; waiting for it to finish", exc)
                    self._state, self._phase = "idle", "waiting for the cycle lock"
                    await self._beat()
                if await self._stop.sleep(LOCK_POLL_S):
                    raise Interrupted(self._stop.reason) from None
                continue
            if waited:
                log.info("the cycle lock is free: starting the cycle")
            return

    # --- one cycle ------------------------------------------------------------------------

    async def _cycle(self) -> bool:
        """One cycle under its deadline, recorded; whether it succeeded (``cycle_succeeded``)."""
        cycle_stop = Stop()
        runner = CycleRunner(
            self._app,
            cycle_stop,
            fetch_observer=_FetchLog(),
            clock=self._clock,
            lock=self._cycle_lock,
        )
        started_wall = self._clock.time()
        budget_s = self._budget_s = await self._cycle_budget_s()
        deadline = started_wall + budget_s
        self._runner = runner
        self._state, self._phase = "running", "starting"
        await self._beat()
        options = CycleOptions(deadline=deadline)
        if self._refresh is not None:
            until = started_wall + self.interval_s
            self._tripped_live = set()
            options = CycleOptions(
                deadline=deadline,
                refresh=RefreshWindow(until, self._refresh),
                on_trip=functools.partial(self._on_trip, runner),
            )
        task = asyncio.create_task(runner.run(options), name="cycle")
        hit: DeadlineHit | None = None
        try:
            hit = await self._watch(task, cycle_stop, runner, deadline)
            summary = (await task).as_dict()
        except Interrupted:
            if self._stop.is_set():
                await self._log_interrupted(started_wall)
                raise
            summary = await self._record_deadline(started_wall, hit or DeadlineHit(0.0, "?"))
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not task.cancelled() or (current is not None and current.cancelling()):
                raise  # the daemon itself is being torn down
            if self._stop.is_set():
                await self._log_interrupted(started_wall)
                raise Interrupted(self._stop.reason) from None
            summary = await self._record_deadline(started_wall, hit or DeadlineHit(0.0, "?"))
        except Exception as exc:
            log.exception("the cycle failed before it could record its outcome")
            summary = {
                **SUMMARY_FIELDS,
                "status": "failed",
                "error": f"{type(exc).__name__}: {exc}",
            }
        finally:
            self._runner = None
            self._state, self._phase = "idle", "finished"
        await self._after_cycle(summary, started_wall)
        return cycle_succeeded(summary)

    async def _cycle_budget_s(self) -> float:
        """The cycle's deadline budget. Back to back (``--interval 0``) there is no interval to
        fit in: a sweep must get the time its catalogue needs at the documented floor (twice
        it), or a large catalogue's sweep would be cut short every cycle and its tail starved."""
        if self.mode != "sweep" or self.interval_s > 0:
            return self.deadline_s
        asins = await asyncio.to_thread(
            self._in_transaction, lambda session: len(collect_asins(session, Scope()))
        )
        floor_s = sweep_floor_s(asins, self._app.settings)
        return max(self.deadline_s, 2 * floor_s)

    async def _watch(
        self,
        task: asyncio.Task[Any],
        cycle_stop: Stop,
        runner: CycleRunner,
        deadline: float,
    ) -> DeadlineHit | None:
        """Wait for the cycle; at the deadline or on a stop, stop it (per-cycle ``Stop``: the
        daemon's own stays un-set on a deadline) and cancel it if it does not end in time."""
        stopper = asyncio.ensure_future(self._stop.wait())
        try:
            timeout = max(0.0, deadline - self._clock.time())
            await asyncio.wait(
                {task, stopper}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if task.done():
                return None
            hit = None
            if self._stop.is_set():
                cycle_stop.set(self._stop.reason)
                grace_end = self._clock.monotonic() + STOP_GRACE_S
            else:
                hit = DeadlineHit(self._budget_s, runner.phase, runner.progress())
                log.warning(
                    "cycle deadline (%s) reached in phase %s: stopping the cycle",
                    human_duration(self._budget_s),
                    runner.phase,
                )
                cycle_stop.set("deadline reached")
                grace_end = self._clock.monotonic() + DEADLINE_GRACE_S
            while not task.done():
                if self._stop.is_set():
                    grace_end = min(grace_end, self._clock.monotonic() + STOP_GRACE_S)
                    cycle_stop.set(self._stop.reason)
                remaining = grace_end - self._clock.monotonic()
                if remaining <= 0:
                    log.error("the cycle did not stop in time: cancelling it")
                    task.cancel()
                    await asyncio.wait({task})
                    break
                waiting = {task} if stopper.done() else {task, stopper}
                await asyncio.wait(waiting, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            return hit
        finally:
            stopper.cancel()

    async def _record_deadline(self, started_wall: float, hit: DeadlineHit) -> dict[str, Any]:
        """The runner recorded the cycle as interrupted; it failed on its deadline, and the
        row says so with what it did not reach."""

        def mark(session: Session) -> dict[str, Any]:
            cycle = _own_cycle(session, started_wall)
            summary: dict[str, Any] = {**SUMMARY_FIELDS, **(cycle.summary if cycle else {})}
            message = deadline_message(hit, summary)
            summary.update(status="failed", error=message, deadline_s=round(hit.budget_s, 3))
            if cycle is not None:
                summary["cycle_id"] = cycle.id
                cycle.status = "failed"
                cycle.error = message
                cycle.summary = dict(summary)
                if cycle.finished_at is None:
                    cycle.finished_at = datetime.fromtimestamp(self._clock.time(), UTC)
            return summary

        summary = await asyncio.to_thread(self._in_transaction, mark)
        log.error("cycle %s failed: %s", summary.get("cycle_id"), summary["error"])
        return summary

    async def _log_interrupted(self, started_wall: float) -> None:
        """The per-cycle record of a cycle cut short by SIGTERM/SIGINT, as the runner saved it."""

        def read(session: Session) -> dict[str, Any] | None:
            cycle = _own_cycle(session, started_wall)
            if cycle is None:
                return None
            return {
                **SUMMARY_FIELDS,
                **(cycle.summary or {}),
                "cycle_id": cycle.id,
                "status": cycle.status,
                "error": cycle.error,
            }

        try:
            summary = await asyncio.to_thread(self._in_transaction, read)
        except Exception:
            log.warning("the interrupted cycle's record could not be read", exc_info=True)
            return
        if summary is not None:
            _log_record(summary, started_wall)

    async def _after_cycle(self, summary: dict[str, Any], started_wall: float) -> None:
        """The per-cycle JSON record, metrics, health and alerts: none of it may break the
        daemon."""
        finished = self._clock.time()
        _log_record(summary, started_wall)
        try:
            self._metrics.record_cycle(summary, finished)
            if cycle_succeeded(summary):
                self._health.last_success_at = finished
        except Exception:
            log.warning("metrics not updated for this cycle", exc_info=True)
        told = self._tripped_live
        if told:  # said at once when they tripped: not again at the window's end
            left = [a for a in summary.get("mass_hide_tripped") or [] if a not in told]
            summary = {**summary, "mass_hide_tripped": left}
            if not left:
                summary["held_hides"] = 0
        for alert in cycle_alerts(summary):
            self._alert(alert)
        await self._prune_journal()
        await self._refresh_store()
        await self._beat()

    async def _prune_journal(self) -> None:
        """Journal retention at most once a (scaled) day: the daemon runs for months."""
        settings = self._app.settings
        every = settings.scaled(RETENTION_EVERY).total_seconds()
        if self._pruned_at is not None and self._clock.time() - self._pruned_at < every:
            return
        self._pruned_at = self._clock.time()
        now = datetime.fromtimestamp(self._pruned_at, UTC)
        try:
            await asyncio.to_thread(run_retention, self._app.sessions, settings, now)
        except Exception:
            log.warning("journal retention not run this time", exc_info=True)

    def _on_trip(self, runner: CycleRunner, account: str, reason: str) -> None:
        """The planner's ``on_trip``, from its thread: ``Alerts.send`` only queues (and is
        thread-safe), so the alert leaves now, not when the window closes."""
        self._tripped_live.add(account)
        self._alert(trip_alert(account, reason, runner.summary.cycle_id or None))

    def _alert(self, alert: Alert) -> None:
        try:
            self._alerts.send(alert)
        except Exception:
            log.warning("alert %s not queued", alert.kind, exc_info=True)

    # --- heartbeat and read-model gauges ---------------------------------------------------

    async def _heartbeats(self) -> None:
        last_progress = self._clock.monotonic()
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            await self._beat()
            now = self._clock.monotonic()
            runner = self._runner
            if runner is not None and now - last_progress >= PROGRESS_LOG_S:
                last_progress = now
                log.info("cycle working: %s", json.dumps(runner.progress(), default=str))

    async def _store_gauges(self) -> None:
        """Re-read the quote-age, per-operation and budget gauges on their own timer, also
        while a cycle works: in continuous mode a window is always working, and gauges read
        only between cycles stayed as old as the daemon. A task of its own, so a slow read
        of a big store never delays the lease's heartbeat; the read runs in a thread, and a
        stop cancels this task without waiting for it."""
        every = max(
            self._app.settings.scaled(timedelta(seconds=STORE_REFRESH_S)).total_seconds(),
            STORE_REFRESH_MIN_S,
        )
        while True:
            await asyncio.sleep(every)
            await self._refresh_store()

    async def _beat(self) -> None:
        """Refresh the daemon's lease: state, phase, progress and the next cycle's time."""
        # mode: so ``status`` (another process) can call a continuous cycle a window.
        progress: dict[str, Any] = {"interval_s": round(self.interval_s, 3), "mode": self.mode}
        phase = self._phase
        runner = self._runner
        if runner is not None:
            phase = runner.phase
            progress.update(runner.progress())
        progress["cycles_run"] = self.cycles_run
        next_at = datetime.fromtimestamp(self._next_cycle_at, UTC) if self._next_cycle_at else None
        beat = functools.partial(
            self._daemon_lock.heartbeat,
            state=self._state,
            phase=phase[:32],
            progress=progress,
            next_cycle_at=next_at,
        )
        try:
            async with self._beat_lock:
                await asyncio.to_thread(beat)
        except Exception as exc:
            log.warning("daemon heartbeat not written: %s", exc)
            return
        now = self._clock.time()
        self._health.heartbeat_at = now
        self._health.state = self._state
        self._health.phase = phase
        self._metrics.record_state(self._state, now)
        self._metrics.record_refresh(refresh_view(progress))

    async def _startup_state(self) -> None:
        """Last success from the database, so /healthz is right from the first second."""

        def last_success(session: Session) -> float | None:
            rows = session.scalars(
                select(Cycle)
                .where(Cycle.dry_run.is_(False), Cycle.finished_at.is_not(None))
                .order_by(Cycle.id.desc())
                .limit(50)
            )
            for cycle in rows:
                if cycle_succeeded({**(cycle.summary or {}), "status": cycle.status}):
                    assert cycle.finished_at is not None
                    return cycle.finished_at.timestamp()
            return None

        try:
            self._health.last_success_at = await asyncio.to_thread(
                self._in_transaction, last_success
            )
        except Exception:
            log.warning("could not read the last successful cycle", exc_info=True)
        await self._refresh_store()

    async def _refresh_store(self) -> None:
        def read(
            session: Session,
        ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
            now = datetime.now(UTC)
            return (
                quote_view(session, now, self.period_s),
                budget_view(session, self._app.settings, now),
                operations_view(session),
            )

        try:
            quotes, budgets, operations = await asyncio.to_thread(self._in_transaction, read)
            self._metrics.record_store(quotes, budgets, operations)
        except Exception:
            log.warning("quote and budget gauges not refreshed", exc_info=True)

    def _in_transaction(self, work: Callable[[Session], T]) -> T:
        with transaction(self._app.sessions) as session:
            return work(session)


def _own_cycle(session: Session, started_wall: float) -> Cycle | None:
    """The cycle this process started at ``started_wall`` (the runner keeps its id to itself;
    the cycle lock guarantees no other cycle started meanwhile)."""
    return session.scalars(
        select(Cycle)
        .where(
            Cycle.pid == os.getpid(),
            Cycle.host == socket.gethostname(),
            Cycle.started_at >= datetime.fromtimestamp(started_wall - 1, UTC),
        )
        .order_by(Cycle.id.desc())
        .limit(1)
    ).first()


def _log_record(summary: dict[str, Any], started_wall: float) -> None:
    """One JSON object per cycle at INFO: the ``sync --json`` fields plus ``started_at``."""
    record = {**summary, "started_at": iso(datetime.fromtimestamp(started_wall, UTC))}
    log.info("%s", json.dumps(record, default=str, ensure_ascii=False))


def run_daemon(app: App, *, on_locked: Callable[[], None] | None = None) -> None:
    """Hold the daemon lock, serve health and metrics, and run cycles until a signal.

    Raises ``LockHeld`` (exit 3) when another daemon runs, ``Interrupted`` (exit 130) after
    a clean stop. ``on_locked`` runs once the lock is ours: the CLI takes over the log file
    there, so a second daemon that is about to exit 3 never rotates the first one's file.
    """
    settings = app.settings
    daemon_lock = InstanceLock(
        app.sessions, "daemon", lock_path(settings.database_url, settings.config_path, "daemon")
    )
    daemon_lock.acquire()
    try:
        if on_locked is not None:
            on_locked()
        cycle_lock = InstanceLock(
            app.sessions, "cycle", lock_path(settings.database_url, settings.config_path, "cycle")
        )
        period_s = cycle_period_s(settings)
        metrics = DaemonMetrics()
        health = HealthState(interval_s=period_s)
        server = _health_server(app, health, metrics)
        alerts = Alerts(settings.daemon.alerts, min_gap_s=period_s)
        try:
            run_with_stop(
                lambda stop: Daemon(
                    app,
                    stop,
                    daemon_lock=daemon_lock,
                    cycle_lock=cycle_lock,
                    alerts=alerts,
                    metrics=metrics,
                    health=health,
                ).run()
            )
        finally:
            if server is not None:
                server.close()
            alerts.close(ALERT_FLUSH_S)
    finally:
        daemon_lock.release()


def _health_server(app: App, health: HealthState, metrics: DaemonMetrics) -> HealthServer | None:
    settings = app.settings
    port = settings.daemon.metrics_port
    if port is None:
        return None
    host = settings.daemon.metrics_host
    try:
        return HealthServer(host, port, health, metrics).start()
    except OSError as exc:
        raise UsageError(
            f"{settings.config_path}: daemon.metrics_port: cannot listen on {host}:{port}: "
            f"{exc.strerror or exc}"
        ) from None


def mode_override(value: str) -> str:
    """``--mode``: one of the two, or a usage error naming them."""
    if value not in MODES:
        raise UsageError(f"--mode: expected one of {', '.join(MODES)}, got {value!r}")
    return value


def interval_override(value: str) -> timedelta:
    """``--interval`` as a duration, or a usage error saying what is accepted. Zero (``0``,
    ``0s``, ``0h``) is accepted here: the next cycle starts as soon as the last one ends."""
    try:
        return parse_duration(value, allow_zero=True)
    except ValueError as exc:
        raise UsageError(f"--interval: {exc}") from None
