"""Continuous refresh: one reporting window of full quotes, single quotes and probes at once.

A sweep quotes every ASIN once per pass; the refresher instead keeps every pricing
operation's bucket busy on the ASINs the scheduler (``domain.refresh``) ranks highest:

- full batches (getItemOffersBatch, 20 ASINs) through the :class:`Fetcher`, whose retries,
  breaker and governor are the sweep's own;
- single full quotes (getItemOffers) at that operation's own pace;
- probes (getCompetitivePricing, 20 ASINs): each compared with what the last full quote
  implied (``probe_differs``); a contradiction sends the ASIN to the front of the full
  queue. A probe never changes a listing: only the full quote it calls for does. A probe
  that errs, is malformed or is throttled is not evidence: the scheduler is not told.

Every full quote goes the way a sweep's does (one :class:`QuoteSink`: product rows, then the
cycle's plan/push pipeline) and back to the scheduler (``quoted`` / ``quote_failed``), so a
sell-out a probe finds is confirmed, planned and pushed within seconds.

The scheduler outlives the window (the daemon keeps it in a :class:`RefreshState`): an ASIN
taken for a quote and not answered when the window ends or stops is handed back with
``quote_failed``, so none is lost from the queues. When it learns how many ASINs it holds,
its ``max_quote_age`` is raised to what the quotas can keep (two full passes at the
documented full-quote rate, ``effective_max_quote_age``), with a warning naming both.

A seller's release of a held change is quoted and planned at once (``_release_loop``), not
when its ASIN is next due.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ecsync.amazon.client import ITEM_OFFERS, OFFERS_BATCH
from ecsync.amazon.errors import BatchRejected, Throttled, TokenRejected, TransientError
from ecsync.amazon.governor import DOCUMENTED
from ecsync.amazon.metered import MeteredPricing
from ecsync.clock import Clock, Stop, SystemClock
from ecsync.config import AmazonSettings
from ecsync.domain.model import QuoteStatus
from ecsync.domain.probes import Probe, QuoteView, Tolerance, probe_differs
from ecsync.domain.quotes import quote_from_error
from ecsync.domain.refresh import AsinState, RefreshScheduler
from ecsync.engine.collect import Scope
from ecsync.engine.fetch import Fetcher, QuoteSink, quotes_from_items, until_stop
from ecsync.errors import Interrupted
from ecsync.store.quotes import QuoteWrite, stored_view
from ecsync.store.runner import DbRunner
from ecsync.store.schema import Account, Change, Listing, Product

log = logging.getLogger(__name__)

FULL_BATCH = 20
PROBE_BATCH = 20
IDLE_S = 0.25  # a loop with nothing to do looks again this often (stop-aware)
RELEASE_POLL_S = 5.0  # real seconds between looks for releases the seller made meanwhile
# The effective max_quote_age is at least this many full passes of the catalogue at the
# full-quote capacity: at one pass every ASIN would have to be quoted oldest first and the
# overdue queue (from 0.8 x the bound) would take every quote, leaving none for the ASINs
# that move; at two, about half of the quotes are free to follow risk.
PASSES_PER_MAX_AGE = 2.0


def full_quote_rate(time_scale: float = 1.0) -> float:
    """ASINs per real second the full quotes reach at the documented rates: getItemOffersBatch
    (20 ASINs a request) and getItemOffers (1) together, both faster against a sped-up
    simulator (``[runtime] time_scale``). 0.1 x 20 + 0.5 = 2.5 ASIN/s at scale 1."""
    return (DOCUMENTED[OFFERS_BATCH].rate * FULL_BATCH + DOCUMENTED[ITEM_OFFERS].rate) * time_scale


def effective_max_quote_age(configured_s: float, asins: int, rate: float) -> float:
    """The bound that can hold: the configured one, or ``PASSES_PER_MAX_AGE`` passes of
    ``asins`` at ``rate`` ASIN/s when that is longer."""
    if rate <= 0:
        return configured_s
    return max(configured_s, PASSES_PER_MAX_AGE * asins / rate)


# --- what the store knows --------------------------------------------------------------------


def asin_states(session: Session, scope: Scope | None = None) -> list[AsinState]:
    """One :class:`AsinState` per listed ASIN (the ASINs a sweep would collect).

    ``stake``: listings x the last source price in yen (1 yen when no price is known, so a
    new listing still counts); the change history from the product's own good quotes.
    """
    scope = scope or Scope()
    listings = func.count(Listing.id)
    query = (
        select(
            Listing.asin,
            listings,
            Product.price,
            Product.fetched_at,
            Product.quote_changes,
            Product.observed_s,
        )
        .join(Account, Account.id == Listing.account_id)
        .join(Product, Product.asin == Listing.asin)
        .where(Listing.status == "listed", Account.active.is_(True))
        .group_by(
            Listing.asin,
            Product.price,
            Product.fetched_at,
            Product.quote_changes,
            Product.observed_s,
        )
        .order_by(Listing.asin)
    )
    if scope.platforms:
        query = query.where(Account.platform.in_(scope.platforms))
    if scope.accounts:
        query = query.where(Account.name.in_(scope.accounts))
    states = []
    for asin, count, price, fetched_at, changes, observed in session.execute(query):
        states.append(
            AsinState(
                asin=asin,
                stake=max(1.0, float(count) * float(price if price is not None else 1)),
                last_quote_s=fetched_at.timestamp() if fetched_at is not None else None,
                changes=int(changes or 0),
                observed_s=float(observed or 0.0),
            )
        )
    return states


def released_asins(session: Session, scope: Scope | None = None) -> list[tuple[int, str]]:
    """(change id, ASIN) of every release the seller made that no plan has finished yet
    (``store/decisions.py``), on listed listings of active accounts in ``scope``."""
    scope = scope or Scope()
    query = (
        select(Change.id, Listing.asin)
        .join(Listing, Listing.id == Change.listing_id)
        .join(Account, Account.id == Listing.account_id)
        .where(
            Change.status == "released",
            Change.finished_at.is_(None),
            Listing.status == "listed",
            Account.active.is_(True),
        )
        .order_by(Change.decided_at, Change.id)
    )
    if scope.platforms:
        query = query.where(Account.platform.in_(scope.platforms))
    if scope.accounts:
        query = query.where(Account.name.in_(scope.accounts))
    return [(int(change_id), str(asin)) for change_id, asin in session.execute(query)]


def stored_views(session: Session, asins: Sequence[str]) -> dict[str, QuoteView | None]:
    """What each ASIN's last good quote implied for a probe (``store.quotes.stored_view``)."""
    rows = session.scalars(select(Product).where(Product.asin.in_(list(asins))))
    return {product.asin: stored_view(product) for product in rows}


