"""Rows of ``api_usage``: budgets that every ecsync process on the database shares."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ecsync.store.schema import ApiUsage


def usage_row(session: Session, key: str, new: Callable[[], ApiUsage]) -> ApiUsage:
    """The row for ``key``, locked for this transaction; ``new()`` builds it on first use.

    Two processes may both find it missing: the second insert fails on the primary key
    inside a savepoint, and that process reads the row the first one made.
    """
    query = select(ApiUsage).where(ApiUsage.key == key).with_for_update()
    row = session.scalar(query)
    if row is not None:
        return row
    row = new()
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        row = session.scalars(query).one()
    return row
