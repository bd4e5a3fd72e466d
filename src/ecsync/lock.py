"""One instance at a time: an OS file lock beside the database, plus a lease row in it.

The file lock (``filelock``: fcntl on Linux, msvcrt on Windows) dies with its process, so a
lock left by a killed process is taken over safely on the same machine. The lease row, with
its heartbeat, covers machines sharing one PostgreSQL database, and tells ``status`` and
the exit-3 message who holds the lock, where, and since when.

Two locks exist: ``daemon`` (held for a daemon's whole life: a second daemon exits 3) and
``cycle`` (held while a cycle runs, by the daemon or a manual ``sync``).
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import filelock
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from ecsync.errors import LockHeld
from ecsync.store.engine import transaction
from ecsync.store.schema import Lease

log = logging.getLogger(__name__)

LEASE_TTL = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Holder:
    name: str
    pid: int
    host: str
    since: datetime
    heartbeat_at: datetime
    state: str
    phase: str
    progress: dict[str, Any]
    next_cycle_at: datetime | None

    def describe(self, now: datetime) -> str:
        age = (now - self.heartbeat_at).total_seconds()
        return (
            f"pid {self.pid} on {self.host} since {self.since.isoformat(timespec='seconds')} "
            f"(last heartbeat {age:.0f} s ago)"
        )


def lock_path(database_url: str, config_path: Path, name: str) -> Path:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(f"{url.database}.{name}.lock")
    return config_path.parent / f"ecsync.{name}.lock"


def read_holder(session: Session, name: str) -> Holder | None:
    row = session.get(Lease, name)
    if row is None or row.pid == 0:
        return None
    return Holder(
        name=row.name,
        pid=row.pid,
        host=row.host,
        since=row.since,
        heartbeat_at=row.heartbeat_at,
        state=row.state,
        phase=row.phase,
        progress=dict(row.progress or {}),
        next_cycle_at=row.next_cycle_at,
    )


class InstanceLock:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        name: str,
        path: Path,
        *,
        ttl: timedelta = LEASE_TTL,
    ) -> None:
        self.name = name
        self._sessions = sessions
        self._file = filelock.FileLock(str(path), timeout=0)
        self._ttl = ttl
        self._pid = os.getpid()
        self._host = socket.gethostname()

    def acquire(self) -> None:
        """Take the lock or raise LockHeld naming the holder."""
        try:
            self._file.acquire()
        except filelock.Timeout:
            with transaction(self._sessions) as session:
                holder = read_holder(session, self.name)
            who = holder.describe(_now()) if holder else "a process on this machine"
            raise LockHeld(f"another ecsync instance holds the {self.name} lock: {who}") from None
        try:
            with transaction(self._sessions) as session:
                self._take_lease(session)
        except BaseException:
            self._file.release()
            raise

    def _take_lease(self, session: Session) -> None:
        now = _now()
        row = session.get(Lease, self.name, with_for_update=True)
        if row is not None and row.pid != 0 and (row.pid, row.host) != (self._pid, self._host):
            fresh = now - row.heartbeat_at < self._ttl
            if row.host != self._host and fresh:
                raise LockHeld(
                    f"another ecsync instance holds the {self.name} lock: "
                    f"pid {row.pid} on {row.host} since {row.since.isoformat(timespec='seconds')}"
                )
            log.warning(
                "taking over the %s lock left by pid %d on %s (last heartbeat %s)",
                self.name,
                row.pid,
                row.host,
                row.heartbeat_at.isoformat(timespec="seconds"),
            )
        if row is None:
            row = Lease(name=self.name)
            session.add(row)
        row.holder = f"{self._host}:{self._pid}"
        row.pid = self._pid
        row.host = self._host
        row.since = now
        row.heartbeat_at = now
        row.state = "running"
        row.phase = "starting"
        row.progress = {}
        row.next_cycle_at = None

    def heartbeat(
        self,
        *,
        state: str | None = None,
        phase: str | None = None,
        progress: dict[str, Any] | None = None,
        next_cycle_at: datetime | None = None,
        session: Session | None = None,
    ) -> None:
        """Refresh the lease (call at least every 10 s while working)."""

        def beat(s: Session) -> None:
            row = s.get(Lease, self.name)
            if row is None or row.pid != self._pid or row.host != self._host:
                return
            row.heartbeat_at = _now()
            if state is not None:
                row.state = state
            if phase is not None:
                row.phase = phase
            if progress is not None:
                row.progress = progress
            if state is not None or next_cycle_at is not None:
                row.next_cycle_at = next_cycle_at

        if session is not None:
            beat(session)
            return
        with transaction(self._sessions) as own:
            beat(own)

    def release(self) -> None:
        try:
            with transaction(self._sessions) as session:
                row = session.get(Lease, self.name)
                if row is not None and row.pid == self._pid and row.host == self._host:
                    row.pid = 0
                    row.state = "stopped"
                    row.phase = ""
                    row.heartbeat_at = _now()
                    row.next_cycle_at = None
        finally:
            if self._file.is_locked:
                self._file.release()


def _now() -> datetime:
    return datetime.now(UTC)
