"""Step 2 of the cycle: every collected ASIN fetched once, at the rate Amazon grants.

Batches of 20 go out through a few workers that each wait for the governor's token, so the
pace is set by the shared bucket alone and a slow answer never idles the budget. A 429 puts
the batch back (never dropped); 5xx, timeouts and malformed answers are retried a bounded
number of times and then become ``error`` quotes, which keep the last good price.

A circuit breaker stops hammering a dead API: after ``outage_batches`` batches in a row have
failed as a whole, no further batch is sent this cycle. The ASINs not fetched keep their
last good quotes untouched (nothing is hidden because of the outage), one warning says so,
and ``FetchStats.circuit_open`` tells the cycle summary (``spapi_outage``).

Two ways to say what to fetch: ``run(asins)`` splits a fixed list (a sweep), and
``run_source(source)`` asks a :class:`BatchSource` for each next batch until it has none
(continuous refresh: the scheduler decides, batch by batch, what is most worth quoting),
telling a callback how each batch ended. Both share every rule above.

Turning an answer into quote rows, writing them and handing them to the planner lives in one
place (:func:`quotes_from_items`, :class:`QuoteSink`), shared with the single-ASIN quotes of
the continuous refresher.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from ecsync.amazon.client import (
    BATCH_SIZE,
    OFFERS_BATCH,
    BatchAnswer,
    ItemAnswer,
    OffersClient,
)
from ecsync.amazon.errors import (
    AuthFailed,
    BatchRejected,
    Throttled,
    TokenRejected,
    TransientError,
)
from ecsync.amazon.governor import DOCUMENTED, RateGovernor
from ecsync.clock import Clock, Stop, SystemClock
from ecsync.config import AmazonSettings, OfferRules
from ecsync.domain.model import QuoteStatus
from ecsync.domain.quotes import (
    quote_from_error,
    quote_from_item_error,
    quote_from_payload,
    settle_batch,
)
from ecsync.errors import Interrupted
from ecsync.store.quotes import QuoteWrite, write_quotes
from ecsync.store.runner import DbRunner

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_BACKOFF_S = 30.0
MAX_TOKEN_REJECTIONS = 2  # per batch; a third refusal of a fresh token is not expiry


@dataclass(frozen=True, slots=True)
class BatchReport:
    index: int
    total: int
    asins: int
    seconds: float
    statuses: Counter[str]
    attempts: int


class FetchObserver(Protocol):
    """Progress callbacks (the CLI draws a live display or logs a line per batch)."""

    def fetch_started(self, asins: int, batches: int) -> None: ...

    def batch_done(self, report: BatchReport, stats: FetchStats) -> None: ...


@dataclass
class FetchStats:
    asins: int = 0
    batches: int = 0
    batches_done: int = 0
    requests: int = 0
    throttled: int = 0
    token_refusals: int = 0  # 403s for an expired or revoked token, retried after a refresh
    retries: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    granted_rate: float = DOCUMENTED[OFFERS_BATCH].rate
    started: float = 0.0
    failed_in_a_row: int = 0  # batches that failed as a whole, since the last answered one
    circuit_open: bool = False  # the breaker stopped the fetch: SP-API looked down
    skipped: int = 0  # ASINs not asked because the breaker was open

    @property
    def floor_s(self) -> float:
        """What the granted rate makes unavoidable: every request after the first burst."""
        burst = DOCUMENTED[OFFERS_BATCH].burst
        return max(0.0, self.batches - burst) / self.granted_rate


@dataclass
class _Progress:
    """What one batch has been through so far, across its retries."""

    attempts: int = 0  # requests sent
    rejections: int = 0  # access tokens refused
    last_error: str = ""


class _Skipped(Exception):
    """The circuit breaker opened before this batch was sent: leave its ASINs alone."""


class _TokenUnavailable(TransientError):
    """The LWA token could not be had (transient); after the retries: an auth failure."""


QuotesHandler = Callable[[Sequence[QuoteWrite]], Awaitable[None]]
# A batch of a source is done: its ASINs, the quotes written (none when it was skipped or
# cut short) and, per good quote, whether it changed the product (``write_quotes``).
BatchHandler = Callable[[Sequence[str], Sequence[QuoteWrite], Mapping[str, bool]], Awaitable[None]]


class BatchSource(Protocol):
    """Where a continuous fetch takes its batches from (the refresh scheduler)."""

    async def next_batch(self) -> list[str] | None:
        """Up to 20 ASINs to quote next; None when there is nothing more to fetch (the
        reporting window ended). May wait, but must end its wait when the run is stopped."""
        ...


def quotes_from_items(items: Sequence[ItemAnswer], rules: OfferRules) -> list[QuoteWrite]:
    """The quote rows of one answer (a batch's items, or a getItemOffers's one item), each
    with what its answer implied for probes; refusals settled as a batch's are."""
    quotes = []
    for item in items:
        if item.payload is not None:
            quote = quote_from_payload(item.payload, rules)
        elif item.status_code is not None:
            quote = quote_from_item_error(item.asin, item.status_code, item.code, item.message)
        else:
            quote = quote_from_error(item.error or "no answer")
        quotes.append(quote)
    writes = []
    for item, quote in zip(items, settle_batch(quotes), strict=True):
        if quote.status in (QuoteStatus.ERROR, QuoteStatus.UNKNOWN_ASIN):
            log.debug("%s: %s quote: %s", item.asin, quote.status, quote.error)
        writes.append(QuoteWrite(item.asin, quote, item.quote_view))
    return writes


