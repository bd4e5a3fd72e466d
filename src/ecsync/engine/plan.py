"""Step 3 of the cycle: fetched quotes -> desired states -> journaled changes, per batch.

Runs inside the batch's database transaction, right after its quotes are written, so the
pure planner sees exactly what the store holds. Each account has one mass-hide guard for
the whole cycle (``domain/guards.py``: the sample, the running count, the verdict and the
reason live there only): a sweep's ``MassHideGuard``, or in continuous mode a
``RollingHideGuard`` seeded with the account's hides of the last ``[guards] window`` from the
journal. This module journals what it decides and routes the hides: sent, held, or kept back
while a sweep guard's sample fills. The seller's decisions on held changes
(``store/decisions.py``) are read per batch and handed to the pure planner.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecsync.config import AccountSettings, Settings
from ecsync.domain.guards import (
    Decision,
    HideGuard,
    MassHideGuard,
    RollingHideGuard,
    Routed,
    releases_done,
)
from ecsync.domain.model import ListingState, QuoteStatus, is_listed
from ecsync.domain.plan import ChangeKind, PlanItem, PlannedChange, hold, plan_account
from ecsync.domain.rules import ProductQuote, desired_state
from ecsync.engine.collect import Scope
from ecsync.store.decisions import (
    close_superseded_holds,
    decisions_for,
    finish_releases,
    hold_journaled,
)
from ecsync.store.journal import JournaledChange, recent_hides, record_plan, record_skips
from ecsync.store.schema import Account, Listing, Product

log = logging.getLogger(__name__)

HIDE = ChangeKind.HIDE.value


@dataclass
class PlanTally:
    """Counts across a cycle's batches; the mass-hide counts live in the accounts' guards."""

    listed_total: dict[str, int] = field(default_factory=dict)
    planned: int = 0
    held: int = 0
    held_hides: int = 0
    held_drops: int = 0
    released: int = 0
    rejected_kept: int = 0
    tripped_accounts: set[str] = field(default_factory=set)
    warnings: set[str] = field(default_factory=set)
    changes: dict[int, PlannedChange] = field(default_factory=dict)  # kept for a preview

    @property
    def preview(self) -> list[PlannedChange]:
        """The cycle's changes as planned and then guarded (a dry run's plan)."""
        return list(self.changes.values())


def money(value: Decimal | None) -> Decimal | None:
    """Amounts come back from the database with two decimals; whole yen read as whole yen."""
    if value is not None and value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value


def confirmed_state(listing: Listing) -> ListingState:
    return ListingState(
        money(listing.confirmed_price), listing.confirmed_visible, listing.confirmed_quantity
    )


def product_quote(product: Product) -> ProductQuote:
    """The product row as the rules see it: the last good quote, and whether the latest
    attempt failed since."""
    failing = product.last_error_at is not None and (
        product.fetched_at is None or product.last_error_at > product.fetched_at
    )
    return ProductQuote(
        status=QuoteStatus(product.quote_status) if product.quote_status else None,
        price=money(product.price),
        fetched_at=product.fetched_at,
        last_error=product.last_error if failing else None,
    )


def listed_totals(session: Session, scope: Scope) -> dict[str, int]:
    """Each account's listings on sale now: the denominator of the mass-hide guard."""
    totals: dict[str, int] = defaultdict(int)
    for listing, account in _listings(session, scope, asins=None):
        if is_listed(account.platform, confirmed_state(listing)):
            totals[account.name] += 1
    return dict(totals)


def _listings(
    session: Session, scope: Scope, asins: Sequence[str] | None
) -> list[tuple[Listing, Account]]:
    query = (
        select(Listing, Account)
        .join(Account, Account.id == Listing.account_id)
        .where(Listing.status == "listed", Account.active.is_(True))
    )
    if asins is not None:
        query = query.where(Listing.asin.in_(asins))
    if scope.platforms:
        query = query.where(Account.platform.in_(scope.platforms))
    if scope.accounts:
        query = query.where(Account.name.in_(scope.accounts))
    return [(listing, account) for listing, account in session.execute(query)]


