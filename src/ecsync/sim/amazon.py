"""Login with Amazon and the SP-API operations ecsync uses, under their real paths.

Each SP-API request goes through the same gate Amazon's would: injected latency or hang,
the ``x-amz-access-token`` check (403 ``Unauthorized``), the per-(client, operation) token
bucket (429 ``QuotaExceeded``), an injected 500, then the operation itself. Answers carry
``x-amzn-RequestId`` always and ``x-amzn-RateLimit-Limit`` (the documented rate times
``--speed``) on 200/400/404, unless the ``spapi.no_rate_header`` fault (a share of answers)
leaves it off: Amazon sends it "best effort". Unknown query parameters are ignored and the
Host header is never looked at: python-amazon-sp-api sends both.

getItemOffersBatch follows Amazon as it answers since 2026-04-23: an item whose
``MarketplaceId``, ``ItemCondition`` or ``CustomerType`` sits inside ``queryParams`` (not at
the top level of the request) fails on its own with 400 ``InvalidInput`` "Requested
MarketplaceId is invalid, unsupported, or does not exist."; the same ASIN twice in one batch
fails the whole request with 400 ``InvalidInput`` "Duplicate requests submitted.  Cannot run
batch request." (both as sellers quote them in the SDKs' issue trackers).

The pricing operations, each with its own bucket (``SPAPI_OPERATIONS``: the models' usage
plans) and counted per operation in ``/_sim/stats`` (requests, throttled, ASINs answered):
getItemOffersBatch (20 ASINs, 0.1 rps) and getItemOffers (one ASIN, 0.5 rps) are the full
quotes, with shipping times; getCompetitivePricing (20 ASINs, 0.5 rps) answers the Buy Box
prices and offer counts, getCompetitiveSummary (2022-05-01, 20 items, 0.033 rps) the featured
offer, reference prices and lowest-priced offers. All show the same Buy Box, chosen by the
simulator's own rule (``payloads.buy_box_index``: the cheapest featured new offer available
now, *whatever its handling time*), so the box may be held by an offer a reseller's rules
(<= 72 h) would not buy from: only the full quotes tell a client what it may buy.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ecsync.sim import payloads, summary_payloads
from ecsync.sim.market import JAPAN_MARKETPLACE_ID, Product
from ecsync.sim.ratelimit import format_rate
from ecsync.sim.state import LWA_CLIENTS, LWA_REFRESH_TOKENS, SPAPI_OPERATIONS, SimState
from ecsync.sim.web import BadBody, dumps, http_date, json_response, read_json, read_params
from ecsync.sim.web import request_id as new_request_id

log = logging.getLogger(__name__)

BATCH_LIMIT = 20
ITEM_CONDITIONS = frozenset({"New", "Used", "Collectible", "Refurbished", "Club"})
CUSTOMER_TYPES = frozenset({"Consumer", "Business"})
_ITEM_URI = re.compile(r"^/products/pricing/v0/items/([^/?#]+)/offers$")
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}
_REQUEST_FIELDS = ("MarketplaceId", "ItemCondition", "CustomerType")
# The reason phrases of the 2022-05-01 model's examples ("Success", "Client Error").
_SUMMARY_REASONS = {200: "Success", 400: "Client Error", 500: "Server Error"}
SUMMARY_URI = "/products/pricing/2022-05-01/items/competitiveSummary"
MARKETPLACE_INVALID = "Requested MarketplaceId is invalid, unsupported, or does not exist."
DUPLICATE_REQUESTS = "Duplicate requests submitted.  Cannot run batch request."


class _Reject(Exception):
    """A request-level 4xx/5xx, raised inside an operation and answered by the gate."""

    def __init__(self, status: int, code: str, message: str, details: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = payloads.errors_body(code, message, details)


def _invalid(message: str) -> _Reject:
    return _Reject(400, "InvalidInput", message)


class SpApi:
    """The LWA token endpoint and the SP-API routes over one :class:`SimState`."""

    def __init__(self, state: SimState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        return [
            Route("/auth/o2/token", self.token, methods=["POST"]),
            Route(
                "/batches/products/pricing/v0/itemOffers",
                self.item_offers_batch,
                methods=["POST"],
            ),
            Route("/products/pricing/v0/items/{asin}/offers", self.item_offers, methods=["GET"]),
            Route(
                "/products/pricing/v0/competitivePrice",
                self.competitive_pricing,
                methods=["GET"],
            ),
            Route(
                "/batches/products/pricing/2022-05-01/items/competitiveSummary",
                self.competitive_summary,
                methods=["POST"],
            ),
            Route("/catalog/2022-04-01/items/{asin}", self.catalog_item, methods=["GET"]),
        ]

    # --- LWA --------------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        """``POST /auth/o2/token``: the refresh_token grant, as form or JSON."""
        self.state.token_requests["amazon"] += 1
        try:
            params = await read_params(request)
        except BadBody as exc:
            return _lwa_error(400, "invalid_request", str(exc))
        grant = params.get("grant_type", "")
        if not grant:
            return _lwa_error(
                400, "invalid_request", "The request is missing a required parameter : grant_type"
            )
        if grant != "refresh_token":
            return _lwa_error(400, "unsupported_grant_type", f"Unsupported grant type: {grant}")
        client_id = params.get("client_id", "")
        secret = params.get("client_secret", "")
        if not secret or LWA_CLIENTS.get(client_id) != secret:
            return _lwa_error(401, "invalid_client", "Client authentication failed")
        refresh = params.get("refresh_token", "")
        if LWA_REFRESH_TOKENS.get(refresh) != client_id:
            return _lwa_error(
                400, "invalid_grant", "The request has an invalid grant parameter : refresh_token"
            )
        token = self.state.amazon_tokens.issue(client_id, self.state.clock.now())
        return json_response(
            {
                "access_token": token,
                "refresh_token": refresh,
                "token_type": "bearer",
                "expires_in": int(self.state.amazon_tokens.ttl),
            }
        )

    # --- the gate ---------------------------------------------------------------------

    def _headers(self, operation: str | None) -> dict[str, str]:
        headers = {"x-amzn-RequestId": new_request_id()}
        if operation is not None and not self.state.faults.hit("spapi", "no_rate_header"):
            rate = SPAPI_OPERATIONS[operation].rate
            headers["x-amzn-RateLimit-Limit"] = format_rate(rate, self.state.clock.speed)
        return headers

    def _error(self, status: int, body: dict[str, Any], operation: str | None) -> Response:
        # The rate header rides on 200/400/404 only, as Amazon documents it.
        with_rate = operation if status in (200, 400, 404) else None
        return json_response(body, status, self._headers(with_rate))

    async def _gate(self, request: Request, operation: str) -> str | Response:
        """The checks before an operation runs; returns the caller's client id or a refusal."""
        state = self.state
        faults = state.faults
        state.stats.spapi_requests[operation] += 1
        delay = faults.latency("spapi")
        if delay:
            await asyncio.sleep(delay)
        if faults.hit("spapi", "hang"):
            await faults.hang()
            return self._error(
                503, payloads.errors_body("ServiceUnavailable", "Shutting down"), None
            )
        now = state.clock.now()
        client = state.amazon_tokens.check(request.headers.get("x-amz-access-token", ""), now)
        if client is None:
            body = payloads.errors_body(
                "Unauthorized", payloads.ACCESS_DENIED, payloads.TOKEN_INVALID
            )
            return self._error(403, body, None)
        if faults.hit("spapi", "throttle") or not state.buckets.try_take(client, operation, now):
            state.stats.throttled(operation)
            return self._error(
                429, payloads.errors_body("QuotaExceeded", payloads.QUOTA_EXCEEDED), None
            )
        if faults.hit("spapi", "error500"):
            body = payloads.errors_body(
                "InternalFailure", "We encountered an internal error. Please try again."
            )
            return self._error(500, body, None)
        return client

    def _ok(self, data: Any, operation: str) -> Response:
        headers = self._headers(operation)
        body = dumps(data)
        if self.state.faults.hit("spapi", "malformed"):
            body = _malformed(body, self.state.faults.choice(2))
        return Response(body, 200, headers, media_type="application/json")

    async def _run(
        self,
        request: Request,
        operation: str,
        handler: Callable[[Request], Awaitable[dict[str, Any]]],
    ) -> Response:
        gate = await self._gate(request, operation)
        if isinstance(gate, Response):
            return gate
        try:
            data = await handler(request)
        except _Reject as reject:
            return self._error(reject.status, reject.body, operation)
        return self._ok(data, operation)

    # --- operations -------------------------------------------------------------------

    def _payload(self, product: Product, condition: str) -> dict[str, Any]:
        market = self.state.market
        return payloads.offers_payload(
            product.asin,
            market.offers(product),
            list_price=product.list_price,
            rank=product.rank,
            item_condition=condition,
        )

    async def item_offers_batch(self, request: Request) -> Response:
        return await self._run(request, "getItemOffersBatch", self._item_offers_batch)

    async def _item_offers_batch(self, request: Request) -> dict[str, Any]:
        """``getItemOffersBatch``: up to 20 getItemOffers in one request, each with its status."""
        entries = await _batch_requests(request, "item offers requests is required")
        parsed = [_parse_batch_entry(entry, index) for index, entry in enumerate(entries)]
        asins = [asin for asin, _, _ in parsed]
        if len(set(asins)) < len(asins):
            raise _invalid(DUPLICATE_REQUESTS)
        state = self.state
        failing = (
            state.faults.choice(len(parsed)) if state.faults.hit("spapi", "item_error") else -1
        )
        date = http_date(state.clock.now())
        responses = []
        for index, (asin, condition, customer) in enumerate(parsed):
            # Building 20 payloads takes a while on a loaded machine; let other requests
            # reach the gate meanwhile, so their bucket check is stamped when they arrive
            # (as Amazon's many servers would), not after this whole answer is built.
            await asyncio.sleep(0)
            echo = {"MarketplaceId": JAPAN_MARKETPLACE_ID, "Asin": asin, "ItemCondition": condition}
            if customer:
                echo["CustomerType"] = customer
            product = known_product(state, asin)
            if _in_query_params(entries[index]):
                status, item_body = 400, payloads.errors_body("InvalidInput", MARKETPLACE_INVALID)
            elif index == failing:
                status, item_body = (
                    500,
                    payloads.errors_body(
                        "InternalFailure", "We encountered an internal error. Please try again."
                    ),
                )
            elif product is None:
                status, item_body = (
                    400,
                    payloads.errors_body(
                        "InvalidInput",
                        f"Invalid ASIN {asin} for marketplace {JAPAN_MARKETPLACE_ID}",
                    ),
                )
            else:
                status, item_body = 200, {"payload": self._payload(product, condition)}
                state.stats.served(asin)
                state.stats.answered("getItemOffersBatch")
            responses.append(
                {
                    "status": {"statusCode": status, "reasonPhrase": _REASONS[status]},
                    "headers": {"x-amzn-RequestId": new_request_id(), "Date": date},
                    "request": echo,
                    "body": item_body,
                }
            )
        return {"responses": responses}

    async def item_offers(self, request: Request) -> Response:
        return await self._run(request, "getItemOffers", self._item_offers)

    async def _item_offers(self, request: Request) -> dict[str, Any]:
        """``getItemOffers``: one ASIN's offers."""
        query = request.query_params
        _check_marketplace(query.get("MarketplaceId"), "MarketplaceId")
        condition = query.get("ItemCondition")
        if condition not in ITEM_CONDITIONS:
            raise _invalid(f"ItemCondition: must be one of {', '.join(sorted(ITEM_CONDITIONS))}")
        customer = query.get("CustomerType")
        if customer is not None and customer not in CUSTOMER_TYPES:
            raise _invalid("CustomerType: must be Consumer or Business")
        asin = request.path_params["asin"]
        product = known_product(self.state, asin)
        if product is None:
            raise _invalid(f"Invalid ASIN {asin} for marketplace {JAPAN_MARKETPLACE_ID}")
        self.state.stats.served(asin)
        self.state.stats.answered("getItemOffers")
        return {"payload": self._payload(product, condition)}

    async def competitive_pricing(self, request: Request) -> Response:
        return await self._run(request, "getCompetitivePricing", self._competitive_pricing)

    async def _competitive_pricing(self, request: Request) -> dict[str, Any]:
        """``getCompetitivePricing`` by ASIN (up to 20): the Buy Box prices and offer counts."""
        query = request.query_params
        _check_marketplace(query.get("MarketplaceId"), "MarketplaceId")
        item_type = query.get("ItemType")
        if item_type not in ("Asin", "Sku"):
            raise _invalid("ItemType: must be Asin or Sku")
        if item_type == "Sku":
            raise _invalid("ItemType Sku: the simulator holds no seller SKUs; use Asin")
        asins = [a.strip() for raw in query.getlist("Asins") for a in raw.split(",") if a.strip()]
        if not asins:
            raise _invalid("Asins: required when ItemType is Asin")
        if len(asins) > BATCH_LIMIT:
            raise _invalid(f"Asins: at most {BATCH_LIMIT} ASINs per request")
        state = self.state
        failing = state.faults.choice(len(asins)) if state.faults.hit("spapi", "item_error") else -1
        entries = []
        for index, asin in enumerate(asins):
            product = known_product(state, asin)
            if index == failing:
                entries.append(
                    {
                        "status": "ServerError",
                        "ASIN": asin,
                        "error": {"code": "InternalFailure", "message": "Internal error"},
                    }
                )
            elif product is None:
                entries.append(payloads.competitive_pricing_error(asin))
            else:
                offers = state.market.offers(product)
                entries.append(payloads.competitive_pricing(asin, offers, product.rank))
                state.stats.answered("getCompetitivePricing")
        return {"payload": entries}

    async def competitive_summary(self, request: Request) -> Response:
        return await self._run(request, "getCompetitiveSummary", self._competitive_summary)

    async def _competitive_summary(self, request: Request) -> dict[str, Any]:
        """``getCompetitiveSummary`` (2022-05-01): up to 20 items, each with its own status.

        A body the model forbids (not 1-20 requests, a field missing or of the wrong kind, a
        marketplace other than Japan) fails the whole request with 400 ``InvalidInput``; an
        ASIN Amazon does not know fails alone with 400 ``INVALID_ASIN`` (as the model's
        sandbox example answers it), and the ``item_error`` fault fails one item with 500."""
        entries = await _batch_requests(request, "competitive summary requests")
        parsed = [_parse_summary_entry(entry, index) for index, entry in enumerate(entries)]
        state = self.state
        failing = (
            state.faults.choice(len(parsed)) if state.faults.hit("spapi", "item_error") else -1
        )
        responses = []
        for index, (asin, included, inputs) in enumerate(parsed):
            await asyncio.sleep(0)  # as in the batch: let other requests reach the gate
            product = known_product(state, asin)
            if index == failing:
                status = 500
                item_body = summary_payloads.error_body(
                    asin, "InternalFailure", "We encountered an internal error. Please try again."
                )
            elif product is None:
                status = 400
                item_body = summary_payloads.error_body(
                    asin, "INVALID_ASIN", f"{asin} is not a valid ASIN"
                )
            else:
                status = 200
                item_body = summary_payloads.summary_body(
                    asin,
                    state.market.offers(product),
                    list_price=product.list_price,
                    included=included,
                    inputs=inputs,
                )
                state.stats.answered("getCompetitiveSummary")
            responses.append(
                {
                    "status": {"statusCode": status, "reasonPhrase": _SUMMARY_REASONS[status]},
                    "body": item_body,
                }
            )
        return {"responses": responses}

    async def catalog_item(self, request: Request) -> Response:
        return await self._run(request, "getCatalogItem", self._catalog_item)

    async def _catalog_item(self, request: Request) -> dict[str, Any]:
        """``getCatalogItem`` (2022-04-01): summaries by default, other datasets on request."""
        query = request.query_params
        marketplaces = [m for raw in query.getlist("marketplaceIds") for m in raw.split(",") if m]
        if not marketplaces:
            raise _invalid("marketplaceIds: required")
        for marketplace in marketplaces:
            _check_marketplace(marketplace, "marketplaceIds")
        included = frozenset(
            d.strip() for raw in query.getlist("includedData") for d in raw.split(",") if d.strip()
        ) or frozenset({"summaries"})
        unknown = included - payloads.CATALOG_DATASETS
        if unknown:
            raise _invalid(f"includedData: unknown datasets {', '.join(sorted(unknown))}")
        asin = request.path_params["asin"]
        product = self.state.market.get(asin)
        if product is None:
            raise _Reject(
                404,
                "NOT_FOUND",
                f"Requested item '{asin}' not found in marketplace(s): {JAPAN_MARKETPLACE_ID}.",
            )
        market = self.state.market
        self.state.stats.answered("getCatalogItem")
        return payloads.catalog_item(
            asin,
            title=market.title(product),
            brand=market.brand(product),
            list_price=product.list_price,
            rank=product.rank,
            included=included,
        )