class QuoteSink:
    """Where quotes go: onto the product rows (unless a dry run), then to the planner."""

    def __init__(
        self,
        db: DbRunner,
        *,
        write: bool = True,
        clock: Clock | None = None,
        on_quotes: QuotesHandler | None = None,
    ) -> None:
        self._db = db
        self._write = write
        self._clock = clock or SystemClock()
        self._on_quotes = on_quotes

    async def write(self, writes: Sequence[QuoteWrite]) -> dict[str, bool]:
        """Store the quotes in one transaction; per good quote, whether it changed."""
        if not self._write:
            return {}
        now = datetime.fromtimestamp(self._clock.time(), UTC)
        return await self._db.run(lambda session: write_quotes(session, writes, now))

    async def hand_on(self, writes: Sequence[QuoteWrite]) -> None:
        """Give the written quotes to the planner (plan and push per batch)."""
        if self._on_quotes:
            await self._on_quotes(writes)


class Fetcher:
    def __init__(
        self,
        *,
        client: OffersClient,
        governor: RateGovernor,
        db: DbRunner,
        settings: AmazonSettings,
        stop: Stop,
        observer: FetchObserver | None = None,
        on_quotes: QuotesHandler | None = None,
        write: bool = True,
        clock: Clock | None = None,
        concurrency: int = 4,
    ) -> None:
        self._client = client
        self._governor = governor
        self._db = db
        self._settings = settings
        self._stop = stop
        self._observer = observer
        self._on_quotes = on_quotes
        self._write = write
        self._clock = clock or SystemClock()
        self._concurrency = concurrency
        self._random = random.Random()
        self._sink = QuoteSink(db, write=write, clock=self._clock, on_quotes=on_quotes)
        self._on_batch: BatchHandler | None = None
        self.stats = FetchStats()

    async def run(self, asins: Sequence[str]) -> FetchStats:
        batches = [list(asins[i : i + BATCH_SIZE]) for i in range(0, len(asins), BATCH_SIZE)]
        granted = await self._governor.granted_rate(OFFERS_BATCH)
        self.stats = FetchStats(
            asins=len(asins),
            batches=len(batches),
            granted_rate=granted or DOCUMENTED[OFFERS_BATCH].rate,
            started=self._clock.monotonic(),
        )
        if self._observer:
            self._observer.fetch_started(len(asins), len(batches))
        queue: asyncio.Queue[tuple[int, list[str]]] = asyncio.Queue()
        for index, batch in enumerate(batches, start=1):
            queue.put_nowait((index, batch))
        if granted is None and batches:
            # Nobody has heard Amazon's rate header yet: send one batch alone, so the other
            # workers reserve their slots at the granted rate, not the documented default.
            await self._batch(*queue.get_nowait())
        workers = [
            asyncio.create_task(self._worker(queue), name=f"fetch-{n}")
            for n in range(min(self._concurrency, queue.qsize()))
        ]
        # No gc.freeze() here: freezing and unfreezing the heap around every fetch left the
        # collector's oldest generation uncollected and grew a daemon by ~17 MiB a day
        # (benchmarks/soak.py). A late wake-up is the governor's jitter margin's job.
        try:
            await asyncio.gather(*workers)
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        return self.stats

    async def run_source(
        self, source: BatchSource, on_batch: BatchHandler | None = None
    ) -> FetchStats:
        """Fetch the batches ``source`` gives until it gives None, the breaker opens (SP-API
        looks down: no batch is asked for after that) or a stop (``Interrupted``). Every
        batch taken ends in ``on_batch``, skipped or not, unless the stop cuts it short."""
        granted = await self._governor.granted_rate(OFFERS_BATCH)
        self.stats = FetchStats(
            granted_rate=granted or DOCUMENTED[OFFERS_BATCH].rate,
            started=self._clock.monotonic(),
        )
        self._on_batch = on_batch
        try:
            if granted is None and not self._stop.is_set():
                # As in run(): one batch alone until Amazon's rate header is known.
                first = await self._until_stop(source.next_batch())
                if first is None:
                    return self.stats
                await self._batch(self._count_batch(first), first)
            workers = [
                asyncio.create_task(self._source_worker(source), name=f"fetch-{n}")
                for n in range(self._concurrency)
            ]
            try:
                await asyncio.gather(*workers)
            finally:
                for worker in workers:
                    worker.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
        finally:
            self._on_batch = None
        return self.stats

    def _count_batch(self, batch: Sequence[str]) -> int:
        self.stats.asins += len(batch)
        self.stats.batches += 1
        return self.stats.batches

    async def _source_worker(self, source: BatchSource) -> None:
        while not self._stop.is_set():
            if self.stats.circuit_open:
                return
            batch = await self._until_stop(source.next_batch())
            if batch is None:
                return
            if self.stats.circuit_open:  # opened while this worker waited for its batch
                self.stats.skipped += len(batch)
                await self._batch_finished(batch, [], {})
                return
            await self._batch(self._count_batch(batch), batch)
        raise Interrupted(self._stop.reason)

    async def _batch_finished(
        self, asins: Sequence[str], writes: Sequence[QuoteWrite], changed: Mapping[str, bool]
    ) -> None:
        if self._on_batch is not None:
            await self._on_batch(asins, writes, changed)

    async def _worker(self, queue: asyncio.Queue[tuple[int, list[str]]]) -> None:
        while not self._stop.is_set():
            try:
                index, batch = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            if self.stats.circuit_open:
                self.stats.skipped += len(batch)
                continue
            await self._batch(index, batch)
        raise Interrupted(self._stop.reason)

    def _count_outcome(self, failed_whole: bool) -> None:
        """The breaker: count batches that failed as a whole in a row; trip at the limit."""
        if not failed_whole:
            self.stats.failed_in_a_row = 0
            return
        self.stats.failed_in_a_row += 1
        if self.stats.failed_in_a_row >= self._settings.outage_batches and not (
            self.stats.circuit_open
        ):
            self.stats.circuit_open = True
            log.warning(
                "SP-API looks down: %d batches in a row failed after every retry; fetch "
                "stopped for this cycle, the ASINs not fetched keep their last good quotes",
                self.stats.failed_in_a_row,
            )

    async def _batch(self, index: int, asins: list[str]) -> None:
        started = self._clock.monotonic()
        progress = _Progress()
        failed_whole = False
        try:
            answer = await self._answer_with_retries(index, asins, progress)
        except _Skipped:
            self.stats.skipped += len(asins)
            await self._batch_finished(asins, [], {})
            return
        except _TokenUnavailable as exc:
            raise AuthFailed(f"cannot get an SP-API access token: {exc}") from None
        except TransientError as exc:
            log.warning("batch %d: giving up after %d attempts: %s", index, progress.attempts, exc)
            writes = [QuoteWrite(a, quote_from_error(str(exc))) for a in asins]
            failed_whole = True
        except BatchRejected as exc:
            log.warning("batch %d: rejected: %s", index, exc)
            writes = [QuoteWrite(a, quote_from_error(str(exc))) for a in asins]
        else:
            await self._governor.granted(OFFERS_BATCH, answer.rate_limit)
            if answer.rate_limit:
                self.stats.granted_rate = answer.rate_limit
            writes = quotes_from_items(answer.items, self._settings.offers)
        attempts = progress.attempts
        self._count_outcome(failed_whole)
        changed = await self._sink.write(writes)
        statuses = Counter(w.quote.status.value for w in writes)
        self.stats.statuses.update(statuses)
        self.stats.batches_done += 1
        report = BatchReport(
            index=index,
            total=self.stats.batches,
            asins=len(asins),
            seconds=self._clock.monotonic() - started,
            statuses=statuses,
            attempts=attempts,
        )
        if self._observer:
            self._observer.batch_done(report, self.stats)
        await self._sink.hand_on(writes)
        await self._batch_finished(asins, writes, changed)

    async def _answer_with_retries(
        self, index: int, asins: list[str], progress: _Progress
    ) -> BatchAnswer:
        """The batch's answer; transient failures (5xx, timeouts, malformed answers, an LWA
        hiccup) retried by tenacity with jittered backoff in stop-aware waits, until
        ``max_retries`` or until the circuit breaker opens; then the last one is raised."""

        def give_up(state: RetryCallState) -> bool:
            return state.attempt_number > self._settings.max_retries or self.stats.circuit_open

        def before_sleep(state: RetryCallState) -> None:
            self.stats.retries += 1
            exc = state.outcome.exception() if state.outcome else None
            log.info(
                "batch %d: %s; retry %d in %.2f s",
                index,
                exc,
                state.attempt_number,
                state.upcoming_sleep,
            )

        retrying = AsyncRetrying(
            retry=retry_if_exception_type(TransientError),
            stop=give_up,
            wait=lambda state: self._backoff(state.attempt_number),
            sleep=self._pause,
            before_sleep=before_sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._answer(index, asins, progress)
        raise AssertionError("unreachable: the retries return or raise")

    async def _answer(self, index: int, asins: list[str], progress: _Progress) -> BatchAnswer:
        """One try: a token, a rate slot, the request. A 429 or a refused (expired) token is
        not a failure: the batch goes again in a new slot, at once."""
        while True:
            try:
                await self._until_stop(self._client.ensure_token())
            except TransientError as exc:
                raise _TokenUnavailable(str(exc)) from None
            await self._governor.acquire(OFFERS_BATCH)
            if self.stats.circuit_open:  # tripped while this batch waited: send nothing more
                if not progress.attempts:
                    raise _Skipped
                raise TransientError(progress.last_error or "SP-API looks down (breaker open)")
            progress.attempts += 1
            self.stats.requests += 1
            try:
                return await self._until_stop(self._client.offers_batch(asins))
            except TokenRejected as exc:
                progress.rejections += 1
                if progress.rejections > MAX_TOKEN_REJECTIONS:
                    raise AuthFailed(f"SP-API refused fresh access tokens: {exc}") from None
                log.info("batch %d: access token refused (%s); refreshing it", index, exc)
                self.stats.token_refusals += 1
                await self._governor.refund(OFFERS_BATCH)
            except Throttled:
                self.stats.throttled += 1
                await self._governor.throttled(OFFERS_BATCH)
            except TransientError as exc:
                progress.last_error = str(exc)
                raise

    async def _pause(self, seconds: float) -> None:
        """A backoff wait that a stop request ends at once."""
        if await self._stop.sleep(seconds):
            raise Interrupted(self._stop.reason)

    def _backoff(self, failures: int) -> float:
        base: float = self._settings.retry_base_s * 2.0 ** (failures - 1)
        return min(MAX_BACKOFF_S, base) * self._random.uniform(0.5, 1.5)

    async def _until_stop(self, work: Coroutine[Any, Any, T]) -> T:
        return await until_stop(self._stop, work)


async def until_stop(stop: Stop, work: Coroutine[Any, Any, T]) -> T:
    """Await ``work`` unless a stop arrives first; then cancel it and raise Interrupted."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not task.done():  # this coroutine was cancelled (a sibling batch failed)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    if task in done:
        return task.result()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    raise Interrupted(stop.reason)
