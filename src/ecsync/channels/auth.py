"""The one "refused token -> refresh -> retry once" flow of every channel, as an ``httpx.Auth``.

Each call carries the account's current access token. When the channel answers that the
token is bad, the flow asks the :class:`~ecsync.channels.tokens.TokenManager` for a refreshed
one (parallel callers share a single refresh there) and sends the request again, once: a
second refusal of a fresh token is not expiry, and the caller gets that answer to judge.

Channels say "bad token" differently (BASE: HTTP 400 ``invalid_request`` about the access
token; eBay: HTTP 401), so the test is a callable each adapter supplies.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable

import httpx

from ecsync.channels.tokens import TokenManager

log = logging.getLogger(__name__)

TokenRefused = Callable[[httpx.Response], bool]


class RefreshingAuth(httpx.Auth):
    """Bearer token from ``tokens``; on a refusal (``refused(response)``) one refresh and one
    resend. ``before_retry`` runs before the resend (the adapter draws it from its call
    budget: the channel counts it as a call)."""

    requires_response_body = True  # BASE's refusal is told by the body of a 400

    def __init__(
        self,
        tokens: TokenManager,
        refused: TokenRefused,
        before_retry: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self._tokens = tokens
        self._refused = refused
        self._before_retry = before_retry

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self._tokens.access()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        await response.aread()  # requires_response_body: this override must read it itself
        if not self._refused(response):
            return
        log.info(
            "%s: access token refused (HTTP %d); refreshing",
            self._tokens.label,
            response.status_code,
        )
        fresh = await self._tokens.refreshed(token)
        if self._before_retry is not None:
            await self._before_retry()
        request.headers["Authorization"] = f"Bearer {fresh}"
        yield request


def refused_with_401(response: httpx.Response) -> bool:
    """The OAuth 2 bearer-token convention (eBay): 401 means the token, nothing else."""
    return response.status_code == 401