def known_product(state: SimState, asin: str) -> Product | None:
    """The product the offers operations answer for, or None (Amazon's ``InvalidInput``): an
    ASIN outside the catalog, or one the control API made unknown (``{"unknown": true}``)."""
    if asin in state.unknown_asins:
        return None
    return state.market.get(asin)


async def _batch_requests(request: Request, what: str) -> list[Any]:
    """A batch body's ``requests``: 1 to 20 of them, or the request-level 400."""
    try:
        body = await read_json(request)
    except BadBody as exc:
        raise _invalid(str(exc)) from None
    entries = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(entries, list) or not entries:
        raise _invalid(f"requests: a non-empty list of {what}")
    if len(entries) > BATCH_LIMIT:
        raise _invalid(f"requests: at most {BATCH_LIMIT} requests per batch")
    return entries


def _check_marketplace(value: str | None, name: str) -> None:
    if not value:
        raise _invalid(f"{name}: required")
    if value != JAPAN_MARKETPLACE_ID:
        raise _invalid(f"{name}: {value!r} is not served; only Japan ({JAPAN_MARKETPLACE_ID}) is")


def _in_query_params(entry: dict[str, Any]) -> bool:
    """Does the entry carry a request field inside ``queryParams`` (refused since 2026-04)?"""
    query = entry.get("queryParams")
    return isinstance(query, dict) and any(name in query for name in _REQUEST_FIELDS)


