"""``ecsync pull``: import channel accounts' existing items as listings."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from datetime import UTC, datetime

from ecsync.app import App
from ecsync.channels import open_account
from ecsync.clock import Stop, SystemClock
from ecsync.engine.reconcile import PullOutcome, apply_pull, read_account
from ecsync.store.runner import DbRunner


async def pull_accounts(app: App, names: Sequence[str], stop: Stop) -> list[PullOutcome]:
    """Read every named account in parallel, then upsert each one's listings in one
    transaction (all or nothing per account)."""
    db = DbRunner(app.sessions)
    clock = SystemClock()
    adapters = [open_account(app.settings, n, db, stop, clock) for n in names]
    try:
        results = await asyncio.gather(*(read_account(a) for a in adapters))
        outcomes = []
        for result in results:
            now = datetime.now(UTC)
            outcomes.append(await db.run(functools.partial(apply_pull, result=result, now=now)))
        return outcomes
    finally:
        for adapter in adapters:
            await adapter.aclose()
        db.close()
