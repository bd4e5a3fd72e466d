"""The eBay adapter (Sell Inventory API): 25 price/quantity updates per call.

A change is found by offer id; when the engine does not know it yet, it is looked up by SKU
once (``GET /offer?sku=``) and handed back in ``ChangeResult.offer_id`` to be stored. Bulk
answers are 200, or 207 with a status per entry: each entry is mapped back to its change,
transient entry errors (25001 system error, 25025 concurrent access) are re-sent a bounded
number of times, a withdrawn offer (25713) is GONE, and a listing that used up its 250
daily revisions is DEFERRED to the next day. Every call counts against the account's
``daily_call_limit`` in ``api_usage`` (eBay does not publish the Inventory API's default).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import httpx

from ecsync.channels.account import AccountAdapter
from ecsync.channels.budget import DAY, Window
from ecsync.channels.errors import (
    ChannelAuthError,
    ChannelBudgetExhausted,
    ChannelRefused,
    ChannelUnavailable,
)
from ecsync.channels.http import (
    Transient,
    backoff_s,
    bounded_map,
    json_body,
    pause,
    send,
)
from ecsync.channels.protocol import ChangeResult, ChannelChange, ChannelItem, Outcome
from ecsync.channels.tokens import Grant, RefreshRefused
from ecsync.config import AccountSettings
from ecsync.errors import Interrupted

log = logging.getLogger(__name__)

INVENTORY = "/sell/inventory/v1"
BULK_PATH = f"{INVENTORY}/bulk_update_price_quantity"
BULK_LIMIT = 25
INVENTORY_PAGE = 200
MARKETPLACE = "EBAY_US"
SCOPE = "https://api.ebay.com/oauth/api_scope/sell.inventory"
RETRY_IDS = frozenset({25001, 25025})  # system error, concurrent access: send again
GONE_IDS = frozenset({25713})  # offer not available
INVALID_QUANTITY = 25004
INVALID_PRICE = 25003
CENT = Decimal("0.01")


class EbayError(Exception):
    """An eBay error answer for a whole request: HTTP status and the ``errors`` list."""

    def __init__(self, status: int, errors: list[dict[str, Any]]) -> None:
        self.status = status
        self.errors = errors
        super().__init__(f"HTTP {status}: {_describe(errors)}")


def ebay_windows(account: AccountSettings, time_scale: float = 1.0) -> list[Window]:
    """One daily window, UTC-aligned like the revision limit (eBay's reset time for the
    call quota is unconfirmed; a day that resets early only makes the budget stricter)."""
    return [Window("day", account.daily_call_limit, DAY / time_scale)]


@dataclass(frozen=True, slots=True)
class _Entry:
    """One change as a bulk-update entry (one SKU, one offer)."""

    index: int
    change: ChannelChange
    offer_id: str
    price: str | None  # eBay's decimal string, "24.99"
    quantity: int | None

    def payload(self) -> dict[str, Any]:
        offer: dict[str, Any] = {"offerId": self.offer_id}
        entry: dict[str, Any] = {"sku": self.change.sku, "offers": [offer]}
        if self.price is not None:
            offer["price"] = {"value": self.price, "currency": "USD"}
        if self.quantity is not None:
            offer["availableQuantity"] = self.quantity
            entry["shipToLocationAvailability"] = {"quantity": self.quantity}
        return entry

    def result(self, outcome: Outcome, error: str | None = None, **extra: Any) -> ChangeResult:
        return ChangeResult(
            self.change.change_id, outcome, error=error, offer_id=self.offer_id, **extra
        )


class EbayAdapter(AccountAdapter):
    """One eBay seller account. Create one per run (or per cycle); close it with ``aclose``."""

    platform = "ebay"
    label = "eBay"

    def windows(self, account: AccountSettings, time_scale: float) -> list[Window]:
        return ebay_windows(account, time_scale)

    # --- reads ------------------------------------------------------------------------

    async def read_items(self) -> AsyncIterator[ChannelItem]:
        """Every offer of the account, as ChannelItems keyed by offer id.

        The Inventory API has no list of offers: inventory items come 200 per call
        (``GET /inventory_item``), and each SKU's offer (price, offer id, status) costs one
        more call (``GET /offer?sku=``). So a full read costs about N/200 + N calls for N
        SKUs, against the daily call quota: 10,000 listings take about 10,050 calls.
        """
        offset = 0
        while True:
            params = {"limit": INVENTORY_PAGE, "offset": offset}
            try:
                data = await self._call(
                    "GET", f"{INVENTORY}/inventory_item", params=params, expect="inventoryItems"
                )
            except EbayError as error:
                raise ChannelRefused(f"eBay account {self.account!r}: {error}") from None
            except Transient as exc:
                raise ChannelUnavailable(f"eBay account {self.account!r}: {exc}") from None
            page = [raw for raw in data["inventoryItems"] if isinstance(raw, dict)]
            skus = [str(raw.get("sku") or "") for raw in page]
            titles = {sku: _title(raw) for sku, raw in zip(skus, page, strict=True)}
            offers = await bounded_map(self._read_offers, skus, self._options.concurrency)
            for sku, found in zip(skus, offers, strict=True):
                for raw_offer in found:
                    item = _offer_item(raw_offer, titles.get(sku, ""))
                    if item is not None:
                        yield item
            total = data.get("total")
            size = len(data["inventoryItems"])
            offset += size
            if size < INVENTORY_PAGE or (isinstance(total, int) and offset >= total):
                return

    async def _read_offers(self, sku: str) -> list[dict[str, Any]]:
        if not sku:
            return []
        try:
            return await self._offers(sku)
        except EbayError as error:
            log.warning(
                "eBay account %s: offers of SKU %s unreadable: %s", self.account, sku, error
            )
            return []
        except Transient as exc:
            raise ChannelUnavailable(f"eBay account {self.account!r}: {exc}") from None

    async def _offers(self, sku: str) -> list[dict[str, Any]]:
        """The SKU's offers on our marketplace; [] when eBay has none (404)."""
        try:
            data = await self._call(
                "GET", f"{INVENTORY}/offer", params={"sku": sku}, expect="offers"
            )
        except EbayError as error:
            if error.status == 404:
                return []
            raise
        return [
            offer
            for offer in data["offers"]
            if isinstance(offer, dict) and offer.get("marketplaceId", MARKETPLACE) == MARKETPLACE
        ]

    # --- writes -----------------------------------------------------------------------

    async def apply(self, changes: Sequence[ChannelChange]) -> list[ChangeResult]:
        """Look up missing offer ids, then send the changes 25 per call, in order.

        ``visible=False`` without a quantity is sent as quantity 0 (eBay has no visibility
        flag; quantity 0 is how a listing stops selling). ``visible=True`` alone changes
        nothing: the quantity to restore is the engine's to say.
        """
        results: list[ChangeResult | None] = [None] * len(changes)
        try:
            offer_ids = await self._resolve_offers(changes, results)
            entries = self._entries(changes, offer_ids, results)
            await self._send_all(entries, results)
        except Interrupted as exc:
            reason = f"not sent: stopped ({exc})"
            for index, change in enumerate(changes):
                if results[index] is None:
                    results[index] = _deferred(change, reason, None)
        return [
            result or _deferred(change, "not sent", None)
            for change, result in zip(changes, results, strict=True)
        ]

    async def _resolve_offers(
        self, changes: Sequence[ChannelChange], results: list[ChangeResult | None]
    ) -> list[str]:
        """Offer ids for every change; a failed lookup settles that change's result."""
        offer_ids = [change.item_id for change in changes]
        missing = [index for index, change in enumerate(changes) if not change.item_id]

        async def lookup(index: int) -> None:
            change = changes[index]
            if not change.sku:
                results[index] = _failed(change, "neither an offer id nor a SKU to find it by")
                return
            try:
                offers = await self._offers(change.sku)
            except ChannelBudgetExhausted as exc:
                results[index] = _deferred(change, str(exc), exc.retry_after)
                return
            except Transient as exc:
                results[index] = _deferred(change, f"offer lookup: {exc}", None)
                return
            except EbayError as error:
                results[index] = _failed(change, f"offer lookup: {error}")
                return
            if not offers:
                results[index] = ChangeResult(
                    change.change_id, Outcome.GONE, error=f"no eBay offer for SKU {change.sku}"
                )
                return
            offer_ids[index] = str(offers[0].get("offerId") or "")
            if len(offers) > 1:
                log.warning(
                    "eBay account %s: SKU %s has %d offers on %s; using %s",
                    self.account,
                    change.sku,
                    len(offers),
                    MARKETPLACE,
                    offer_ids[index],
                )

        await bounded_map(lookup, missing, self._options.concurrency)
        return offer_ids

    def _entries(
        self,
        changes: Sequence[ChannelChange],
        offer_ids: list[str],
        results: list[ChangeResult | None],
    ) -> list[_Entry]:
        """Bulk entries for the changes still open; what cannot be sent is settled here."""
        entries = []
        for index, change in enumerate(changes):
            if results[index] is not None:
                continue
            offer_id = offer_ids[index]
            quantity = change.quantity
            if quantity is None and change.visible is False:
                quantity = 0
            problem = None
            price = None
            if not offer_id:
                problem = "no offer id"
            elif not change.sku:
                problem = "no SKU (eBay updates address an offer through its SKU)"
            elif change.price is not None:
                price = _price_text(change.price)
                if price is None:
                    problem = f"not a price: {change.price}"
            if problem:
                results[index] = ChangeResult(
                    change.change_id, Outcome.FAILED, error=problem, offer_id=offer_id or None
                )
            elif price is None and quantity is None:  # nothing to change: no call
                results[index] = ChangeResult(change.change_id, Outcome.APPLIED, offer_id=offer_id)
            else:
                entries.append(_Entry(index, change, offer_id, price, quantity))
        return entries

    async def _send_all(self, entries: list[_Entry], results: list[ChangeResult | None]) -> None:
        halt: ChannelBudgetExhausted | None = None
        for chunk in _chunks(entries):
            if halt is not None:
                for entry in chunk:
                    results[entry.index] = entry.result(
                        Outcome.DEFERRED, str(halt), retry_after=halt.retry_after
                    )
                continue
            try:
                await self._send_chunk(chunk, results)
            except ChannelBudgetExhausted as exc:
                halt = exc
                for entry in chunk:
                    if results[entry.index] is None:
                        results[entry.index] = entry.result(
                            Outcome.DEFERRED, str(exc), retry_after=exc.retry_after
                        )

    async def _send_chunk(self, chunk: list[_Entry], results: list[ChangeResult | None]) -> None:
        """One bulk call for up to 25 entries, then re-sends of the entries worth retrying."""
        pending = chunk
        attempt = 0
        while True:
            body = {"requests": [entry.payload() for entry in pending]}
            try:
                data = await self._call("POST", BULK_PATH, json=body, expect="responses")
            except Transient as exc:
                for entry in pending:
                    results[entry.index] = entry.result(Outcome.DEFERRED, str(exc))
                return
            except EbayError as error:  # the whole request refused
                for entry in pending:
                    results[entry.index] = entry.result(Outcome.FAILED, str(error))
                return
            retry: list[tuple[_Entry, str]] = []
            for entry, answer in zip(pending, _match(pending, data["responses"]), strict=True):
                verdict = await self._judge(entry, answer)
                if isinstance(verdict, str):
                    retry.append((entry, verdict))
                else:
                    results[entry.index] = verdict
            if not retry:
                return
            if attempt >= self._options.max_retries:
                for entry, reason in retry:
                    results[entry.index] = entry.result(
                        Outcome.DEFERRED, f"{reason} (still failing after {attempt} retries)"
                    )
                return
            delay = backoff_s(self._options, attempt, self._rng)
            log.warning(
                "eBay account %s: %d entries failed transiently (%s); retry %d/%d in %.1f s",
                self.account,
                len(retry),
                retry[0][1],
                attempt + 1,
                self._options.max_retries,
                delay,
            )
            attempt += 1
            await pause(self._stop, delay)
            pending = [entry for entry, _ in retry]

    async def _judge(self, entry: _Entry, answer: dict[str, Any] | None) -> ChangeResult | str:
        """One entry's answer as its result, or (a string) why it should be sent again."""
        if answer is None:
            return "no answer for this entry"
        status = answer.get("statusCode")
        errors = [e for e in answer.get("errors") or [] if isinstance(e, dict)]
        if status == 200 and not errors:
            return await self._applied(entry)
        ids = {_error_id(error) for error in errors}
        text = _describe(errors) or f"HTTP {status}"
        if ids & RETRY_IDS or (isinstance(status, int) and status >= 500):
            return text
        if ids & GONE_IDS:
            return entry.result(Outcome.GONE, text)
        if _revision_limit(errors):
            day = Window("day", 1, DAY / self._options.time_scale)
            until = datetime.fromtimestamp(day.resets_at(self._clock.time()), UTC)
            return entry.result(
                Outcome.DEFERRED,
                f"eBay's daily revision limit for this listing is spent ({text})",
                retry_after=until,
            )
        if INVALID_QUANTITY in ids and entry.quantity == 0:
            return await self._zero_refused(entry, text)
        if INVALID_PRICE in ids:
            return entry.result(Outcome.FAILED, f"eBay refused the price {entry.price} USD: {text}")
        return entry.result(Outcome.FAILED, text)

    async def _applied(self, entry: _Entry) -> ChangeResult:
        confirmed = ChannelItem(
            item_id=entry.offer_id,
            sku=entry.change.sku,
            price=Decimal(entry.price) if entry.price is not None else None,
            visible=None,
            quantity=entry.quantity,
        )
        restock = entry.quantity is not None and entry.quantity > 0
        if restock and self._settings.zero_quantity_fallback == "unpublish":
            # This account withdraws offers instead of zeroing them: bring one back.
            problem = await self._set_published(entry, publish=True)
            if problem is not None:
                return problem
        return entry.result(Outcome.APPLIED, confirmed=confirmed)

    async def _zero_refused(self, entry: _Entry, text: str) -> ChangeResult:
        """Quantity 0 refused (25004): out-of-stock control is off for this seller."""
        if self._settings.zero_quantity_fallback != "unpublish":
            return entry.result(
                Outcome.FAILED,
                f"eBay refused quantity 0 ({text}). The seller's out-of-stock control "
                "preference is off, so eBay will not keep a listing at quantity 0: turn "
                "out-of-stock control on in the eBay account's selling preferences, or set "
                f'zero_quantity_fallback = "unpublish" for account {self.account!r} to '
                "withdraw the offer instead.",
            )
        problem = await self._set_published(entry, publish=False)
        if problem is not None:
            return problem
        confirmed = ChannelItem(
            item_id=entry.offer_id,
            sku=entry.change.sku,
            price=None,  # the entry was refused as a whole: the price was not changed
            visible=None,
            quantity=None,
            status="UNPUBLISHED",
        )
        return entry.result(
            Outcome.APPLIED,
            "quantity 0 refused (out-of-stock control off); offer withdrawn instead",
            confirmed=confirmed,
        )

    async def _set_published(self, entry: _Entry, *, publish: bool) -> ChangeResult | None:
        """Publish or withdraw the entry's offer; None on success, else the result to give."""
        verb = "publish" if publish else "withdraw"
        try:
            await self._call("POST", f"{INVENTORY}/offer/{entry.offer_id}/{verb}", expect=None)
        except Transient as exc:
            return entry.result(Outcome.DEFERRED, f"{verb} failed: {exc}")
        except EbayError as error:
            outcome = Outcome.GONE if _error_id_set(error.errors) & GONE_IDS else Outcome.FAILED
            done = "quantity and price were set, " if publish else ""
            return entry.result(outcome, f"{done}{verb} failed: {error}")
        return None

    # --- the call ---------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        expect: str | None,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One eBay call: budget, token, bounded retries; a 200/207 body holding ``expect``.

        Raises EbayError for a refused request, Transient once retries are spent,
        ChannelBudgetExhausted, ChannelAuthError or Interrupted.
        """
        async for attempt in self._retrying(method, path):
            with attempt:
                await self._draw_call("daily call budget")
                response = await send(
                    self._http,
                    self._options,
                    method,
                    path,
                    stop=self._stop,
                    params=params,
                    json=json,
                    headers={
                        "X-EBAY-C-MARKETPLACE-ID": MARKETPLACE,
                        "Accept": "application/json",
                        "Content-Language": "en-US",
                    },
                    auth=self._auth,  # a 401: token refreshed, the call sent once more
                )
                try:
                    return _answer(response, expect)
                except EbayError as error:
                    if error.status != 401:
                        raise
                    raise ChannelAuthError(
                        f"eBay account {self.account!r}: a freshly refreshed access token was "
                        f"refused ({error})"
                    ) from None
        raise AssertionError("unreachable: the retries return or raise")

    async def _refresh(self, refresh_token: str) -> Grant:
        """``POST /identity/v1/oauth2/token`` with HTTP Basic client authentication."""
        settings = self._settings
        pair = f"{settings.client_id}:{settings.client_secret.get_secret_value()}"
        headers = {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "scope": SCOPE}
        response = await send(
            self._http,
            self._options,
            "POST",
            "/identity/v1/oauth2/token",
            stop=None,
            data=form,
            headers=headers,
        )
        if response.status_code >= 500 or response.status_code == 429:
            raise Transient(f"token endpoint: HTTP {response.status_code}")
        body = json_body(response, quote=False)  # a token answer is never quoted in errors
        if response.status_code != 200:
            code = str(body.get("error") or "") if isinstance(body, dict) else ""
            description = str(body.get("error_description") or "") if isinstance(body, dict) else ""
            raise RefreshRefused(code or f"HTTP {response.status_code}", description)
        try:
            return Grant(
                access_token=str(body["access_token"]),
                expires_in=float(body.get("expires_in") or 7200),
                refresh_token=str(body["refresh_token"]) if body.get("refresh_token") else None,
                refresh_expires_in=(
                    float(body["refresh_token_expires_in"])
                    if body.get("refresh_token_expires_in")
                    else None
                ),
            )
        except (KeyError, TypeError, ValueError):
            raise Transient("token endpoint: malformed answer") from None


def _answer(response: httpx.Response, expect: str | None) -> dict[str, Any]:
    status = response.status_code
    if status >= 500 or status == 429:
        body = _maybe_json(response)
        errors = body.get("errors") if isinstance(body, dict) else None
        detail = _describe(errors) if isinstance(errors, list) else ""
        raise Transient(f"HTTP {status}" + (f": {detail}" if detail else ""))
    body = json_body(response) if response.content else {}
    if status in (200, 207):
        if isinstance(body, dict) and (expect is None or isinstance(body.get(expect), list)):
            return body
        raise Transient(f"HTTP {status}: malformed answer (no {expect!r} list)")
    errors = body.get("errors") if isinstance(body, dict) else None
    raise EbayError(status, [e for e in errors or [] if isinstance(e, dict)])


def _maybe_json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _match(entries: list[_Entry], answers: Any) -> list[dict[str, Any] | None]:
    """Each entry's answer, by (SKU, offer id), else by SKU, else by position."""
    answers = [a for a in answers if isinstance(a, dict)] if isinstance(answers, list) else []
    by_key = {(str(a.get("sku")), str(a.get("offerId"))): a for a in answers}
    by_sku = {str(a.get("sku")): a for a in answers}
    matched: list[dict[str, Any] | None] = []
    for position, entry in enumerate(entries):
        answer = by_key.get((entry.change.sku, entry.offer_id)) or by_sku.get(entry.change.sku)
        if answer is None and len(answers) == len(entries):
            answer = answers[position]
        matched.append(answer)
    return matched


