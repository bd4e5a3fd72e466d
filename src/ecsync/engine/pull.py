"""``ecsync pull``: import channel accounts' existing items as listings.

Accounts are read in parallel and each is written in its own transaction (all or nothing per
account), so one account that cannot be read (refused token, spent budget, channel down)
leaves the others imported; the report names it and the CLI exits 1.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from ecsync.app import App
from ecsync.channels import open_account
from ecsync.channels.errors import ChannelError
from ecsync.channels.protocol import ChannelAdapter
from ecsync.clock import Stop, SystemClock
from ecsync.engine.reconcile import (
    PullOutcome,
    ReadResult,
    apply_pull,
    listed_skus,
    read_account,
)
from ecsync.store.runner import DbRunner

log = logging.getLogger(__name__)


@dataclass
class PullReport:
    """What each account's pull did, and the accounts that could not be pulled (why)."""

    outcomes: list[PullOutcome] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)  # channel calls per account


async def pull_accounts(app: App, names: Sequence[str], stop: Stop) -> PullReport:
    """Read every named account in parallel; write each read as soon as it is in."""
    db = DbRunner(app.sessions)
    clock = SystemClock()
    adapters = [open_account(app.settings, n, db, stop, clock) for n in names]
    report = PullReport()
    lock = asyncio.Lock()  # one account's writes at a time (one database writer)

    async def one(adapter: ChannelAdapter) -> None:
        try:
            expected = await db.run(functools.partial(listed_skus, account_name=adapter.account))
            result = await read_account(adapter, expected)
        except ChannelError as exc:
            log.error("%s: pull failed: %s", adapter.account, exc)
            report.failed[adapter.account] = str(exc)
            return
        finally:
            report.calls[adapter.account] = adapter.calls
        async with lock:
            report.outcomes.append(await db.run(functools.partial(_apply, result=result)))

    try:
        await asyncio.gather(*(one(a) for a in adapters))
        order = {name: i for i, name in enumerate(names)}
        report.outcomes.sort(key=lambda o: order.get(o.account, len(order)))
        return report
    finally:
        for adapter in adapters:
            await adapter.aclose()
        db.close()


def _apply(session: Session, *, result: ReadResult) -> PullOutcome:
    return apply_pull(session, result, datetime.now(UTC))
