"""Step 3 of the cycle: fetched quotes -> desired states -> journaled changes, per batch.

Runs inside the batch's database transaction, right after its quotes are written, so the
pure planner sees exactly what the store holds. The mass-hide breaker is counted over the
whole cycle: each account's hides so far are carried from batch to batch against the
account's listed total taken when the cycle started.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecsync.config import AccountSettings, Settings
from ecsync.domain.model import ListingState, QuoteStatus, is_listed
from ecsync.domain.plan import ChangeKind, PlanItem, PlannedChange, plan_account
from ecsync.domain.rules import ProductQuote, desired_state
from ecsync.engine.breaker import HideBreaker, Verdict
from ecsync.engine.collect import Scope
from ecsync.store.journal import JournaledChange, hold_changes, record_plan, record_skips
from ecsync.store.schema import Account, Listing, Product

log = logging.getLogger(__name__)


@dataclass
class PlanTally:
    """Counts across a cycle's batches, per account where the guards need it."""

    listed_total: dict[str, int] = field(default_factory=dict)
    hides: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    planned: int = 0
    held: int = 0
    held_hides: int = 0
    held_drops: int = 0
    tripped_accounts: set[str] = field(default_factory=set)
    warnings: set[str] = field(default_factory=set)
    preview: list[PlannedChange] = field(default_factory=list)
    held_listing_ids: set[int] = field(default_factory=set)


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
    """Each account's listings on sale now: the denominator of the mass-hide breaker."""
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
    ) -> None:
        self._settings = settings
        self._scope = scope
        self._cycle_id = cycle_id
        self._stock_only = stock_only
        self._stale_after = default_stale_after
        self._keep_preview = keep_preview
        self.tally = PlanTally()
        self._breaker: HideBreaker | None = None

    def _account(self, name: str) -> AccountSettings:
        """The account's settings, with its staleness limit on the configured clock scale."""
        account = self._settings.account(name)
        if account.stale_after is None or self._settings.runtime.time_scale == 1:
            return account
        return account.model_copy(
            update={"stale_after": self._settings.scaled(account.stale_after)}
        )

    def start(self, session: Session) -> None:
        self.tally.listed_total = listed_totals(session, self._scope)
        self._breaker = HideBreaker(
            self._settings.guards.max_hide_fraction, self.tally.listed_total
        )

    def finish(self, session: Session) -> list[JournaledChange]:
        """Planning is over: settle hides still waiting on the mass-hide breaker."""
        assert self._breaker is not None, "start() first"
        return self._settle(session, self._breaker.finish())

    def _settle(self, session: Session, verdict: Verdict) -> list[JournaledChange]:
        assert self._breaker is not None
        if verdict.hold:
            by_account: dict[str, list[JournaledChange]] = defaultdict(list)
            for change in verdict.hold:
                by_account[change.account].append(change)
            for account, held in by_account.items():
                hides, seen = self._breaker.tripped[account]
                seen = max(seen, 1)
                reason = (
                    f"held: {hides} of {seen} listed items sampled would be hidden this cycle "
                    f"(max {self._settings.guards.max_hide_fraction:%}); check the source "
                    "before releasing"
                )
                hold_changes(session, [c.change_id for c in held], reason)
                if account not in self.tally.tripped_accounts:
                    self.tally.tripped_accounts.add(account)
                    log.warning("%s: mass-hide breaker tripped: %s", account, reason)
            self.tally.planned -= len(verdict.hold)
            self.tally.held += len(verdict.hold)
            self.tally.held_hides += len(verdict.hold)
            self.tally.held_listing_ids.update(c.listing_id for c in verdict.hold)
        return verdict.send

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
            plan = plan_account(
                items,
                account_settings,
                self._settings.guards,
                listed_total=self.tally.listed_total.get(name, 0),
                prior_hides=self.tally.hides[name],
            )
            hides = sum(1 for c in plan.changes if c.kind is ChangeKind.HIDE)
            self.tally.hides[name] += hides
            self.tally.planned += len(plan.planned)
            self.tally.held += len(plan.held)
            self.tally.held_hides += plan.report.held_hides
            self.tally.held_drops += plan.report.held_drops
            if plan.report.mass_hide_tripped and name not in self.tally.tripped_accounts:
                self.tally.tripped_accounts.add(name)
                log.warning(
                    "%s: mass-hide breaker tripped: %d of %d listed items would be hidden; "
                    "hides held for review",
                    name,
                    self.tally.hides[name],
                    plan.report.listed,
                )
            if self._keep_preview:
                self.tally.preview.extend(plan.changes)
            account_row = rows[0][1]
            recorded = record_plan(
                session, self._cycle_id, account_row, plan.changes, listings, now
            )
            record_skips(session, self._cycle_id, plan.skipped, now)
            listed = sum(is_listed(account_row.platform, item.confirmed) for item in items)
            assert self._breaker is not None, "start() first"
            verdict = self._breaker.admit(name, listed, recorded, held_hides=plan.report.held_hides)
            journaled += self._settle(session, verdict)
        return journaled
