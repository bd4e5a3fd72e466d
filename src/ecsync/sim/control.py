"""The control API under ``/_sim/``: what tests, benchmarks and the demo use to steer and
inspect the simulator (INTERFACE.md), plus a few extras for time, limits and hand edits.

Never subject to faults, tokens or rate limits: a test must always be able to look.
"""

from __future__ import annotations

import logging
import math
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ecsync.sim import payloads
from ecsync.sim.channels import BaseAccount, EbayAccount, price_to_cents
from ecsync.sim.events import KEEP, still_report
from ecsync.sim.faults import FaultError
from ecsync.sim.market import Offer
from ecsync.sim.seeding import config_text
from ecsync.sim.state import LWA_CLIENT_ID, LWA_CLIENT_SECRET, LWA_REFRESH_TOKEN, SimState
from ecsync.sim.thebase import apply_hand_edit, control_json
from ecsync.sim.web import BadBody, json_response, read_json

log = logging.getLogger(__name__)


def _bad(message: str, status: int = 400) -> Response:
    return json_response({"error": message}, status)


async def _object(request: Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise BadBody("the request body must be a JSON object")
    return body


def _number(body: dict[str, Any], key: str, default: float | None = None) -> float:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadBody(f"{key}: a number is required")
    if not math.isfinite(value):  # Python's JSON reads Infinity and NaN
        raise BadBody(f"{key}: a finite number is required, not {value}")
    return float(value)


def _int(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadBody(f"{key}: a positive integer is required")
    return value


class Control:
    def __init__(self, state: SimState) -> None:
        self.state = state
        self.url = ""  # set by the server once the port is known

    def routes(self) -> list[Route]:
        return [
            Route("/_sim/health", self.health, methods=["GET"]),
            Route("/_sim/stats", self.stats, methods=["GET"]),
            Route("/_sim/stats/reset", self.stats_reset, methods=["POST"]),
            Route("/_sim/amazon/{asin}", self.amazon, methods=["GET", "PUT"]),
            Route("/_sim/market/step", self.market_step, methods=["POST"]),
            Route("/_sim/exposure", self.exposure, methods=["GET"]),
            Route("/_sim/exposure/reset", self.exposure_reset, methods=["POST"]),
            Route("/_sim/market", self.market_summary, methods=["GET"]),
            Route("/_sim/market/events", self.market_events, methods=["GET"]),
            Route("/_sim/market/start", self.market_start, methods=["POST"]),
            Route("/_sim/faults", self.faults, methods=["GET", "PUT", "PATCH"]),
            Route("/_sim/clock", self.clock, methods=["GET", "PUT"]),
            Route("/_sim/clock/advance", self.clock_advance, methods=["POST"]),
            Route("/_sim/accounts", self.accounts, methods=["GET"]),
            Route("/_sim/config", self.config, methods=["GET"]),
            Route("/_sim/limits", self.limits, methods=["GET"]),
            Route("/_sim/base/{account}", self.base_account, methods=["GET", "PATCH"]),
            Route("/_sim/base/{account}/items", self.base_items, methods=["GET"]),
            Route(
                "/_sim/base/{account}/items/{item_id:int}",
                self.base_item,
                methods=["GET", "PATCH", "DELETE"],
            ),
            Route("/_sim/ebay/{account}", self.ebay_account, methods=["GET", "PATCH"]),
            Route("/_sim/ebay/{account}/offers", self.ebay_offers, methods=["GET"]),
            Route(
                "/_sim/ebay/{account}/offers/{offer_id}",
                self.ebay_offer,
                methods=["GET", "PATCH", "DELETE"],
            ),
        ]

    # --- general ----------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        state = self.state
        return json_response(
            {
                "status": "ok",
                "seed": state.options.seed,
                "products": len(state.market.products),
                "speed": state.clock.speed,
                "base_accounts": list(state.base),
                "ebay_accounts": list(state.ebay),
                "now": state.clock.now(),
            }
        )

    async def stats(self, request: Request) -> Response:
        snapshot = self.state.stats.snapshot()
        snapshot["auth"] = dict(self.state.token_requests)
        return json_response(snapshot)

    async def stats_reset(self, request: Request) -> Response:
        self.state.stats.reset()
        for key in self.state.token_requests:
            self.state.token_requests[key] = 0
        return json_response(self.state.stats.snapshot())

    async def accounts(self, request: Request) -> Response:
        """Names and credentials of every simulated account (what --write-config writes)."""
        state = self.state
        return json_response(
            {
                "amazon": {
                    "client_id": LWA_CLIENT_ID,
                    "client_secret": LWA_CLIENT_SECRET,
                    "refresh_token": LWA_REFRESH_TOKEN,
                },
                "base": [_credentials(a) for a in state.base.values()],
                "ebay": [_credentials(a) for a in state.ebay.values()],
            }
        )

    async def config(self, request: Request) -> Response:
        """The ``ecsync.toml`` text that --write-config would write."""
        return PlainTextResponse(config_text(self.state, self.url or str(request.base_url)))

    async def limits(self, request: Request) -> Response:
        """Remaining budgets: SP-API bucket tokens per client, BASE/eBay windows."""
        state = self.state
        now = state.clock.now()
        return json_response(
            {
                "spapi": state.buckets.remaining(now),
                "base": {
                    name: {
                        "hour_remaining": a.hour.remaining(now),
                        "day_remaining": a.day.remaining(now),
                        "hour_resets_at": a.hour.resets_at(now),
                    }
                    for name, a in state.base.items()
                },
                "ebay": {
                    name: {
                        "calls_remaining": a.calls.remaining(now),
                        "feed_calls_remaining": a.feed_calls.remaining(now),
                    }
                    for name, a in state.ebay.items()
                },
            }
        )

    # --- Amazon -----------------------------------------------------------------------

    async def amazon(self, request: Request) -> Response:
        """``GET``: the true offers; ``PUT {"offers": [...]}``, ``{"out_of_stock": true}`` or
        ``{"unknown": true|false}`` (the offers operations answer ``InvalidInput`` for it)."""
        market = self.state.market
        asin = request.path_params["asin"]
        if request.method == "PUT":
            try:
                body = await _object(request)
                if "unknown" in body:
                    _set_unknown(self.state.unknown_asins, asin, body)
                else:
                    if body.get("out_of_stock"):
                        offers: list[Offer] = []
                    elif isinstance(body.get("offers"), list):
                        offers = [Offer.from_json(raw) for raw in body["offers"]]
                    else:
                        raise BadBody(
                            'send {"offers": [...]}, {"out_of_stock": true} or {"unknown": true}'
                        )
                    # The events due by now happened before this edit: apply them first
                    # (the middleware did so when the request arrived, a little earlier),
                    # or one would land on the hand-set offers after them.
                    now = self.state.advance_market()
                    market.set_offers(asin, offers, at=now)
            except (BadBody, ValueError, TypeError) as exc:
                return _bad(str(exc))
        product = market.get(asin)
        if product is None:
            return _bad(f"ASIN {asin} is not in the catalog", 404)
        offers = market.offers(product)
        return json_response(
            {
                "asin": asin,
                "unknown": asin in self.state.unknown_asins,
                "out_of_stock": not offers,
                "list_price": product.list_price,
                "offers": [offer.to_json() for offer in offers],
                "payload": payloads.offers_payload(
                    asin, offers, list_price=product.list_price, rank=product.rank
                ),
            }
        )

    async def market_step(self, request: Request) -> Response:
        """``{"fraction": F, "seed": N}``: move F of the products (seed optional)."""
        state = self.state
        try:
            body = await _object(request)
            fraction = _number(body, "fraction")
            seed = body.get("seed", state.options.seed * 1000 + state.steps + 1)
            if isinstance(seed, bool) or not isinstance(seed, int):
                raise BadBody("seed: an integer is required")
            now = state.advance_market()  # the events due first (see ``amazon``)
            counts = state.market.step(fraction, seed, state.clock.now_datetime().date(), at=now)
        except (BadBody, ValueError) as exc:
            return _bad(str(exc))
        state.steps += 1
        return json_response(counts)

    # --- exposure ---------------------------------------------------------------------

    async def exposure(self, request: Request) -> Response:
        """The exposure meter's figures up to now (the market events due were applied first
        by the app's middleware, so they are counted)."""
        meter = self.state.exposure
        if meter is None:
            return _bad("the exposure meter is not attached", 409)
        return json_response(meter.snapshot(self.state.clock.now()))

    async def exposure_reset(self, request: Request) -> Response:
        """Count from now on (e.g. once a benchmark's shop is set up); answers the zeroed
        figures."""
        meter = self.state.exposure
        if meter is None:
            return _bad("the exposure meter is not attached", 409)
        now = self.state.clock.now()
        meter.reset(now)
        return json_response(meter.snapshot(now))

    # --- the moving market (sim/events.py) --------------------------------------------

    async def market_summary(self, request: Request) -> Response:
        """The schedule's settings (rate, volatility, start, held, share of the rate the 10 %
        hottest products hold) and what it applied so far."""
        state = self.state
        now = state.clock.now()
        if state.events is None:
            return json_response(still_report(now, None, state.options.volatility, None))
        return json_response(state.events.summary(now))

    async def market_events(self, request: Request) -> Response:
        """``?since=T&limit=N``: the events applied at or after simulated time T (default:
        the schedule's start), oldest first, at most N (default 10,000; 0 for counts only).
        The request itself applied every event due by now first (``_MarketFirst``)."""
        state = self.state
        now = state.clock.now()
        try:
            since = _query_number(request, "since")
            if since is not None and since > now:
                raise BadBody(f"since: {since} lies in the future (the clock is at {now})")
            limit = _query_limit(request)
        except BadBody as exc:
            return _bad(str(exc))
        if state.events is None:
            return json_response(still_report(now, since, state.options.volatility, limit))
        start = state.events.start if since is None else since
        return json_response(state.events.report(now, start, limit))

    async def market_start(self, request: Request) -> Response:
        """Start a ``--market-hold`` market: its schedule begins now. 409 when the market
        is already moving (its start would not be where the caller thinks) or still."""
        state = self.state
        now = state.clock.now()
        if state.events is None:
            return _bad("the market does not move (--market-rate 0)", 409)
        try:
            state.events.start_at(now)
        except ValueError as exc:
            return _bad(str(exc), 409)
        log.info("market schedule started at %s", now)
        return json_response(state.events.report(now, now, None))

    # --- faults and time --------------------------------------------------------------

    async def faults(self, request: Request) -> Response:
        state = self.state
        if request.method in ("PUT", "PATCH"):
            try:
                body = await _object(request)
                if request.method == "PUT":
                    revoke = state.faults.replace(body)
                else:
                    revoke = state.faults.merge(body)
            except (BadBody, FaultError) as exc:
                return _bad(str(exc))
            if revoke:
                revoked = state.revoke_access_tokens()
                log.info("revoked %d access tokens", revoked)
        return json_response(state.faults.snapshot())

    async def clock(self, request: Request) -> Response:
        """``PUT {"frozen": true}`` stops simulated time (it then moves only by advance)."""
        clock = self.state.clock
        if request.method == "PUT":
            try:
                body = await _object(request)
                frozen = body.get("frozen")
                if not isinstance(frozen, bool):
                    raise BadBody("frozen: true or false is required")
            except BadBody as exc:
                return _bad(str(exc))
            clock.set_frozen(frozen)
        return json_response(clock.snapshot())

    async def clock_advance(self, request: Request) -> Response:
        """``{"seconds": S}``: jump simulated time ahead (token expiry, BASE windows)."""
        try:
            body = await _object(request)
            seconds = _number(body, "seconds")
            self.state.clock.advance(seconds)
        except (BadBody, ValueError) as exc:
            return _bad(str(exc))
        return json_response(self.state.clock.snapshot())

    # --- BASE -------------------------------------------------------------------------

    def _base(self, request: Request) -> BaseAccount | None:
        return self.state.base.get(request.path_params["account"])

    async def base_account(self, request: Request) -> Response:
        """``PATCH {"hourly_limit": N, "daily_limit": N}`` to make limits reachable in tests."""
        account = self._base(request)
        if account is None:
            return _bad("unknown BASE account", 404)
        if request.method == "PATCH":
            try:
                body = await _object(request)
                known = {"hourly_limit", "daily_limit", "suspended", "deny_authorization"}
                unknown = set(body) - known
                if unknown:
                    raise BadBody(f"unknown settings: {', '.join(sorted(unknown))}")
                if "hourly_limit" in body:
                    account.hour.limit = _int(body, "hourly_limit")
                if "daily_limit" in body:
                    account.day.limit = _int(body, "daily_limit")
                for flag in ("suspended", "deny_authorization"):
                    if flag in body:
                        if not isinstance(body[flag], bool):
                            raise BadBody(f"{flag}: true or false is required")
                        setattr(account, flag, body[flag])
            except BadBody as exc:
                return _bad(str(exc))
        return json_response({"name": account.name, **account.settings()})

    async def base_items(self, request: Request) -> Response:
        account = self._base(request)
        if account is None:
            return _bad("unknown BASE account", 404)
        return json_response({"items": [control_json(item) for item in account.items.values()]})

    async def base_item(self, request: Request) -> Response:
        """``DELETE`` removes the item (BASE then answers bad_item_id); ``PATCH`` hand-edits
        (and may set ``variations`` or ``uneditable``, see ``apply_hand_edit``)."""
        account = self._base(request)
        if account is None:
            return _bad("unknown BASE account", 404)
        item_id = request.path_params["item_id"]
        item = account.items.get(item_id)
        if item is None:
            return _bad(f"item {item_id} not found", 404)
        if request.method == "DELETE":
            account.delete(item_id, at=self.state.clock.now())
            return json_response({"deleted": item_id})
        if request.method == "PATCH":
            try:
                apply_hand_edit(account, item, await _object(request), self.state.clock.now())
            except (BadBody, ValueError) as exc:
                return _bad(str(exc))
        return json_response({"item": control_json(item)})

    # --- eBay -------------------------------------------------------------------------

    def _ebay(self, request: Request) -> EbayAccount | None:
        return self.state.ebay.get(request.path_params["account"])

    async def ebay_account(self, request: Request) -> Response:
        """``PATCH {"daily_call_limit", "daily_revision_limit", "daily_report_limit",
        "out_of_stock_control"}``."""
        account = self._ebay(request)
        if account is None:
            return _bad("unknown eBay account", 404)
        if request.method == "PATCH":
            try:
                body = await _object(request)
                known = {
                    "daily_call_limit",
                    "daily_revision_limit",
                    "daily_report_limit",
                    "out_of_stock_control",
                }
                unknown = set(body) - known
                if unknown:
                    raise BadBody(f"unknown settings: {', '.join(sorted(unknown))}")
                if "daily_call_limit" in body:
                    account.calls.limit = _int(body, "daily_call_limit")
                if "daily_revision_limit" in body:
                    account.revisions.limit = _int(body, "daily_revision_limit")
                if "daily_report_limit" in body:
                    account.report_limit = _int(body, "daily_report_limit")
                if "out_of_stock_control" in body:
                    flag = body["out_of_stock_control"]
                    if not isinstance(flag, bool):
                        raise BadBody("out_of_stock_control: true or false is required")
                    account.out_of_stock_control = flag
            except BadBody as exc:
                return _bad(str(exc))
        return json_response({"name": account.name, **account.settings()})

    async def ebay_offers(self, request: Request) -> Response:
        account = self._ebay(request)
        if account is None:
            return _bad("unknown eBay account", 404)
        now = self.state.clock.now()
        offers = []
        for offer in account.by_sku.values():
            data = offer.to_json()
            data["shipToLocationQuantity"] = offer.ship_quantity
            data["revisionsToday"] = account.revisions.count(offer.offer_id, now)
            offers.append(data)
        return json_response({"offers": offers})

    async def ebay_offer(self, request: Request) -> Response:
        """``PATCH {"price": "24.99", "quantity": 3, "status": "UNPUBLISHED"}``: a hand edit;
        ``DELETE``: the seller deleted the offer (eBay answers 404 / 25713 for it)."""
        account = self._ebay(request)
        if account is None:
            return _bad("unknown eBay account", 404)
        offer = account.by_offer_id.get(request.path_params["offer_id"])
        if offer is None:
            return _bad("offer not found", 404)
        if request.method == "DELETE":
            account.remove(offer, at=self.state.clock.now())
            return json_response({"deleted": offer.to_json()})
        if request.method == "PATCH":
            try:
                body = await _object(request)
                unknown = set(body) - {"price", "quantity", "status"}
                if unknown:
                    raise BadBody(f"unknown fields: {', '.join(sorted(unknown))}")
                if "price" in body:
                    try:
                        cents = price_to_cents(Decimal(str(body["price"])))
                    except InvalidOperation:
                        raise BadBody("price: a decimal string is required") from None
                    if cents <= 0:
                        raise BadBody("price: must be positive")
                    offer.price_cents = cents
                if "quantity" in body:
                    quantity = body["quantity"]
                    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
                        raise BadBody("quantity: a non-negative integer is required")
                    offer.quantity = offer.ship_quantity = quantity
                if "status" in body:
                    if body["status"] not in ("PUBLISHED", "UNPUBLISHED"):
                        raise BadBody("status: PUBLISHED or UNPUBLISHED")
                    offer.status = body["status"]
            except BadBody as exc:
                return _bad(str(exc))
            finally:  # a bad field after a good one leaves the good one applied
                account.touch(offer, self.state.clock.now())
        return json_response(offer.to_json())


DEFAULT_EVENT_LIMIT = 10_000


def _query_number(request: Request, key: str) -> float | None:
    raw = request.query_params.get(key)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadBody(
            f"{key}: a number (simulated epoch seconds) is required, not {raw!r}"
        ) from None
    if not math.isfinite(value):
        raise BadBody(f"{key}: a finite number is required, not {raw!r}")
    return value


def _query_limit(request: Request) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return DEFAULT_EVENT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        limit = -1
    if not 0 <= limit <= KEEP:
        raise BadBody(f"limit: an integer from 0 to {KEEP} is required, not {raw!r}")
    return limit


def _set_unknown(unknown: set[str], asin: str, body: dict[str, Any]) -> None:
    """``{"unknown": true}`` makes Amazon answer InvalidInput for the ASIN; false undoes it."""
    value = body["unknown"]
    if not isinstance(value, bool) or len(body) != 1:
        raise BadBody('unknown: send {"unknown": true} or {"unknown": false} alone')
    if value:
        unknown.add(asin)
    else:
        unknown.discard(asin)


def _credentials(account: BaseAccount | EbayAccount) -> dict[str, str]:
    return {
        "name": account.name,
        "client_id": account.client_id,
        "client_secret": account.client_secret,
        "refresh_token": account.refresh_token,
    }