class Planner:
    def __init__(
        self,
        settings: Settings,
        scope: Scope,
        *,
        cycle_id: int,
        stock_only: bool,
        default_stale_after: timedelta,
        keep_preview: bool,
        continuous: bool = False,
        on_trip: Callable[[str, str], None] | None = None,
        replanned: frozenset[int] = frozenset(),
    ) -> None:
        """``continuous``: this cycle is a continuous-mode reporting window, guarded by the
        rolling window rule (``start`` must then be given the time). ``on_trip(account,
        reason)``: called once per account the moment its mass-hide guard trips (from the
        planning thread), so a continuous daemon can alert at once, not at the window's end.
        ``replanned``: listing ids whose open changes from earlier cycles this window plans
        again; their journaled hides are left out of the rolling count (the new plan counts
        them), so a re-planned hide is not counted twice."""
        self._settings = settings
        self._scope = scope
        self._cycle_id = cycle_id
        self._stock_only = stock_only
        self._stale_after = default_stale_after
        self._keep_preview = keep_preview
        self._continuous = continuous
        self._on_trip = on_trip
        self._replanned = replanned
        self.tally = PlanTally()
        self._guards: dict[str, HideGuard[JournaledChange]] = {}
        self._recent_hides: dict[str, list[datetime]] = {}

    def _account(self, name: str) -> AccountSettings:
        """The account's settings, with its staleness limit on the configured clock scale."""
        account = self._settings.account(name)
        if account.stale_after is None or self._settings.runtime.time_scale == 1:
            return account
        return account.model_copy(
            update={"stale_after": self._settings.scaled(account.stale_after)}
        )

    def _guard(self, name: str) -> HideGuard[JournaledChange]:
        if name not in self._guards:
            guards = self._settings.guards
            listed = self.tally.listed_total.get(name, 0)
            if self._continuous:
                self._guards[name] = RollingHideGuard(
                    guards.window_hide_fraction,
                    guards.min_hides,
                    listed,
                    self._settings.scaled(guards.window),
                    recent=self._recent_hides.get(name, ()),
                )
            else:
                self._guards[name] = MassHideGuard(
                    guards.max_hide_fraction, guards.min_hides, listed
                )
        return self._guards[name]

    def start(self, session: Session, now: datetime | None = None) -> None:
        """Read the guards' denominators (listed items now) and, in continuous mode, each
        account's hides journaled within the last window before ``now``."""
        self.tally.listed_total = listed_totals(session, self._scope)
        if self._continuous:
            if now is None:
                raise ValueError("a continuous-mode planner starts at a time (now)")
            since = now - self._settings.scaled(self._settings.guards.window)
            self._recent_hides = recent_hides(session, since, self._replanned)

    def finish(self, session: Session) -> list[JournaledChange]:
        """Planning is over: decide on hides still waiting for a guard's sample."""
        send: list[JournaledChange] = []
        for name, guard in sorted(self._guards.items()):
            send += self._settle(session, name, guard, guard.finish())
        return send

    def _settle(
        self,
        session: Session,
        name: str,
        guard: HideGuard[JournaledChange],
        routed: Routed[JournaledChange],
    ) -> list[JournaledChange]:
        """Journal the hides the guard held after they were written; return those to send."""
        self._note_trip(name, guard)
        if routed.hold:
            reason = guard.reason()
            hold_journaled(session, [c.change_id for c in routed.hold], reason)
            self.tally.planned -= len(routed.hold)
            self.tally.held += len(routed.hold)
            self.tally.held_hides += len(routed.hold)
            for change in routed.hold:
                if change.listing_id in self.tally.changes:
                    self.tally.changes[change.listing_id] = hold(
                        self.tally.changes[change.listing_id], reason
                    )
        return routed.send

    def _note_trip(self, name: str, guard: HideGuard[JournaledChange]) -> None:
        if guard.tripped and name not in self.tally.tripped_accounts:
            self.tally.tripped_accounts.add(name)
            log.warning("%s: mass-hide guard tripped: %s", name, guard.reason())
            if self._on_trip is not None:
                try:
                    self._on_trip(name, guard.reason())
                except Exception:  # telling someone must never break the planning
                    log.warning("mass-hide trip of %s not reported", name, exc_info=True)

    def plan_batch(
        self, session: Session, asins: Sequence[str], now: datetime
    ) -> list[JournaledChange]:
        """Plan every listing of ``asins`` and journal the changes (same transaction)."""
        products = {
            p.asin: p for p in session.scalars(select(Product).where(Product.asin.in_(asins)))
        }
        by_account: dict[str, list[tuple[Listing, Account]]] = defaultdict(list)
        for listing, account in _listings(session, self._scope, asins):
            by_account[account.name].append((listing, account))
        journaled: list[JournaledChange] = []
        for name, rows in sorted(by_account.items()):
            account_settings = self._account(name)
            strategy = self._settings.strategies[account_settings.pricing]
            items: list[PlanItem] = []
            listings: dict[int, Listing] = {}
            for listing, _account in rows:
                confirmed = confirmed_state(listing)
                desired = desired_state(
                    account_settings,
                    strategy,
                    product_quote(products[listing.asin]),
                    confirmed,
                    now,
                    default_stale_after=self._stale_after,
                    stock_only=self._stock_only,
                    listed_since=listing.created_at,
                )
                self.tally.warnings.update(desired.warnings)
                listing.desired_price = desired.state.price
                listing.desired_visible = desired.state.visible
                listing.desired_quantity = desired.state.quantity
                listings[listing.id] = listing
                items.append(
                    PlanItem(
                        listing_id=listing.id,
                        confirmed=confirmed,
                        desired=desired.state,
                        floor=desired.floor,
                        reason=desired.reason,
                    )
                )
            decisions = decisions_for(session, listings)
            close_superseded_holds(session, listings, self._cycle_id, now)
            guard = self._guard(name)
            if isinstance(guard, RollingHideGuard):
                guard.at(now)  # the window ends at this batch
            plan = plan_account(
                items,
                account_settings,
                self._settings.guards,
                hide_guard=guard,
                decisions=decisions,
            )
            self._finish_releases(session, decisions, plan.changes, items, now)
            self.tally.planned += len(plan.planned)
            self.tally.held += len(plan.held)
            self.tally.held_hides += plan.report.held_hides
            self.tally.held_drops += plan.report.held_drops
            self.tally.released += plan.report.released
            self.tally.rejected_kept += plan.report.rejected_kept
            if self._keep_preview:
                self.tally.changes.update((c.listing_id, c) for c in plan.changes)
            account_row = rows[0][1]
            recorded = record_plan(
                session, self._cycle_id, account_row, plan.changes, listings, now
            )
            record_skips(session, self._cycle_id, plan.skipped, now)
            guarded = [c for c in recorded if c.kind == HIDE and c.listing_id in plan.guarded]
            journaled += [c for c in recorded if c.kind != HIDE or c.listing_id not in plan.guarded]
            journaled += self._settle(session, name, guard, guard.route(guarded))
        return journaled

    @staticmethod
    def _finish_releases(
        session: Session,
        decisions: dict[int, Decision],
        changes: Sequence[PlannedChange],
        items: Sequence[PlanItem],
        now: datetime,
    ) -> None:
        planned = {c.listing_id: c.new for c in changes}
        confirmed = {item.listing_id: item.confirmed for item in items}
        finish_releases(session, releases_done(decisions, planned, confirmed), now)