# --- the scheduler across windows ------------------------------------------------------------


@dataclass
class RefreshState:
    """The scheduler and the ASINs it holds, kept by the daemon from one window to the next.

    Rebuilt only when the listed ASINs change (then incrementally: new ones added, retired
    ones removed) or at a restart; what it learned in earlier windows stays.
    """

    scheduler: RefreshScheduler
    known: set[str] = field(default_factory=set)
    loaded: bool = False
    # Full quotes per real second (``full_quote_rate``); None: the configured max_quote_age
    # is used as is. When set, the bound is raised to what the catalogue allows.
    full_rate: float | None = None
    time_scale: float = 1.0  # only to word the warning in simulated time
    configured_max_age_s: float = field(init=False)
    warned: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.configured_max_age_s = self.scheduler.policy.max_quote_age_s

    def sync(self, states: Sequence[AsinState], now: float) -> tuple[int, int]:
        """Bring the scheduler to ``states``; returns (added, removed)."""
        try:
            if not self.loaded:
                self.scheduler.load(states, now)
                self.known = {state.asin for state in states}
                self.loaded = True
                return len(states), 0
            current = {state.asin for state in states}
            added = [state for state in states if state.asin not in self.known]
            removed = self.known - current
            for asin in sorted(removed):
                self.scheduler.remove(asin)
            for state in added:
                self.scheduler.add(state)
            self.known = current
            return len(added), len(removed)
        finally:
            self._bound()

    def _bound(self) -> None:
        """Set the scheduler's max_quote_age for the ASINs it now holds (see
        ``effective_max_quote_age``); the first time it raises the configured one, a warning
        names both."""
        if self.full_rate is None:
            return
        configured = self.configured_max_age_s
        bound = effective_max_quote_age(configured, len(self.known), self.full_rate)
        if bound != self.scheduler.policy.max_quote_age_s:
            self.scheduler.set_max_quote_age(bound)
        if bound > configured and not self.warned:
            self.warned = True
            scale = self.time_scale
            log.warning(
                "max_quote_age %s cannot hold for %s ASINs at %g quotes/s: using %s",
                _hours(configured * scale),
                f"{len(self.known):,}",
                round(self.full_rate / scale, 3),
                _hours(bound * scale),
            )