def _parse_batch_entry(entry: Any, index: int) -> tuple[str, str, str]:
    """(ASIN, condition, customer type) of one batch entry; request-level 400 when unusable.

    An entry with its fields in ``queryParams`` passes here (with their values, for the echo)
    and fails on its own, as an item, as Amazon answers it."""
    where = f"requests[{index}]"
    if not isinstance(entry, dict):
        raise _invalid(f"{where}: must be an object")
    match = _ITEM_URI.match(str(entry.get("uri", "")))
    if match is None:
        raise _invalid(f"{where}.uri: must be /products/pricing/v0/items/{{Asin}}/offers")
    if str(entry.get("method", "")).upper() != "GET":
        raise _invalid(f"{where}.method: must be GET")
    if _in_query_params(entry):
        query = entry["queryParams"]
        condition = entry.get("ItemCondition", query.get("ItemCondition"))
        customer = entry.get("CustomerType", query.get("CustomerType"))
        return (
            match.group(1),
            condition if condition in ITEM_CONDITIONS else "New",
            customer if customer in CUSTOMER_TYPES else "",
        )
    _check_marketplace(entry.get("MarketplaceId"), f"{where}.MarketplaceId")
    condition = entry.get("ItemCondition")
    if condition not in ITEM_CONDITIONS:
        raise _invalid(
            f"{where}.ItemCondition: must be one of {', '.join(sorted(ITEM_CONDITIONS))}"
        )
    customer = entry.get("CustomerType") or ""
    if customer and customer not in CUSTOMER_TYPES:
        raise _invalid(f"{where}.CustomerType: must be Consumer or Business")
    return match.group(1), str(condition), str(customer)