def _chunks(entries: list[_Entry]) -> list[list[_Entry]]:
    """Runs of at most 25 entries; a SKU seen twice starts a new chunk, so the two updates
    land in order instead of racing inside one request."""
    chunks: list[list[_Entry]] = []
    current: list[_Entry] = []
    skus: set[str] = set()
    for entry in entries:
        if len(current) >= BULK_LIMIT or entry.change.sku in skus:
            chunks.append(current)
            current, skus = [], set()
        current.append(entry)
        skus.add(entry.change.sku)
    if current:
        chunks.append(current)
    return chunks


def _price_text(price: Decimal) -> str | None:
    """eBay's price value: a decimal string with two decimals ("24.99"); None if ``price`` is
    not a finite number. Whether the value is acceptable (above 0) is eBay's to say (25003)."""
    if not price.is_finite():
        return None
    try:
        return format(price.quantize(CENT, rounding=ROUND_HALF_UP), "f")
    except InvalidOperation:
        return None


def _error_id(error: dict[str, Any]) -> int | None:
    try:
        return int(error.get("errorId"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _error_id_set(errors: list[dict[str, Any]]) -> set[int | None]:
    return {_error_id(error) for error in errors}


def _describe(errors: Any) -> str:
    if not isinstance(errors, list):
        return ""
    parts = []
    for error in errors:
        if isinstance(error, dict):
            parts.append(f"{error.get('errorId')} {error.get('message') or ''}".strip())
    return "; ".join(parts)


def _revision_limit(errors: list[dict[str, Any]]) -> bool:
    """eBay's "revised too many times today" refusal (250 per listing per calendar day)."""
    for error in errors:
        text = f"{error.get('message') or ''} {error.get('longMessage') or ''}".lower()
        if "revis" in text and ("limit" in text or "times" in text or "250" in text):
            return True
    return False


def _title(raw: dict[str, Any]) -> str:
    product = raw.get("product")
    return str(product.get("title") or "") if isinstance(product, dict) else ""


def _offer_item(offer: dict[str, Any], title: str) -> ChannelItem | None:
    try:
        summary = offer.get("pricingSummary") or {}
        price = summary.get("price") or {}
        value = price.get("value")
        quantity = offer.get("availableQuantity")
        return ChannelItem(
            item_id=str(offer["offerId"]),
            sku=str(offer.get("sku") or ""),
            price=Decimal(str(value)) if value is not None else None,
            visible=None,
            quantity=int(quantity) if quantity is not None else None,
            title=title,
            status=str(offer.get("status") or ""),
        )
    except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError):
        return None


def _failed(change: ChannelChange, reason: str) -> ChangeResult:
    return ChangeResult(change.change_id, Outcome.FAILED, error=reason)


def _deferred(change: ChannelChange, reason: str, until: datetime | None) -> ChangeResult:
    return ChangeResult(change.change_id, Outcome.DEFERRED, error=reason, retry_after=until)