def _hours(seconds: float) -> str:
    """``6h``, ``22h``, ``1.5h``, ``45m``: a bound as a seller reads it (simulated time)."""
    if seconds >= 3600:
        return f"{seconds / 3600:.3g}h" if seconds < 36_000 else f"{seconds / 3600:.0f}h"
    return f"{seconds / 60:.0f}m"


# --- one window ------------------------------------------------------------------------------


@dataclass
class RefreshStats:
    """What one window did, for the cycle summary (``extra["refresh"]``)."""

    full_batches: int = 0
    singles: int = 0
    single_throttled: int = 0
    single_statuses: Counter[str] = field(default_factory=Counter)
    probe_requests: int = 0
    probes: int = 0  # ASINs probed with an answer
    probe_errors: int = 0  # ASINs whose probe saw nothing (error, malformed, throttled)
    probe_throttled: int = 0
    differences: int = 0  # probes that contradicted the last full quote
    handed_back: int = 0  # ASINs taken and not quoted when the window ended
    releases_asked: int = 0  # released changes whose ASIN was sent to the front for a quote

    def as_dict(self) -> dict[str, Any]:
        return {
            "full_batches": self.full_batches,
            "singles": self.singles,
            "single_throttled": self.single_throttled,
            "single_statuses": dict(self.single_statuses),
            "probe_requests": self.probe_requests,
            "probes": self.probes,
            "probe_errors": self.probe_errors,
            "probe_throttled": self.probe_throttled,
            "differences": self.differences,
            "handed_back": self.handed_back,
            "releases_asked": self.releases_asked,
        }


ViewReader = Callable[[Sequence[str]], Awaitable[Mapping[str, QuoteView | None]]]


