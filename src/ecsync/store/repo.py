"""Repository functions: the only code that turns rows into queries for accounts and listings."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ecsync.config import AccountSettings
from ecsync.store.schema import Account, Listing, Product, Token


def utcnow() -> datetime:
    return datetime.now(UTC)


def sync_accounts(session: Session, configured: Sequence[AccountSettings]) -> dict[str, Account]:
    """Mirror the configured accounts into the database; unconfigured ones become inactive.

    Raises ValueError when a configured platform contradicts an account that has listings.
    """
    existing = {account.name: account for account in session.scalars(select(Account))}
    names = set()
    for settings in configured:
        names.add(settings.name)
        row = existing.get(settings.name)
        if row is None:
            row = Account(
                name=settings.name,
                platform=settings.platform,
                active=settings.active,
                created_at=utcnow(),
            )
            session.add(row)
            existing[settings.name] = row
            continue
        if row.platform != settings.platform:
            listed = session.scalar(
                select(func.count()).select_from(Listing).where(Listing.account_id == row.id)
            )
            if listed:
                raise ValueError(
                    f"account {settings.name!r} is {settings.platform!r} in the config but has "
                    f"{listed} {row.platform!r} listings in the database"
                )
            row.platform = settings.platform
        row.active = settings.active
    for name, row in existing.items():
        if name not in names:
            row.active = False
    session.flush()
    return existing


@dataclass(frozen=True, slots=True)
class ListingKey:
    account: str
    asin: str
    item_id: str
    sku: str
    line: int


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    added: int
    updated: int
    unchanged: int


def import_conflicts(session: Session, rows: Sequence[ListingKey]) -> list[str]:
    """Rows whose item id would collide with another listing once the file is applied.

    A row updates the listing with the same (account, asin); the final state must still have
    one listing per (account, item_id), so swapping two items' ids inside one file is fine.
    """
    accounts = {a.name: a.id for a in session.scalars(select(Account))}
    by_account: dict[int, list[ListingKey]] = {}
    for row in rows:
        by_account.setdefault(accounts[row.account], []).append(row)
    problems: list[str] = []
    for account_id, account_rows in by_account.items():
        final_item_of = {
            asin: item_id
            for asin, item_id in session.execute(
                select(Listing.asin, Listing.item_id).where(Listing.account_id == account_id)
            )
        }
        for row in account_rows:
            final_item_of[row.asin] = row.item_id
        owner: dict[str, str] = {}
        for asin, item_id in final_item_of.items():
            owner.setdefault(item_id, asin)
        for row in account_rows:
            other = owner[row.item_id]
            if other != row.asin:
                problems.append(
                    f"line {row.line}: duplicate (account, item_id) ({row.account}, "
                    f"{row.item_id}): already the listing of ASIN {other}"
                )
    return problems


def apply_import(session: Session, rows: Iterable[ListingKey]) -> ImportOutcome:
    """Upsert listings keyed on (account, asin); creates product rows for new ASINs."""
    accounts = {a.name: a for a in session.scalars(select(Account))}
    rows = list(rows)
    asins = {row.asin for row in rows}
    known = set(session.scalars(select(Product.asin).where(Product.asin.in_(asins))))
    for asin in sorted(asins - known):
        session.add(Product(asin=asin, error_count=0))
    session.flush()
    existing = {
        (listing.account_id, listing.asin): listing
        for listing in session.scalars(select(Listing).where(Listing.asin.in_(asins)))
    }
    added = updated = unchanged = 0
    now = utcnow()
    # Park moved item ids first so a swap inside one file never trips the unique key midway.
    moving = [
        (existing[(accounts[r.account].id, r.asin)], r)
        for r in rows
        if (accounts[r.account].id, r.asin) in existing
        and existing[(accounts[r.account].id, r.asin)].item_id != r.item_id
    ]
    for moved, _row in moving:
        moved.item_id = f"~moving~{moved.id}"
    session.flush()
    for row in rows:
        account = accounts[row.account]
        listing = existing.get((account.id, row.asin))
        if listing is None:
            session.add(
                Listing(
                    account_id=account.id,
                    asin=row.asin,
                    item_id=row.item_id,
                    sku=row.sku,
                    status="listed",
                    created_at=now,
                    updated_at=now,
                )
            )
            added += 1
        elif listing.item_id != row.item_id or listing.sku != row.sku:
            listing.item_id, listing.sku, listing.updated_at = row.item_id, row.sku, now
            if listing.status == "gone":
                listing.status = "listed"
            updated += 1
        else:
            unchanged += 1
    session.flush()
    return ImportOutcome(added=added, updated=updated, unchanged=unchanged)


@dataclass(frozen=True, slots=True)
class AccountSummary:
    name: str
    platform: str
    active: bool
    listings: dict[str, int]
    last_reconciled_at: datetime | None
    token_expires_at: datetime | None


def account_summaries(session: Session) -> list[AccountSummary]:
    counts: dict[int, dict[str, int]] = {}
    for account_id, status, count in session.execute(
        select(Listing.account_id, Listing.status, func.count()).group_by(
            Listing.account_id, Listing.status
        )
    ):
        counts.setdefault(account_id, {})[status] = count
    tokens = {token.owner: token for token in session.scalars(select(Token))}
    return [
        AccountSummary(
            name=account.name,
            platform=account.platform,
            active=account.active,
            listings=counts.get(account.id, {}),
            last_reconciled_at=account.last_reconciled_at,
            token_expires_at=tokens[account.name].expires_at if account.name in tokens else None,
        )
        for account in session.scalars(select(Account).order_by(Account.name))
    ]
