"""OAuth tokens of the channel accounts, kept in the ``tokens`` table (owner = account name).

BASE rotates the refresh token on every refresh and retires the old one at once. So the
new pair is saved in a committed transaction before the new access token is used: a crash
right after a refresh then costs nothing, where a refresh token held only in memory would
lock the account out for good. The stored refresh token wins over the config file's (the
config one is only the seed); if the stored one is refused and the config one differs
(a person re-authorised and edited the file), the config one is tried once.

Access tokens are shared by every process on the database until shortly before they
expire. A refresh is serialised across processes by a lease row in ``api_usage``
(``oauth:<owner>:refresh``, its ``cooldown_until`` is the lease expiry): two processes
refreshing one BASE account at once would otherwise have the loser present a refresh token
the winner just retired, and conclude the account needs re-authorising.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ecsync.channels.errors import ChannelAuthError
from ecsync.clock import Clock, Stop, SystemClock
from ecsync.errors import Interrupted
from ecsync.store.runner import DbRunner
from ecsync.store.schema import ApiUsage, Token

log = logging.getLogger(__name__)

LEASE_POLL_S = 0.1


def _ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


@dataclass(frozen=True, slots=True)
class Grant:
    """A token endpoint's answer. ``refresh_token`` is None when the server does not rotate."""

    access_token: str
    expires_in: float
    refresh_token: str | None = None
    refresh_expires_in: float | None = None


class RefreshRefused(Exception):
    """The token endpoint refused the refresh token or the client.

    ``bad_client``: the client itself was refused (unknown or suspended app, wrong secret:
    BASE ``unauthorized_client``, OAuth ``invalid_client``), so no other refresh token can
    help and the person must check client_id / client_secret. ``hint`` is the platform's
    advice for a refused refresh token, added to the error a person reads.
    """

    def __init__(
        self, code: str, description: str = "", *, bad_client: bool | None = None, hint: str = ""
    ) -> None:
        super().__init__(f"{code}: {description}" if description else code)
        self.code = code
        self.description = description
        self.bad_client = (
            code in ("invalid_client", "unauthorized_client") if bad_client is None else bad_client
        )
        self.hint = hint


Refresher = Callable[[str], Awaitable[Grant]]


@dataclass(frozen=True, slots=True)
class StoredToken:
    access_token: str | None
    refresh_token: str | None
    expires_at: float | None  # epoch seconds


class TokenStore:
    """The ``tokens`` row of one owner, and its refresh lease in ``api_usage``."""

    def __init__(self, db: DbRunner, owner: str, clock: Clock | None = None) -> None:
        self._db = db
        self.owner = owner
        self._clock = clock or SystemClock()
        self._lease_key = f"oauth:{owner}:refresh"

    async def load(self) -> StoredToken | None:
        def read(session: Session) -> StoredToken | None:
            row = session.get(Token, self.owner)
            if row is None:
                return None
            expires = row.expires_at.timestamp() if row.expires_at else None
            return StoredToken(row.access_token, row.refresh_token, expires)

        return await self._db.run(read)

    async def save(self, grant: Grant, used_refresh_token: str) -> StoredToken:
        """Commit the grant (and the rotated refresh token, if any) before anyone uses it."""
        now = self._clock.time()
        refresh = grant.refresh_token or used_refresh_token
        stored = StoredToken(grant.access_token, refresh, now + grant.expires_in)

        def write(session: Session) -> None:
            row = session.get(Token, self.owner, with_for_update=True)
            if row is None:
                row = Token(owner=self.owner, updated_at=_ts(now))
                session.add(row)
            row.access_token = grant.access_token
            row.refresh_token = refresh
            row.expires_at = _ts(now + grant.expires_in)
            if grant.refresh_expires_in is not None:
                row.refresh_expires_at = _ts(now + grant.refresh_expires_in)
            row.updated_at = _ts(now)

        await self._db.run(write)
        return stored

    async def try_lease(self, lease_s: float) -> float:
        """Take the refresh lease: 0 when taken, else the seconds it still has to run."""
        return await self._db.run(lambda session: self._try_lease(session, lease_s))

    def _try_lease(self, session: Session, lease_s: float) -> float:
        now = self._clock.time()
        row = session.scalar(
            select(ApiUsage).where(ApiUsage.key == self._lease_key).with_for_update()
        )
        if row is None:
            row = ApiUsage(key=self._lease_key, updated_at=_ts(now))
            try:
                with session.begin_nested():
                    session.add(row)
            except IntegrityError:  # another process created it first
                row = session.scalars(
                    select(ApiUsage).where(ApiUsage.key == self._lease_key).with_for_update()
                ).one()
        if row.cooldown_until is not None and row.cooldown_until.timestamp() > now:
            return row.cooldown_until.timestamp() - now
        row.cooldown_until = _ts(now + lease_s)
        row.updated_at = _ts(now)
        return 0.0

    async def release(self) -> None:
        def write(session: Session) -> None:
            row = session.get(ApiUsage, self._lease_key, with_for_update=True)
            if row is not None:
                row.cooldown_until = None
                row.updated_at = _ts(self._clock.time())

        await self._db.run(write)