def _parse_summary_entry(
    entry: Any, index: int
) -> tuple[str, frozenset[str], tuple[tuple[str, str], ...]]:
    """(ASIN, includedData, lowestPricedOffersInputs) of one competitiveSummary request;
    a request-level 400 naming the field when the model forbids it.

    ``lowestPricedOffersInputs`` defaults to New/Consumer (the model's stated defaults); it is
    checked even when ``lowestPricedOffers`` is not requested, and then has no effect."""
    where = f"requests[{index}]"
    if not isinstance(entry, dict):
        raise _invalid(f"{where}: must be an object")
    asin = entry.get("asin")
    if not isinstance(asin, str) or not asin:
        raise _invalid(f"{where}.asin: required, a string")
    marketplace = entry.get("marketplaceId")
    _check_marketplace(
        marketplace if isinstance(marketplace, str) else None, f"{where}.marketplaceId"
    )
    if entry.get("method") != "GET":
        raise _invalid(f"{where}.method: must be GET")
    if entry.get("uri") != SUMMARY_URI:
        raise _invalid(f"{where}.uri: must be {SUMMARY_URI}")
    included = entry.get("includedData")
    if not isinstance(included, list) or not included:
        raise _invalid(
            f"{where}.includedData: a non-empty list of "
            + ", ".join(sorted(summary_payloads.INCLUDED_DATA))
        )
    unknown = [d for d in included if d not in summary_payloads.INCLUDED_DATA]
    if unknown:
        raise _invalid(f"{where}.includedData: unknown {', '.join(map(str, unknown))}")
    raw_inputs = entry.get("lowestPricedOffersInputs")
    if raw_inputs is None:
        raw_inputs = [{"itemCondition": "New", "offerType": "Consumer"}]
    if not isinstance(raw_inputs, list) or len(raw_inputs) > 5:
        raise _invalid(f"{where}.lowestPricedOffersInputs: a list of at most 5 inputs")
    inputs = []
    for number, item in enumerate(raw_inputs):
        at = f"{where}.lowestPricedOffersInputs[{number}]"
        if not isinstance(item, dict):
            raise _invalid(f"{at}: must be an object")
        condition, offer_type = item.get("itemCondition"), item.get("offerType")
        if condition not in summary_payloads.CONDITIONS:
            raise _invalid(
                f"{at}.itemCondition: must be one of {', '.join(summary_payloads.CONDITIONS)}"
            )
        if offer_type not in summary_payloads.OFFER_TYPES:
            raise _invalid(f"{at}.offerType: must be Consumer")
        inputs.append((str(condition), str(offer_type)))
    return asin, frozenset(map(str, included)), tuple(inputs)


def _malformed(body: bytes, variant: int) -> bytes:
    """A 200 whose body a client cannot parse: cut in half, or an HTML error page."""
    if variant == 0 and len(body) > 2:
        return body[: len(body) // 2]
    return b"<html><body><h1>Service temporarily unavailable</h1></body></html>"


def _lwa_error(status: int, error: str, description: str) -> Response:
    return json_response({"error_description": description, "error": error}, status)
