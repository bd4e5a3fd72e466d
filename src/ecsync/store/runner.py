"""Database work for async code: one worker thread per run, so the event loop never blocks
on a busy SQLite lock and writes from one process never race each other."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker

from ecsync.store.engine import transaction

T = TypeVar("T")


class DbRunner:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ecsync-db")

    async def run(self, work: Callable[[Session], T], *, commit: bool = True) -> T:
        """Run ``work`` in one transaction on the database thread; ``commit=False`` rolls it
        back whatever it did (how a dry run plans without writing)."""
        loop = asyncio.get_running_loop()
        # Shielded: a cancelled caller must not leave a half-finished transaction behind;
        # the transaction completes (or rolls back) on its thread either way.
        call = functools.partial(self._in_tx, work, commit)
        return await asyncio.shield(loop.run_in_executor(self._executor, call))

    def _in_tx(self, work: Callable[[Session], T], commit: bool) -> T:
        if commit:
            with transaction(self.sessions) as session:
                return work(session)
        with self.sessions() as session:
            try:
                return work(session)
            finally:
                session.rollback()

    def close(self) -> None:
        self._executor.shutdown(wait=True)
