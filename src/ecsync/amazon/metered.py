"""getCompetitivePricing and getItemOffers, each paced by its own bucket of the rate governor.

Amazon meters every operation on a bucket of its own, so probes (getCompetitivePricing) and
single full quotes (getItemOffers) can run beside the batch sweep without slowing it: the
governor keys its buckets by operation name, and this module only ever names the one it
calls. A 429 on one operation cuts that operation's rate alone.

One request per call, no retry: whoever schedules the refresh decides what to do with a
failure (a throttled probe goes back in its queue; an error probe is not evidence). What the
governor must learn happens here, the same way the batch fetch loop does it:

- before: a valid access token, then a slot in the operation's bucket (a token that cannot
  be had for a moment takes the slot all the same, so the caller's retry is paced);
- a success (or an item-level refusal, which Amazon meters too): the granted rate from the
  answer's header;
- ``Throttled``: the bucket backs off (``RateGovernor.throttled``) and the error is raised;
- ``TokenRejected`` (a stale token, refused before metering): the slot is given back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

from ecsync.amazon.client import (
    COMPETITIVE_PRICING,
    ITEM_OFFERS,
    ItemOffersAnswer,
    OffersClient,
    ProbeAnswer,
)
from ecsync.amazon.errors import Throttled, TokenRejected, TransientError
from ecsync.amazon.governor import RateGovernor


class _Answer(Protocol):
    @property
    def rate_limit(self) -> float | None: ...


A = TypeVar("A", bound=_Answer)


class MeteredPricing:
    """The probe and single-quote operations of one seller, through the shared governor.

    ``requests`` and ``throttled`` count per operation what this instance sent and what
    Amazon refused with a 429 (for the quota-use figures of ``status`` and ``/metrics``).
    """

    def __init__(self, client: OffersClient, governor: RateGovernor) -> None:
        self._client = client
        self._governor = governor
        self.requests: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()

    async def competitive_pricing(self, asins: Sequence[str]) -> ProbeAnswer:
        """Probes for up to 20 ASINs (see ``OffersClient.competitive_pricing``)."""
        return await self._metered(
            COMPETITIVE_PRICING, lambda: self._client.competitive_pricing(asins)
        )

    async def item_offers(self, asin: str) -> ItemOffersAnswer:
        """One full answer for ``asin`` (see ``OffersClient.item_offers``)."""
        return await self._metered(ITEM_OFFERS, lambda: self._client.item_offers(asin))

    async def _metered(self, operation: str, call: Callable[[], Awaitable[A]]) -> A:
        try:
            await self._client.ensure_token()
        except TransientError:
            # No request went out, but the caller's loop asks again at once: without a slot
            # taken here an LWA outage (a refused connection fails in microseconds) would
            # spin it, hammering LWA and the store. The failure is paced by the bucket.
            await self._governor.acquire(operation)
            raise
        await self._governor.acquire(operation)
        self.requests[operation] += 1
        try:
            answer = await call()
        except Throttled:
            self.throttled[operation] += 1
            await self._governor.throttled(operation)
            raise
        except TokenRejected:
            await self._governor.refund(operation)
            raise
        await self._governor.granted(operation, answer.rate_limit)
        return answer
