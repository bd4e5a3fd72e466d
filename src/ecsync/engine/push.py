"""Step 4 of the cycle: journaled changes -> channel calls, one worker per account.

Changes arrive while later batches are still being fetched (the cycle is pipelined), and
each account drains its own priority queue: hides first, then price fixes and raises, then
shows, then cuts, so that when the budget runs short what protects money has gone out.
Accounts push in parallel. A change the channel could not take now (budget window spent,
transient failure) stays ``planned`` and is retried when the window reopens if the
cycle's deadline allows, else by the next cycle.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ecsync.channels.errors import ChannelAuthError
from ecsync.channels.protocol import ChangeResult, ChannelAdapter, Outcome
from ecsync.clock import Clock, Stop
from ecsync.errors import Interrupted
from ecsync.store.journal import JournaledChange, mark_sent, settle
from ecsync.store.runner import DbRunner

log = logging.getLogger(__name__)

CHUNK = 25  # eBay's bulk size; BASE adapters send these one call per item
MAX_DEFER_WAIT_S = 3600.0
# Rounds in a row in which every change came back transiently failed (5xx, timeouts, after
# the adapter's own retries) before the account stops for this cycle: a channel that is down
# must not be retried until the deadline, spending its call budget on errors.
MAX_TRANSIENT_ROUNDS = 3


@dataclass
class PushTally:
    applied: int = 0
    failed: int = 0
    gone: int = 0
    deferred: int = 0
    past_deadline: bool = False  # the budget comes back only after the cycle's deadline
    unavailable: str | None = None  # the channel kept failing: stopped for this cycle, why
    errors: dict[str, str] = field(default_factory=dict)


class AccountPusher:
    """Owns one account's queue and adapter for one cycle."""

    def __init__(
        self,
        adapter: ChannelAdapter,
        db: DbRunner,
        stop: Stop,
        clock: Clock,
        *,
        deadline: float | None,
    ) -> None:
        self.adapter = adapter
        self._db = db
        self._stop = stop
        self._clock = clock
        self._deadline = deadline
        self._queue: asyncio.PriorityQueue[tuple[int, int, JournaledChange | None]] = (
            asyncio.PriorityQueue()
        )
        self._closed = False
        self._exhausted = False
        self._transient_rounds = 0
        self.tally = PushTally()

    def put(self, change: JournaledChange) -> None:
        if self._exhausted or self.failed:  # it stays planned for the next cycle
            self.tally.deferred += 1
            return
        self._queue.put_nowait((change.priority, change.change_id, change))

    @property
    def failed(self) -> bool:
        """The account's credentials were refused: nothing more goes out this cycle."""
        return self.adapter.account in self.tally.errors

    def fail(self, reason: str) -> None:
        """Stop this account only (its changes stay planned); the other accounts go on."""
        self.tally.errors.setdefault(self.adapter.account, reason)
        self._drain_rest()

    def close(self) -> None:
        """No more changes will come this cycle; the worker ends once the queue is empty."""
        self._closed = True
        self._queue.put_nowait((1 << 30, 0, None))

    async def run(self) -> PushTally:
        name = self.adapter.account
        try:
            while not self.failed:
                chunk = await self._next_chunk()
                if not chunk:
                    return self.tally
                await self._push(chunk)
        except ChannelAuthError as exc:
            log.error("%s: push stopped, its changes stay planned: %s", name, exc)
            self.fail(str(exc))
        return self.tally

    async def _next_chunk(self) -> list[JournaledChange]:
        """Wait for at least one change (or the end), then take what is queued up to CHUNK."""
        chunk: list[JournaledChange] = []
        while not chunk:
            priority, change_id, change = await self._queue.get()
            if change is None:
                if self._queue.empty():
                    return []
                self._queue.put_nowait((priority, change_id, None))  # sentinel goes last
                continue
            chunk.append(change)
        while len(chunk) < CHUNK and not self._queue.empty():
            priority, change_id, change = self._queue.get_nowait()
            if change is None:
                self._queue.put_nowait((priority, change_id, None))
                break
            chunk.append(change)
        return chunk

    async def _push(self, chunk: Sequence[JournaledChange]) -> None:
        if self._stop.is_set():
            raise Interrupted(self._stop.reason)
        ids = [c.change_id for c in chunk]
        await self._db.run(lambda s: mark_sent(s, ids, self._now()))
        try:
            results = await self.adapter.apply([c.channel_change for c in chunk])
        except ChannelAuthError as exc:
            # Refused before the chunk could be confirmed: back to planned, with why.
            unsent = [ChangeResult(c.change_id, Outcome.DEFERRED, error=str(exc)) for c in chunk]
            await self._db.run(lambda s: settle(s, unsent, self._now()))
            raise
        await self._db.run(lambda s: settle(s, results, self._now()))
        deferred: list[tuple[JournaledChange, ChangeResult]] = []
        for change, result in zip(chunk, results, strict=True):
            if result.outcome is Outcome.APPLIED:
                self.tally.applied += 1
                self._transient_rounds = 0
            elif result.outcome is Outcome.DEFERRED:
                deferred.append((change, result))
            else:
                self.tally.failed += 1
                self.tally.gone += result.outcome is Outcome.GONE
                log.warning(
                    "%s: change %d %s: %s",
                    self.adapter.account,
                    change.change_id,
                    result.outcome.value,
                    result.error,
                )
        if deferred:
            await self._defer(deferred)

    async def _defer(self, deferred: list[tuple[JournaledChange, ChangeResult]]) -> None:
        """Wait for the budget to come back if the cycle can afford it, then requeue."""
        now = self._clock.time()
        if all(result.retry_after is None for _c, result in deferred):
            self._transient_rounds += 1
            if self._transient_rounds >= MAX_TRANSIENT_ROUNDS:
                error = deferred[0][1].error or "transient failures"
                self.tally.unavailable = error
                self.tally.deferred += len(deferred)
                log.warning(
                    "%s: the channel keeps failing (%s); its %d changes and the rest wait for "
                    "the next cycle",
                    self.adapter.account,
                    error,
                    len(deferred),
                )
                self._exhausted = True
                self._drain_rest()
                return
        retry_at = max(
            (r.retry_after.timestamp() for _c, r in deferred if r.retry_after), default=now + 1
        )
        wait = max(0.0, retry_at - now)
        if (self._deadline is not None and retry_at > self._deadline) or wait > MAX_DEFER_WAIT_S:
            self.tally.past_deadline = self._deadline is not None and retry_at > self._deadline
            self.tally.deferred += len(deferred)
            log.warning(
                "%s: %d changes wait for the next cycle (%s)",
                self.adapter.account,
                len(deferred),
                deferred[0][1].error,
            )
            self._exhausted = True
            self._drain_rest()
            return
        log.info(
            "%s: %d changes deferred (%s); retrying in %.1f s",
            self.adapter.account,
            len(deferred),
            deferred[0][1].error,
            wait,
        )
        if await self._stop.sleep(wait):
            raise Interrupted(self._stop.reason)
        for change, _result in deferred:
            self.put(change)

    def _drain_rest(self) -> None:
        """Budget gone for this cycle: what is queued stays ``planned`` for the next one."""
        while not self._queue.empty():
            _p, _i, change = self._queue.get_nowait()
            if change is not None:
                self.tally.deferred += 1
        if self._closed:
            self._queue.put_nowait((1 << 30, 0, None))

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.time(), UTC)