class Refresher:
    """Runs the three loops of one reporting window against one scheduler."""

    def __init__(
        self,
        *,
        scheduler: RefreshScheduler,
        fetcher: Fetcher,
        pricing: MeteredPricing,
        sink: QuoteSink,
        db: DbRunner,
        settings: AmazonSettings,
        stop: Stop,
        clock: Clock | None = None,
        tolerance: Tolerance | None = None,
        singles: bool = True,
        probes: bool = True,
        scope: Scope | None = None,
        release_poll_s: float = RELEASE_POLL_S,
    ) -> None:
        self._scheduler = scheduler
        self._fetcher = fetcher
        self._pricing = pricing
        self._sink = sink
        self._db = db
        self._settings = settings
        self._stop = stop
        self._clock = clock or SystemClock()
        self._tolerance = tolerance
        self._singles = singles
        self._probes = probes
        self._scope = scope
        self._release_poll_s = release_poll_s
        self._releases_asked: set[int] = set()  # change ids asked for in this window
        self._until = 0.0
        self._taken: set[str] = set()  # handed out for a full quote, not reported back yet
        self.stats = RefreshStats()

    def scheduler_metrics(self, now: float) -> dict[str, Any]:
        """The scheduler's own figures (queue, quote age, probes and hits) at ``now``."""
        return self._scheduler.metrics(now)

    def _over(self) -> bool:
        return self._clock.time() >= self._until

    async def run(self, until: float) -> RefreshStats:
        """Refresh until the wall-clock time ``until`` (the window's end), a stop
        (``Interrupted``) or an SP-API outage (the fetcher's breaker: the window's fetch
        ends and the cycle reports it, as a sweep's does)."""
        self._until = until
        loops = [asyncio.create_task(self._full(), name="refresh-full")]
        if self._singles:
            loops.append(asyncio.create_task(self._single_loop(), name="refresh-single"))
        if self._probes:
            loops.append(asyncio.create_task(self._probe_loop(), name="refresh-probe"))
        loops.append(asyncio.create_task(self._release_loop(), name="refresh-releases"))
        try:
            # The full loop ends the window (its end, or the breaker); the others follow.
            done, _ = await asyncio.wait(loops, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
            if not loops[0].done():
                await loops[0]
        finally:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            self._hand_back()
        if self._stop.is_set():
            raise Interrupted(self._stop.reason)
        return self.stats

    def _hand_back(self) -> None:
        """Every ASIN taken and not answered goes back in the queue (nothing learned)."""
        now = self._clock.time()
        for asin in sorted(self._taken):
            self._scheduler.quote_failed(asin, now)
        self.stats.handed_back += len(self._taken)
        self._taken.clear()

    async def _idle(self) -> None:
        wait = min(IDLE_S, max(0.0, self._until - self._clock.time()))
        if await self._stop.sleep(wait):
            raise Interrupted(self._stop.reason)

    # --- full batches -------------------------------------------------------------------

    async def _full(self) -> None:
        await self._fetcher.run_source(self, self._batch_done)
        if self._fetcher.stats.circuit_open:
            # SP-API looks down: the probes and singles would fail as well; the window's
            # fetch ends here and the cycle reports the outage (spapi_outage).
            self._until = min(self._until, self._clock.time())

    async def next_batch(self) -> list[str] | None:
        """The :class:`BatchSource` side: the scheduler's most urgent 20, until the end."""
        while not self._over():
            asins = self._scheduler.next_full(FULL_BATCH, self._clock.time())
            if asins:
                self._taken.update(asins)
                self.stats.full_batches += 1
                return asins
            await self._idle()
        return None

    async def _batch_done(
        self, asins: Sequence[str], writes: Sequence[QuoteWrite], changed: Mapping[str, bool]
    ) -> None:
        self._report(asins, writes, changed)

    def _report(
        self, asins: Sequence[str], writes: Sequence[QuoteWrite], changed: Mapping[str, bool]
    ) -> None:
        now = self._clock.time()
        quoted = {w.asin for w in writes if w.quote.status is not QuoteStatus.ERROR}
        errors = {w.asin for w in writes if w.quote.status is QuoteStatus.ERROR}
        for asin in asins:
            if asin not in self._taken:
                continue  # already handed back (the window ended while it was in flight)
            self._taken.discard(asin)
            if asin in quoted:
                self._scheduler.quoted(asin, now, changed.get(asin, False))
            else:  # an error answer goes behind its queue; one never asked, to its front
                self._scheduler.quote_failed(asin, now, error=asin in errors)

    # --- single quotes ------------------------------------------------------------------

    async def _single_loop(self) -> None:
        while not self._over():
            if self._stop.is_set():
                raise Interrupted(self._stop.reason)
            asin = self._scheduler.next_single(self._clock.time())
            if asin is None:
                await self._idle()
                continue
            self._taken.add(asin)
            await self._single(asin)

    async def _single(self, asin: str) -> None:
        self.stats.singles += 1
        try:
            answer = await until_stop(self._stop, self._pricing.item_offers(asin))
        except (Throttled, TokenRejected):
            # Metered already backed the bucket off (or gave the slot back): try it later.
            self.stats.single_throttled += 1
            self._report([asin], [], {})
            return
        except (TransientError, BatchRejected) as exc:
            writes = [QuoteWrite(asin, quote_from_error(str(exc)))]
        else:
            writes = quotes_from_items([answer.item], self._settings.offers)
        changed = await self._sink.write(writes)
        self.stats.single_statuses.update(w.quote.status.value for w in writes)
        self._report([asin], writes, changed)
        await self._sink.hand_on(writes)

    # --- releases -----------------------------------------------------------------------

    async def _release_loop(self) -> None:
        """A seller's release goes out within seconds, not when its ASIN is next due.

        In a sweep every ASIN is planned each cycle, so the next cycle's plan sends a release.
        Here an ASIN may wait hours for its next quote; so at the window's start and every
        ``release_poll_s`` the open releases are read and their ASINs asked of the scheduler
        (:meth:`RefreshScheduler.ask`): a fresh full quote at the front of the queue, whose
        plan (the usual pipeline: journal, then push) sends the released target without the
        guard, or finishes the release when the source moved since it was held. Each release
        is asked for once per window: one still open next window (a push refused, or its
        finish awaiting a plan that sees the channel at the target) is asked for again then,
        as a sweep would plan it again next cycle.
        """
        while not self._over():
            if self._stop.is_set():
                raise Interrupted(self._stop.reason)
            releases = await self._db.run(functools.partial(released_asins, scope=self._scope))
            asked = []
            for change_id, asin in releases:
                if change_id in self._releases_asked:
                    continue
                self._releases_asked.add(change_id)
                if self._scheduler.ask(asin):
                    asked.append(asin)
            if asked:
                self.stats.releases_asked += len(asked)
                log.info(
                    "%d released changes: quoting %s now", len(asked), ", ".join(sorted(asked))
                )
            wait = min(self._release_poll_s, max(0.0, self._until - self._clock.time()))
            if await self._stop.sleep(wait):
                raise Interrupted(self._stop.reason)

    # --- probes -------------------------------------------------------------------------

    async def _probe_loop(self) -> None:
        while not self._over():
            if self._stop.is_set():
                raise Interrupted(self._stop.reason)
            asins = self._scheduler.next_probe(PROBE_BATCH, self._clock.time())
            if not asins:
                await self._idle()
                continue
            await self._probe(asins)

    async def _probe(self, asins: list[str]) -> None:
        self.stats.probe_requests += 1
        try:
            answer = await until_stop(self._stop, self._pricing.competitive_pricing(asins))
        except Throttled:
            self.stats.probe_throttled += 1
            self.stats.probe_errors += len(asins)
            return
        except (TransientError, BatchRejected, TokenRejected) as exc:
            # Not evidence of anything: the scheduler hears nothing of these ASINs.
            log.info("probe of %d ASINs failed (not evidence): %s", len(asins), exc)
            self.stats.probe_errors += len(asins)
            return
        probes = [p for p in answer.items if isinstance(p, Probe)]
        self.stats.probe_errors += len(answer.items) - len(probes)
        if not probes:
            return
        views = await self._db.run(lambda session: stored_views(session, [p.asin for p in probes]))
        now = self._clock.time()
        for probe in probes:
            difference = probe_differs(probe, views.get(probe.asin), self._tolerance)
            self.stats.probes += 1
            if difference is not None:
                self.stats.differences += 1
                log.info("%s: probe: %s; quoting it now", probe.asin, difference.detail)
            self._scheduler.probed(probe.asin, now, difference)
