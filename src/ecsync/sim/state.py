"""Everything one simulator run holds, in one object the routes share.

The server runs a single event loop, so routes read and change this state without locks;
a request handler never awaits in the middle of a read-modify-write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ecsync.sim.channels import DAY, BaseAccount, EbayAccount
from ecsync.sim.clock import SimClock
from ecsync.sim.events import MarketEvents
from ecsync.sim.exposure import ExposureMeter
from ecsync.sim.faults import Faults
from ecsync.sim.market import Market
from ecsync.sim.options import SimOptions
from ecsync.sim.ratelimit import BucketRegistry, BucketSpec
from ecsync.sim.stats import SimStats
from ecsync.sim.tokens import TokenStore

# Documented default usage plans (rate per second, burst), from the "Usage Plan" table of each
# operation in productPricingV0.json, productPricing_2022-05-01.json and
# catalogItems_2022-04-01.json. Each operation is its own bucket per client (as Amazon's), so a
# client can run them side by side: spending getItemOffersBatch leaves the others untouched.
SPAPI_OPERATIONS: dict[str, BucketSpec] = {
    "getItemOffersBatch": BucketSpec(0.1, 1),
    "getItemOffers": BucketSpec(0.5, 1),
    "getCompetitivePricing": BucketSpec(0.5, 1),
    "getCompetitiveSummary": BucketSpec(0.033, 1),
    "getCatalogItem": BucketSpec(2.0, 2),
}

LWA_CLIENT_ID = "amzn1.application-oa2-client.sim"
LWA_CLIENT_SECRET = "sim-amazon-secret"
LWA_REFRESH_TOKEN = "Atzr|sim-refresh-token"
# A second application, so tests can show that buckets are per client.
LWA_CLIENTS = {LWA_CLIENT_ID: LWA_CLIENT_SECRET, f"{LWA_CLIENT_ID}-2": f"{LWA_CLIENT_SECRET}-2"}
LWA_REFRESH_TOKENS = {
    LWA_REFRESH_TOKEN: LWA_CLIENT_ID,
    f"{LWA_REFRESH_TOKEN}-2": f"{LWA_CLIENT_ID}-2",
}

AMAZON_TOKEN_TTL = 3600.0
BASE_ACCESS_TTL = 3600.0
BASE_REFRESH_TTL = 30 * DAY
BASE_CODE_TTL = 600.0
EBAY_TOKEN_TTL = 7200.0


@dataclass
class SimState:
    options: SimOptions
    clock: SimClock
    market: Market
    faults: Faults
    stats: SimStats
    base: dict[str, BaseAccount]
    ebay: dict[str, EbayAccount]
    buckets: BucketRegistry = field(default_factory=lambda: BucketRegistry(SPAPI_OPERATIONS))
    amazon_tokens: TokenStore = field(default_factory=lambda: TokenStore("Atza|", AMAZON_TOKEN_TTL))
    base_tokens: TokenStore = field(default_factory=lambda: TokenStore("", BASE_ACCESS_TTL))
    base_refresh: TokenStore = field(default_factory=lambda: TokenStore("", BASE_REFRESH_TTL))
    base_codes: TokenStore = field(default_factory=lambda: TokenStore("", BASE_CODE_TTL))
    ebay_tokens: TokenStore = field(
        default_factory=lambda: TokenStore("v^1.1#i^1#p^3#r^1#", EBAY_TOKEN_TTL)
    )
    token_requests: dict[str, int] = field(
        default_factory=lambda: {"amazon": 0, "base": 0, "ebay": 0}
    )
    steps: int = 0
    seeding: dict[str, Any] = field(default_factory=dict)
    # ASINs the control API made unknown to Amazon: offers operations answer InvalidInput.
    unknown_asins: set[str] = field(default_factory=set)
    # The moving market (None: still, --market-rate 0) and the exposure meter; both are
    # attached by seeding.build_state once the channels are seeded.
    events: MarketEvents | None = None
    exposure: ExposureMeter | None = None

    def advance_market(self) -> float:
        """Apply the market events due by now (every request does this first, so a channel
        edit always lands after the market moves that preceded it); returns now."""
        now = self.clock.now()
        if self.events is not None:
            self.events.advance(now)
        return now

    def register_refresh_tokens(self) -> None:
        """The BASE refresh tokens written into the config start valid for 30 days."""
        now = self.clock.now()
        for account in self.base.values():
            self.base_refresh.add(account.refresh_token, account.name, now + BASE_REFRESH_TTL)

    def revoke_access_tokens(self) -> int:
        """The ``revoke_tokens`` fault: every access token issued so far stops working.

        Refresh tokens survive, so a client that handles 401/403 by refreshing recovers.
        """
        self.faults.revocations += 1
        return (
            self.amazon_tokens.revoke_all()
            + self.base_tokens.revoke_all()
            + self.ebay_tokens.revoke_all()
        )
