"""The database schema: the single source of truth for products, listings, changes and cycles.

Unique keys carry the invariants that keep a shop sane (one listing per account and ASIN,
one per account and channel item id), so a bug elsewhere fails loudly instead of pushing
the same item twice. Money is ``Numeric`` (yen for BASE, USD for eBay): never float.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Money = Numeric(14, 2)
# SQLite only auto-increments INTEGER PRIMARY KEY; BigInteger elsewhere.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Timestamps go in and come out timezone-aware in UTC on every backend.

    SQLite keeps no zone, so values are stored as naive UTC and given their zone back on read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: ecsync stores aware UTC times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: JSON()}  # noqa: RUF012


class Account(Base):
    """Mirror of a configured channel account; the config file stays the source of settings."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    platform: Mapped[str] = mapped_column(String(8))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    last_reconciled_at: Mapped[datetime | None]


class Product(Base):
    """One Amazon ASIN and its latest quote. An error never overwrites the last good quote."""

    __tablename__ = "products"

    asin: Mapped[str] = mapped_column(String(10), primary_key=True)
    quote_status: Mapped[str | None] = mapped_column(String(24))
    price: Mapped[Decimal | None] = mapped_column(Money)
    seller_id: Mapped[str | None] = mapped_column(String(32))
    is_fba: Mapped[bool | None] = mapped_column(Boolean)
    is_prime: Mapped[bool | None] = mapped_column(Boolean)
    handling_hours: Mapped[int | None] = mapped_column(Integer)
    offer_count: Mapped[int | None] = mapped_column(Integer)
    fetched_at: Mapped[datetime | None]
    price_changed_at: Mapped[datetime | None]
    stock_changed_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None]
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    # What the last full quote implied about what a probe sees (None: it did not say), so a
    # getCompetitivePricing probe can be compared with it (domain.probes.probe_differs).
    buy_box_present: Mapped[bool | None] = mapped_column(Boolean)
    buy_box_landed: Mapped[Decimal | None] = mapped_column(Money)
    new_offer_count: Mapped[int | None] = mapped_column(Integer)
    # The ASIN's own change history, for the refresh scheduler's learned change rate: good
    # quotes whose price or availability moved from the previous good one, over the seconds
    # between good quotes (errors count in neither).
    quote_changes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    observed_s: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")

    __table_args__ = (Index("ix_products_fetched_at", "fetched_at"),)


class Listing(Base):
    """An item on one channel account, with the state last confirmed on the channel."""

    __tablename__ = "listings"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    asin: Mapped[str] = mapped_column(ForeignKey("products.asin"))
    item_id: Mapped[str] = mapped_column(String(64))
    sku: Mapped[str] = mapped_column(String(64), default="")
    offer_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="listed")
    desired_price: Mapped[Decimal | None] = mapped_column(Money)
    desired_visible: Mapped[bool | None] = mapped_column(Boolean)
    desired_quantity: Mapped[int | None] = mapped_column(Integer)
    confirmed_price: Mapped[Decimal | None] = mapped_column(Money)
    confirmed_visible: Mapped[bool | None] = mapped_column(Boolean)
    confirmed_quantity: Mapped[int | None] = mapped_column(Integer)
    confirmed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("account_id", "asin"),
        UniqueConstraint("account_id", "item_id"),
        Index("ix_listings_asin", "asin"),
    )


class Cycle(Base):
    """One sync run (or dry run), with its summary counters."""

    __tablename__ = "cycles"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="running")
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    host: Mapped[str] = mapped_column(String(128), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)


class Change(Base):
    """The journal: written before a channel call, settled after it.

    A held change is the seller's to decide: ``released`` (sent by the next cycle without the
    guard that held it; ``finished_at`` is set once a cycle has planned its listing again) or
    ``rejected`` (the channel kept as it is until the source moves), by ``decided_by`` at
    ``decided_at``."""

    __tablename__ = "changes"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id", ondelete="CASCADE"))
    listing_id: Mapped[int] = mapped_column(ForeignKey("listings.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    old_price: Mapped[Decimal | None] = mapped_column(Money)
    new_price: Mapped[Decimal | None] = mapped_column(Money)
    old_visible: Mapped[bool | None] = mapped_column(Boolean)
    new_visible: Mapped[bool | None] = mapped_column(Boolean)
    old_quantity: Mapped[int | None] = mapped_column(Integer)
    new_quantity: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="planned")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_changes_status", "status"),
        Index("ix_changes_listing_id", "listing_id"),
        Index("ix_changes_cycle_id", "cycle_id"),
    )


class Token(Base):
    """OAuth tokens per owner (``amazon`` or an account name); rotated refresh tokens land
    here before they are used, so a crash right after a refresh cannot lock an account out."""

    __tablename__ = "tokens"

    owner: Mapped[str] = mapped_column(String(64), primary_key=True)
    access_token: Mapped[str | None] = mapped_column(Text)
    refresh_token: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None]
    refresh_expires_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class ApiUsage(Base):
    """Rate-governor state shared by every ecsync process on this database.

    ``key`` names the budget, e.g. ``spapi:<client>:getItemOffersBatch`` (a token bucket:
    ``rate``, ``burst``, ``tokens`` at ``updated_at``) or ``base:<account>:hour`` (a fixed
    window: ``window_start`` and ``window_count``).
    """

    __tablename__ = "api_usage"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    rate: Mapped[float] = mapped_column(Float, default=0.0)
    burst: Mapped[float] = mapped_column(Float, default=1.0)
    tokens: Mapped[float] = mapped_column(Float, default=0.0)
    granted_rate: Mapped[float | None] = mapped_column(Float)
    cooldown_until: Mapped[datetime | None]
    window_start: Mapped[datetime | None]
    window_count: Mapped[int] = mapped_column(Integer, default=0)
    window_limit: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime]


class Lease(Base):
    """Who runs what: ``daemon`` (held for a daemon's life) and ``cycle`` (held while a cycle
    runs, by the daemon or a manual sync). The heartbeat lets ``status`` tell a running
    instance from a stalled or dead one, across machines sharing one PostgreSQL database."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(String(128))
    since: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16), default="running")
    phase: Mapped[str] = mapped_column(String(32), default="")
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    next_cycle_at: Mapped[datetime | None]
