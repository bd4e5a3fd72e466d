"""The simulator's ASGI application: every API and the control routes on one Starlette app.

Amazon, BASE and eBay live on different hosts in reality; here one loopback server serves
all their paths (they do not collide), so a single URL works as every endpoint in the
written config.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from ecsync.sim.amazon import SpApi
from ecsync.sim.control import Control
from ecsync.sim.ebay import EbayApi
from ecsync.sim.ebay_feed import EbayFeed
from ecsync.sim.state import SimState
from ecsync.sim.thebase import BaseApi


def create_app(state: SimState, url: str = "") -> Starlette:
    """Compose the routes over ``state``; ``url`` is what /_sim/config writes as endpoint."""
    control = Control(state)
    control.url = url
    ebay = EbayApi(state)
    routes = [
        *SpApi(state).routes(),
        *BaseApi(state).routes(),
        *ebay.routes(),
        *EbayFeed(ebay).routes(),
        *control.routes(),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # The hang event must belong to the server's own loop.
        state.faults.bind(asyncio.Event())
        try:
            yield
        finally:
            state.faults.release_all()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sim = state
    app.state.control = control
    app.add_middleware(_MarketFirst, state=state)
    return app


class _MarketFirst:
    """Apply the market events due by now before any request is answered (a plain ASGI
    wrapper: Starlette's BaseHTTPMiddleware costs far more per request)."""

    def __init__(self, app: ASGIApp, state: SimState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.state.advance_market()
        await self.app(scope, receive, send)
