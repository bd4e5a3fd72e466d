"""Step 1 of the cycle: the distinct ASINs to fetch, stalest quote first.

An ASIN listed on three accounts is one row here, so it is fetched once. Ordering by the age
of the quote means a cycle cut short (deadline, Ctrl+C, --max-items) still refreshes what is
oldest, and the next cycle carries on from there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ecsync.store.schema import Account, Listing, Product


@dataclass(frozen=True, slots=True)
class Scope:
    """Which listings a cycle covers (the sync command's filters)."""

    platforms: Sequence[str] = ()
    accounts: Sequence[str] = ()
    max_items: int | None = None


def collect_asins(session: Session, scope: Scope) -> list[str]:
    query = (
        select(Listing.asin, func.min(Product.fetched_at).label("fetched_at"))
        .join(Account, Account.id == Listing.account_id)
        .join(Product, Product.asin == Listing.asin)
        .where(Listing.status == "listed", Account.active.is_(True))
        .group_by(Listing.asin)
        .order_by(func.min(Product.fetched_at).asc().nulls_first(), Listing.asin)
    )
    if scope.platforms:
        query = query.where(Account.platform.in_(scope.platforms))
    if scope.accounts:
        query = query.where(Account.name.in_(scope.accounts))
    if scope.max_items:
        query = query.limit(scope.max_items)
    return [asin for asin, _ in session.execute(query)]
