"""Fixed-window call budgets (BASE per hour and per day, eBay per day) in ``api_usage``.

The channels meter calls in fixed windows aligned to the clock: BASE's hour resets at
minute :00, its day at midnight JST; eBay's day at midnight UTC. Each window is one
``api_usage`` row (``window_start``, ``window_count``, ``window_limit``) keyed
``<platform>:<account>:<window>``, and every call is counted in the same transaction that
checks it, so a manual ``sync`` beside the daemon draws from the same allowance instead of
doubling it. A call is counted before it is sent (the channel may count it even if the
answer is lost), which errs on the side of stopping early, never of exceeding.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from ecsync.channels.protocol import Budget
from ecsync.clock import Clock, SystemClock
from ecsync.store.runner import DbRunner
from ecsync.store.schema import ApiUsage
from ecsync.store.usage import usage_row

log = logging.getLogger(__name__)

HOUR = 3600.0
DAY = 86400.0
JST_OFFSET = 9 * HOUR  # BASE's day starts at midnight JST (UTC+9)
_SAME = 1e-3  # window starts round-trip through the database at microsecond precision


def _ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


@dataclass(frozen=True, slots=True)
class Window:
    """``limit`` calls per window of ``length_s``; windows start at ``k * length_s - offset_s``."""

    name: str
    limit: int
    length_s: float
    offset_s: float = 0.0

    def start(self, now: float) -> float:
        return ((now + self.offset_s) // self.length_s) * self.length_s - self.offset_s

    def resets_at(self, now: float) -> float:
        return self.start(now) + self.length_s


class CallBudget:
    """The windows of one account, checked and counted together in one transaction."""

    def __init__(
        self, db: DbRunner, prefix: str, windows: Sequence[Window], clock: Clock | None = None
    ) -> None:
        self._db = db
        self._prefix = prefix
        self._windows = list(windows)
        self._clock = clock or SystemClock()

    def key(self, window: Window) -> str:
        return f"{self._prefix}:{window.name}"

    def _window(self, name: str) -> Window:
        for window in self._windows:
            if window.name == name:
                return window
        raise KeyError(name)

    async def take(self) -> datetime | None:
        """Count one call if every window has room: None. Else count nothing and return when
        the fullest window resets (the earliest time the call could be made)."""
        return await self._db.run(self._take)

    def _take(self, session: Session) -> datetime | None:
        now = self._clock.time()
        rows = [(window, self._row(session, window, now)) for window in self._windows]
        full = [window for window, row in rows if row.window_count >= window.limit]
        if full:
            return _ts(max(window.resets_at(now) for window in full))
        for _, row in rows:
            row.window_count += 1
            row.updated_at = _ts(now)
        return None

    async def exhaust(self, name: str) -> datetime:
        """The channel said this window is spent: mark it full for every process on the
        database until it resets, and return that time."""
        return await self._db.run(lambda session: self._exhaust(session, name))

    def _exhaust(self, session: Session, name: str) -> datetime:
        now = self._clock.time()
        window = self._window(name)
        row = self._row(session, window, now)
        row.window_count = max(row.window_count, window.limit)
        row.updated_at = _ts(now)
        resets = window.resets_at(now)
        log.warning(
            "%s: the channel reports the %s call limit reached; no calls until %s",
            self._prefix,
            name,
            _ts(resets).isoformat(timespec="seconds"),
        )
        return _ts(resets)

    async def snapshot(self) -> list[Budget]:
        """What each window has left, for ``ecsync status``."""
        return await self._db.run(self._snapshot)

    def _snapshot(self, session: Session) -> list[Budget]:
        now = self._clock.time()
        budgets = []
        for window in self._windows:
            row = self._row(session, window, now)
            budgets.append(
                Budget(
                    name=window.name,
                    limit=window.limit,
                    used=min(row.window_count, window.limit),
                    resets_at=_ts(window.resets_at(now)),
                )
            )
        return budgets

    def _row(self, session: Session, window: Window, now: float) -> ApiUsage:
        """The window's row, locked, created on first use and rolled into the current window."""
        key = self.key(window)
        start = window.start(now)
        row = usage_row(
            session,
            key,
            lambda: ApiUsage(
                key=key,
                window_start=_ts(start),
                window_count=0,
                window_limit=window.limit,
                updated_at=_ts(now),
            ),
        )
        # Only ever roll forward: a process whose clock lags must not reset a newer window.
        if row.window_start is None or row.window_start.timestamp() < start - _SAME:
            row.window_start = _ts(start)
            row.window_count = 0
        row.window_limit = window.limit
        return row