class TokenManager:
    """Hands out a valid access token for one account, refreshing it when needed."""

    def __init__(
        self,
        *,
        store: TokenStore,
        refresher: Refresher,
        seed_refresh_token: str,
        label: str,
        stop: Stop,
        clock: Clock | None = None,
        margin_s: float = 300.0,
        lease_s: float = 90.0,
    ) -> None:
        self._store = store
        self._refresher = refresher
        self._seed = seed_refresh_token
        self.label = label  # e.g. "BASE account 'base-1'", for messages a person reads
        self._stop = stop
        self._clock = clock or SystemClock()
        self._margin_s = margin_s
        self._lease_s = lease_s
        self._current: StoredToken | None = None
        self._lock = asyncio.Lock()
        self.refreshes = 0

    def _usable(self, token: StoredToken | None, stale: str | None) -> bool:
        return (
            token is not None
            and bool(token.access_token)
            and token.access_token != stale
            and token.expires_at is not None
            and token.expires_at - self._margin_s > self._clock.time()
        )

    async def access(self) -> str:
        """A valid access token: from memory, else from the database, else refreshed."""
        current = self._current
        if self._usable(current, None):
            assert current is not None and current.access_token
            return current.access_token
        async with self._lock:
            return await self._obtain(None)

    async def refreshed(self, stale: str) -> str:
        """The channel refused ``stale`` (expired, revoked): a different, valid token.

        Parallel callers that saw the same refusal share one refresh: whoever comes second
        finds a token other than ``stale`` already there and takes it.
        """
        async with self._lock:
            if self._usable(self._current, stale):
                assert self._current is not None and self._current.access_token
                return self._current.access_token
            return await self._obtain(stale)

    async def _obtain(self, stale: str | None) -> str:
        stored = await self._store.load()
        if not self._usable(stored, stale):
            stored = await self._under_lease(stale)
        assert stored is not None and stored.access_token
        self._current = stored
        return stored.access_token

    async def _under_lease(self, stale: str | None) -> StoredToken:
        """Wait for the lease (or for another process to finish its refresh), then refresh."""
        deadline = self._clock.monotonic() + self._lease_s * 2
        while (left := await self._store.try_lease(self._lease_s)) > 0:
            if self._clock.monotonic() > deadline:
                break  # a lease left by a dead process; it expires by itself, but do not wait
            if await self._stop.sleep(min(LEASE_POLL_S, left)):
                raise Interrupted(self._stop.reason)
            stored = await self._store.load()
            if self._usable(stored, stale):
                assert stored is not None
                return stored
        # Shielded: once the request is out, BASE may already have retired the old refresh
        # token, so the answer must reach the database even if this caller is cancelled.
        return await asyncio.shield(self._refresh_and_release(stale))

    async def _refresh_and_release(self, stale: str | None) -> StoredToken:
        try:
            stored = await self._store.load()
            if self._usable(stored, stale):  # another process refreshed just before us
                assert stored is not None
                return stored
            return await self._refresh(stored)
        finally:
            await self._store.release()

    async def _refresh(self, stored: StoredToken | None) -> StoredToken:
        first = stored.refresh_token if stored is not None and stored.refresh_token else self._seed
        if not first:
            raise ChannelAuthError(f"{self.label}: no refresh token configured")
        try:
            grant = await self._refresher(first)
            used = first
        except RefreshRefused as refused:
            if refused.bad_client:
                raise self._auth_error(refused) from None
            grant, used = await self._fallback(first, refused)
        saved = await self._store.save(grant, used)
        self.refreshes += 1
        log.info(
            "%s: access token refreshed%s",
            self.label,
            " (refresh token rotated and saved)" if grant.refresh_token else "",
        )
        return saved

    async def _fallback(self, first: str, refused: RefreshRefused) -> tuple[Grant, str]:
        """The refresh token was refused: try a newer stored one, then the config seed, once
        each."""
        latest = await self._store.load()
        candidates = []
        if latest is not None and latest.refresh_token and latest.refresh_token != first:
            candidates.append(latest.refresh_token)
        if self._seed and self._seed != first and self._seed not in candidates:
            candidates.append(self._seed)
        last = refused
        for candidate in candidates:
            which = "the config file's" if candidate == self._seed else "a newer stored"
            log.warning("%s: refresh token refused (%s); trying %s", self.label, last.code, which)
            try:
                return await self._refresher(candidate), candidate
            except RefreshRefused as again:
                last = again
                if again.bad_client:
                    break
        raise self._auth_error(last) from None

    def _auth_error(self, refused: RefreshRefused) -> ChannelAuthError:
        if refused.bad_client:
            return ChannelAuthError(
                f"{self.label}: the token endpoint refused the client ({refused}); check the "
                "account's client_id and client_secret in the config file (and that the app "
                "is not suspended): re-authorising will not help"
            )
        advice = refused.hint or (
            "re-authorise the account and put the new refresh token in the config file"
        )
        return ChannelAuthError(
            f"{self.label}: the token endpoint refused the refresh token ({refused}); {advice}"
        )
