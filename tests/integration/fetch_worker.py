"""A second process fetching on the same database: ``python -m tests.integration.fetch_worker``.

Manual syncs are serialised by the cycle lock, so this drives the fetch engine directly to
prove what the lock does not: two processes on one database draw from one rate budget.
"""

from __future__ import annotations

import asyncio
import json
import sys

from sqlalchemy import select

from ecsync.amazon.client import OffersClient
from ecsync.amazon.governor import RateGovernor
from ecsync.clock import Stop
from ecsync.config import load_settings
from ecsync.engine.fetch import Fetcher
from ecsync.store.engine import make_engine, session_factory
from ecsync.store.runner import DbRunner
from ecsync.store.schema import Product


async def main(config: str) -> None:
    settings = load_settings(config, required=True)
    engine = make_engine(settings.database_url)
    db = DbRunner(session_factory(engine))
    asins = await db.run(lambda s: list(s.scalars(select(Product.asin).order_by(Product.asin))))
    client = OffersClient(settings.amazon)
    stop = Stop()
    fetcher = Fetcher(
        client=client,
        governor=RateGovernor(db, client.credentials_key, stop),
        db=db,
        settings=settings.amazon,
        stop=stop,
    )
    stats = await fetcher.run(asins)
    await client.aclose()
    db.close()
    engine.dispose()
    print(json.dumps({"requests": stats.requests, "throttled": stats.throttled}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
