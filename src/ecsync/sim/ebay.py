"""eBay's OAuth token endpoint and the Sell Inventory API calls ecsync uses.

Errors come in eBay's shape, ``{"errors": [{errorId, domain, category, message,
longMessage, parameters}]}``. A bulk price/quantity update takes at most 25 entries and
answers 200 when all succeed, 207 with a status per entry otherwise. A listing may be
revised at most 250 times per (UTC, simulated) day, and each account has a daily call
quota (eBay does not publish the Inventory API's default, so it is a per-account setting,
``PATCH /_sim/ebay/{account}``). The Sell Feed API's report task lives in ``ebay_feed.py``
and shares this module's gate. The ``ebay.read_refused`` fault refuses single offer reads of
a fixed share of SKUs with 400/403 (see ``faults.py``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ecsync.sim.channels import EbayAccount, EbayOffer
from ecsync.sim.state import SimState
from ecsync.sim.web import BadBody, bearer, json_response, read_json, read_params

log = logging.getLogger(__name__)

BULK_LIMIT = 25
INVENTORY_PAGE_LIMIT = 200
_PRICE = re.compile(r"^[0-9]{1,7}(\.[0-9]{1,2})?$")


def ebay_error(
    error_id: int,
    message: str,
    *,
    category: str = "REQUEST",
    domain: str = "API_INVENTORY",
    long_message: str = "",
    parameters: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    return {
        "errorId": error_id,
        "domain": domain,
        "category": category,
        "message": message,
        "longMessage": long_message or message,
        "parameters": parameters or [],
    }


def _errors(status: int, *errors: dict[str, Any]) -> Response:
    return json_response({"errors": list(errors)}, status)


def system_error() -> dict[str, Any]:
    return ebay_error(
        25001,
        "A system error has occurred. Please try again later.",
        category="APPLICATION",
    )


def _offer_unavailable(offer_id: str) -> dict[str, Any]:
    return ebay_error(
        25713,
        "This Offer is not available.",
        parameters=[{"name": "offerId", "value": offer_id}],
    )


class _EntryError(Exception):
    def __init__(self, status: int, error: dict[str, Any]) -> None:
        super().__init__(error["message"])
        self.status = status
        self.error = error


class EbayApi:
    """eBay routes over one :class:`SimState`."""

    def __init__(self, state: SimState) -> None:
        self.state = state
        self._by_client = {account.client_id: account for account in state.ebay.values()}

    def routes(self) -> list[Route]:
        prefix = "/sell/inventory/v1"
        return [
            Route("/identity/v1/oauth2/token", self.token, methods=["POST"]),
            Route(f"{prefix}/offer", self.offers_by_sku, methods=["GET"]),
            Route(f"{prefix}/offer/{{offer_id}}", self.offer, methods=["GET"]),
            Route(f"{prefix}/offer/{{offer_id}}/publish", self.publish, methods=["POST"]),
            Route(f"{prefix}/offer/{{offer_id}}/withdraw", self.withdraw, methods=["POST"]),
            Route(f"{prefix}/inventory_item", self.inventory_items, methods=["GET"]),
            Route(f"{prefix}/bulk_update_price_quantity", self.bulk_update, methods=["POST"]),
        ]

    # --- OAuth ------------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        """Refresh grant with HTTP Basic client authentication; ~2 h access tokens."""
        state = self.state
        state.token_requests["ebay"] += 1
        account = self._basic_client(request.headers.get("authorization", ""))
        if account is None:
            return json_response(
                {"error": "invalid_client", "error_description": "client authentication failed"},
                401,
            )
        try:
            params = await read_params(request)
        except BadBody as exc:
            return json_response({"error": "invalid_request", "error_description": str(exc)}, 400)
        if params.get("grant_type") != "refresh_token":
            return json_response(
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant type in request is not supported by the "
                    "authorization server",
                },
                400,
            )
        if params.get("refresh_token") != account.refresh_token:
            return json_response(
                {
                    "error": "invalid_grant",
                    "error_description": "the provided authorization refresh token is invalid "
                    "or was issued to another client",
                },
                400,
            )
        token = state.ebay_tokens.issue(account.name, state.clock.now())
        return json_response(
            {
                "access_token": token,
                "expires_in": int(state.ebay_tokens.ttl),
                "token_type": "User Access Token",
            }
        )

    def _basic_client(self, header: str) -> EbayAccount | None:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        client_id, _, secret = decoded.partition(":")
        account = self._by_client.get(client_id)
        if account is None or secret != account.client_secret:
            return None
        return account

    # --- the gate ---------------------------------------------------------------------

    async def _gate(self, request: Request, *, feed: bool = False) -> EbayAccount | Response:
        """Faults, bearer token and the daily call window every API call passes.

        ``feed``: a Sell Feed API call. It counts in ``feed_calls`` (every authenticated
        call, refused or not) and against the Feed API's own daily window, not the
        Inventory API's.
        """
        state = self.state
        faults = state.faults
        delay = faults.latency("ebay")
        if delay:
            await asyncio.sleep(delay)
        if faults.hit("ebay", "hang"):
            await faults.hang()
            return _errors(503, system_error())
        now = state.clock.now()
        name = state.ebay_tokens.check(bearer(request), now)
        if name is None:
            return _errors(
                401,
                ebay_error(
                    1001,
                    "Invalid access token",
                    domain="OAuth",
                    long_message="Invalid access token. Check the value of the Authorization "
                    "HTTP request header.",
                ),
            )
        account = state.ebay[name]
        counters = state.stats.ebay[name]
        window = account.calls
        if feed:
            counters.feed_calls += 1
            window = account.feed_calls
        if faults.hit("ebay", "throttle") or not window.try_hit(now):
            counters.errors += 1
            return _errors(
                429,
                ebay_error(
                    2001,
                    "Too many requests. The request limit has been reached for the resource.",
                    domain="ACCESS",
                ),
            )
        if faults.hit("ebay", "error500"):
            counters.errors += 1
            return _errors(500, system_error())
        return account

    def _respond(self, data: dict[str, Any], status: int = 200) -> Response:
        if self.state.faults.hit("ebay", "malformed"):
            return Response(b'{"offers":[{"offerId":"', 200, media_type="application/json")
        return json_response(data, status)

    def _fail(self, account: EbayAccount, status: int, error: dict[str, Any]) -> Response:
        self.state.stats.ebay[account.name].errors += 1
        return _errors(status, error)

    # --- reads ------------------------------------------------------------------------

    async def offers_by_sku(self, request: Request) -> Response:
        """``GET /offer?sku=``: the offers of one SKU (eBay has no list-all)."""
        gate = await self._gate(request)
        if isinstance(gate, Response):
            return gate
        account = gate
        sku = request.query_params.get("sku", "")
        if not sku:
            return self._fail(
                account,
                400,
                ebay_error(25707, "This is an invalid value for a SKU. The sku is required."),
            )
        refused = self._refused(account, sku)
        if refused is not None:
            return refused
        offer = account.by_sku.get(sku)
        if offer is None:
            error = ebay_error(
                25713,
                "This Offer is not available.",
                parameters=[{"name": "sku", "value": sku}],
            )
            return self._fail(account, 404, error)
        self.state.stats.ebay[account.name].reads += 1
        href = f"{request.url.path}?sku={sku}"
        return self._respond(
            {"href": href, "limit": 100, "offers": [offer.to_json()], "size": 1, "total": 1}
        )

    async def offer(self, request: Request) -> Response:
        """``GET /offer/{offerId}``."""
        gate = await self._gate(request)
        if isinstance(gate, Response):
            return gate
        account = gate
        offer_id = request.path_params["offer_id"]
        offer = account.by_offer_id.get(offer_id)
        refused = self._refused(account, offer.sku if offer is not None else offer_id)
        if refused is not None:
            return refused
        if offer is None:
            return self._fail(account, 404, _offer_unavailable(offer_id))
        self.state.stats.ebay[account.name].reads += 1
        return self._respond(offer.to_json())

    def _refused(self, account: EbayAccount, sku: str) -> Response | None:
        """The ``read_refused`` fault: this SKU's single reads fail with an error that says
        nothing about the offer (403 access denied or 400), never 404 / 25713."""
        point = self.state.faults.refused("ebay", "read_refused", sku)
        if point is None:
            return None
        if int(point * 1_000_000) % 2:
            return self._fail(
                account,
                403,
                ebay_error(
                    1100,
                    "Access denied",
                    domain="ACCESS",
                    long_message="Insufficient permissions to fulfill the request.",
                ),
            )
        return self._fail(
            account,
            400,
            ebay_error(
                25709,
                "Invalid value for sku. The request could not be processed.",
                parameters=[{"name": "sku", "value": sku}],
            ),
        )

    async def inventory_items(self, request: Request) -> Response:
        """``GET /inventory_item?limit=&offset=``: pages of inventory items (limit <= 200)."""
        gate = await self._gate(request)
        if isinstance(gate, Response):
            return gate
        account = gate
        query = request.query_params
        try:
            limit = int(query.get("limit") or 25)
            offset = int(query.get("offset") or 0)
        except ValueError:
            limit, offset = -1, -1
        if not 1 <= limit <= INVENTORY_PAGE_LIMIT or offset < 0:
            return self._fail(
                account,
                400,
                ebay_error(
                    25709,
                    f"Invalid value for limit or offset. limit must be 1 to "
                    f"{INVENTORY_PAGE_LIMIT}, offset 0 or more.",
                ),
            )
        self.state.stats.ebay[account.name].reads += 1
        offers = list(account.by_sku.values())
        page = offers[offset : offset + limit]
        path = request.url.path
        data: dict[str, Any] = {
            "href": f"{path}?limit={limit}&offset={offset}",
            "limit": limit,
            "size": len(page),
            "total": len(offers),
            "inventoryItems": [offer.inventory_item() for offer in page],
        }
        if offset + limit < len(offers):
            data["next"] = f"{path}?limit={limit}&offset={offset + limit}"
        if offset > 0:
            data["prev"] = f"{path}?limit={limit}&offset={max(0, offset - limit)}"
        return self._respond(data)

    # --- writes -----------------------------------------------------------------------

    async def publish(self, request: Request) -> Response:
        return await self._set_status(request, "PUBLISHED")

    async def withdraw(self, request: Request) -> Response:
        return await self._set_status(request, "UNPUBLISHED")

    async def _set_status(self, request: Request, status: str) -> Response:
        gate = await self._gate(request)
        if isinstance(gate, Response):
            return gate
        account = gate
        offer_id = request.path_params["offer_id"]
        offer = account.by_offer_id.get(offer_id)
        if offer is None:
            return self._fail(account, 404, _offer_unavailable(offer_id))
        if status == "PUBLISHED" and offer.quantity <= 0:
            return self._fail(
                account,
                400,
                ebay_error(25004, "Invalid quantity. The available quantity must be above 0."),
            )
        offer.status = status
        account.touch(offer, self.state.clock.now())
        self.state.stats.ebay[account.name].writes += 1
        return self._respond({"listingId": offer.listing_id, "warnings": []})

    async def bulk_update(self, request: Request) -> Response:
        """``POST /bulk_update_price_quantity``: up to 25 entries, 200 or 207 Multi-Status."""
        gate = await self._gate(request)
        if isinstance(gate, Response):
            return gate
        account = gate
        try:
            body = await read_json(request)
        except BadBody as exc:
            return self._fail(account, 400, ebay_error(25709, f"Invalid request body: {exc}"))
        entries = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(entries, list) or not entries:
            return self._fail(
                account, 400, ebay_error(25709, "Invalid value for requests: a list is required.")
            )
        if len(entries) > BULK_LIMIT:
            return self._fail(
                account,
                400,
                ebay_error(
                    25709,
                    f"Invalid value for requests. At most {BULK_LIMIT} requests are allowed "
                    f"per call; {len(entries)} were sent.",
                ),
            )
        state = self.state
        failing = (
            state.faults.choice(len(entries)) if state.faults.hit("ebay", "item_error") else -1
        )
        counters = state.stats.ebay[account.name]
        responses: list[dict[str, Any]] = []
        for index, entry in enumerate(entries):
            results = self._bulk_entry(account, entry, forced_failure=index == failing)
            if all(result["statusCode"] == 200 for result in results):
                counters.writes += 1
            else:
                counters.errors += 1
            responses.extend(results)
        status = 200 if all(r["statusCode"] == 200 for r in responses) else 207
        return self._respond({"responses": responses}, status)

    def _bulk_entry(
        self, account: EbayAccount, entry: Any, *, forced_failure: bool
    ) -> list[dict[str, Any]]:
        """Validate one entry completely, then apply it: an entry never half-applies."""
        sku = str(entry.get("sku", "")) if isinstance(entry, dict) else ""
        targets = entry.get("offers") if isinstance(entry, dict) else None
        offer_ids = [
            str(o.get("offerId", "")) if isinstance(o, dict) else "" for o in (targets or [])
        ]

        def failed(status: int, error: dict[str, Any]) -> list[dict[str, Any]]:
            keys: list[str | None] = [*offer_ids] or [None]
            return [_result(status, sku, offer_id, [error]) for offer_id in keys]

        if forced_failure:
            return failed(500, system_error())
        if not isinstance(entry, dict) or not sku:
            return failed(400, ebay_error(25707, "This is an invalid value for a SKU."))
        item = account.by_sku.get(sku)
        if item is None:
            return failed(
                404,
                ebay_error(
                    25702,
                    f"SKU {sku} is not available in the system.",
                    parameters=[{"name": "sku", "value": sku}],
                ),
            )
        try:
            ship_quantity = _ship_quantity(account, entry)
            updates = [_offer_update(account, item, target) for target in targets or []]
        except _EntryError as error:
            return failed(error.status, error.error)
        if ship_quantity is None and not updates:
            return failed(400, ebay_error(25709, "Nothing to update in this request."))
        now = self.state.clock.now()
        for offer, _, _ in updates:
            if not account.revisions.try_hit(offer.offer_id, now):
                return failed(
                    400,
                    ebay_error(
                        25002,
                        "A user error has occurred. This listing has already been revised "
                        f"{account.revisions.limit} times today; try again tomorrow.",
                        parameters=[{"name": "offerId", "value": offer.offer_id}],
                    ),
                )
        if ship_quantity is not None:
            item.ship_quantity = ship_quantity
            account.touch(item, now)
        for offer, price_cents, quantity in updates:
            if price_cents is not None:
                offer.price_cents = price_cents
            if quantity is not None:
                offer.quantity = quantity
            account.touch(offer, now)
        if not updates:
            return [_result(200, sku, None, [])]
        return [_result(200, sku, offer.offer_id, []) for offer, _, _ in updates]


def _result(
    status: int, sku: str, offer_id: str | None, errors: list[dict[str, Any]]
) -> dict[str, Any]:
    result: dict[str, Any] = {"statusCode": status, "sku": sku}
    if offer_id is not None:
        result["offerId"] = offer_id
    result["errors"] = errors
    result["warnings"] = []
    return result


def _quantity(account: EbayAccount, value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        else:
            raise _EntryError(400, ebay_error(25004, f"Invalid quantity in {field}."))
    if value < 0:
        raise _EntryError(400, ebay_error(25004, f"Invalid quantity in {field}: below 0."))
    if value == 0 and not account.out_of_stock_control:
        raise _EntryError(
            400,
            ebay_error(
                25004,
                f"Invalid quantity in {field}. The quantity must be greater than 0 unless "
                "the out-of-stock control preference is on.",
            ),
        )
    return int(value)


def _ship_quantity(account: EbayAccount, entry: dict[str, Any]) -> int | None:
    availability = entry.get("shipToLocationAvailability")
    if availability is None:
        return None
    if not isinstance(availability, dict) or "quantity" not in availability:
        raise _EntryError(400, ebay_error(25004, "Invalid shipToLocationAvailability."))
    return _quantity(account, availability["quantity"], "shipToLocationAvailability.quantity")


def _offer_update(
    account: EbayAccount, item: EbayOffer, target: Any
) -> tuple[EbayOffer, int | None, int | None]:
    if not isinstance(target, dict):
        raise _EntryError(400, ebay_error(25709, "Each offers entry must be an object."))
    offer_id = str(target.get("offerId", ""))
    offer = account.by_offer_id.get(offer_id)
    if offer is None or offer.sku != item.sku:
        raise _EntryError(404, _offer_unavailable(offer_id))
    price_cents = None
    if "price" in target:
        price = target["price"]
        value = price.get("value") if isinstance(price, dict) else None
        currency = price.get("currency") if isinstance(price, dict) else None
        if not isinstance(value, str) or not _PRICE.match(value) or currency != "USD":
            raise _EntryError(
                400,
                ebay_error(
                    25003,
                    'Invalid price. The price must be a decimal string such as "24.99" in USD.',
                    parameters=[{"name": "price", "value": str(value)}],
                ),
            )
        whole, _, cents = value.partition(".")
        price_cents = int(whole) * 100 + int((cents + "00")[:2])
        if price_cents <= 0:
            raise _EntryError(400, ebay_error(25003, "Invalid price. It must be above 0."))
    quantity = None
    if "availableQuantity" in target:
        quantity = _quantity(account, target["availableQuantity"], "availableQuantity")
    return offer, price_cents, quantity
