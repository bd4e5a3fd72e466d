"""What every channel adapter shares: one account's HTTP client, call budget and tokens."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Iterable

import httpx
from tenacity import AsyncRetrying, RetryCallState

from ecsync.channels.auth import RefreshingAuth, refused_with_401
from ecsync.channels.budget import CallBudget, Window
from ecsync.channels.errors import ChannelBudgetExhausted
from ecsync.channels.http import HttpOptions, make_client, retrying
from ecsync.channels.protocol import Budget, ChannelItem, ChannelRead
from ecsync.channels.tokens import Grant, TokenManager, TokenStore
from ecsync.clock import Clock, Stop, SystemClock
from ecsync.config import AccountSettings
from ecsync.errors import Interrupted
from ecsync.store.runner import DbRunner

log = logging.getLogger(__name__)


class AccountAdapter:
    """Base of the BASE and eBay adapters; subclasses name their platform, label, call
    windows and how a refresh token is exchanged."""

    platform = ""
    label = ""

    def __init__(
        self,
        account: AccountSettings,
        db: DbRunner,
        stop: Stop,
        clock: Clock | None = None,
        *,
        options: HttpOptions | None = None,
    ) -> None:
        self.account = account.name
        self._settings = account
        self._stop = stop
        self._clock = clock or SystemClock()
        self._options = options or HttpOptions()
        self._http = make_client(account.endpoint, self._options)
        self._budget = CallBudget(
            db,
            f"{self.platform}:{account.name}",
            self.windows(account, self._options.time_scale),
            self._clock,
        )
        self._tokens = TokenManager(
            store=TokenStore(db, account.name, self._clock),
            refresher=self._refresh,
            seed_refresh_token=account.refresh_token.get_secret_value(),
            label=f"{self.label} account {account.name!r}",
            stop=stop,
            clock=self._clock,
            margin_s=self._options.token_margin_s,
            lease_s=self._options.lease_s,
        )
        # Every call carries the token; a refused one is refreshed and the call sent once
        # more (a call of its own for the budget).
        self._auth = RefreshingAuth(
            self._tokens, self._token_refused, lambda: self._draw_call("call budget")
        )
        self._rng = random.Random()
        self._calls = 0

    def windows(self, account: AccountSettings, time_scale: float) -> list[Window]:
        raise NotImplementedError

    async def _refresh(self, refresh_token: str) -> Grant:
        raise NotImplementedError

    def _token_refused(self, response: httpx.Response) -> bool:
        """Does this answer say the access token is bad? OAuth's 401 unless the channel
        says it otherwise (BASE)."""
        return refused_with_401(response)

    async def _draw_call(self, budget_name: str) -> str:
        """Before each call: honour a stop, get a valid token, take one call from the budget.

        Returns the access token. Raises Interrupted or ChannelBudgetExhausted.
        """
        if self._stop.is_set():  # before a refresh or a budget draw, not just the send
            raise Interrupted(self._stop.reason)
        token = await self._tokens.access()
        until = await self._budget.take()
        if until is not None:
            raise ChannelBudgetExhausted(
                f"{self.label} account {self.account!r}: {budget_name} spent until "
                f"{until.isoformat(timespec='seconds')}",
                until,
            )
        self._calls += 1
        return token

    def _retrying(self, method: str, path: str) -> AsyncRetrying:
        """Bounded retries of a transient failure (5xx, timeout, malformed answer) of one
        call, with jittered backoff that a stop request cuts short."""

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "%s account %s: %s %s failed (%s); retry %d/%d in %.1f s",
                self.label,
                self.account,
                method,
                path,
                exc,
                state.attempt_number,
                self._options.max_retries,
                state.upcoming_sleep,
            )

        return retrying(self._options, self._stop, self._rng, before_sleep)

    def read_items(self) -> AsyncIterator[ChannelItem]:
        raise NotImplementedError

    async def read(self, expected_skus: Iterable[str] = ()) -> ChannelRead:
        """Default bulk read: every item ``read_items`` yields, complete unless it raised.

        Adapters that can tell a partial read (an item refused, a malformed entry) or know of
        items positively gone override this.
        """
        before = self._calls
        items = [item async for item in self.read_items()]
        return ChannelRead(items, calls=self._calls - before)

    @property
    def calls(self) -> int:
        return self._calls

    @property
    def token_refreshes(self) -> int:
        return self._tokens.refreshes

    async def aclose(self) -> None:
        await self._http.aclose()

    async def budgets(self) -> list[Budget]:
        return await self._budget.snapshot()
