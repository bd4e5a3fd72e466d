"""The BASE adapter: bulk reads 100 items per call, one ``/1/items/edit`` per changed item.

BASE answers every error with HTTP 400 and ``{"error", "error_description"}``; the code
alone tells a bad token (``invalid_request``: refresh and retry once) from a deleted item
(``bad_item_id``: GONE) from a spent quota (``hour_api_limit`` / ``day_api_limit``: stop
and defer the rest until the window resets). BASE has no batch edit, so price, visibility
and stock of one item travel together in one call, and calls are metered against the
5,000/hour and 100,000/day windows in ``api_usage``, shared by every process.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx

from ecsync.channels.account import AccountAdapter
from ecsync.channels.budget import DAY, HOUR, JST_OFFSET, Window
from ecsync.channels.errors import (
    ChannelAuthError,
    ChannelBudgetExhausted,
    ChannelRefused,
    ChannelUnavailable,
)
from ecsync.channels.http import (
    Transient,
    bounded_map,
    json_body,
    send,
)
from ecsync.channels.protocol import ChangeResult, ChannelChange, ChannelItem, Outcome
from ecsync.channels.tokens import Grant, RefreshRefused
from ecsync.config import AccountSettings
from ecsync.errors import Interrupted

log = logging.getLogger(__name__)

PAGE_SIZE = 100
BASE_HOURLY_LIMIT = 5_000
BASE_DAILY_LIMIT = 100_000
# Consecutive items whose edit failed transiently before the rest are deferred untried:
# when BASE is down, 5,000 items times the retries would only burn the hour's budget.
BREAKER = 3


class BaseError(Exception):
    """A BASE error answer (always HTTP 400): its code and Japanese description."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}" if description else code)
        self.code = code
        self.description = description


def base_windows(account: AccountSettings, time_scale: float = 1.0) -> list[Window]:
    """BASE's documented windows, lowered by the account's settings.

    ``daily_call_limit`` defaults to 5,000 for eBay's sake, so for BASE it only applies
    when the config sets it explicitly; otherwise BASE's own 100,000 holds.
    """
    daily = BASE_DAILY_LIMIT
    if "daily_call_limit" in account.model_fields_set:
        daily = min(daily, account.daily_call_limit)
    return [
        Window("hour", min(BASE_HOURLY_LIMIT, account.hourly_call_limit), HOUR / time_scale),
        Window("day", daily, DAY / time_scale, JST_OFFSET / time_scale),
    ]


class BaseAdapter(AccountAdapter):
    """One BASE shop. Create one per run (or per cycle) and close it with ``aclose``."""

    platform = "base"
    label = "BASE"

    def windows(self, account: AccountSettings, time_scale: float) -> list[Window]:
        return base_windows(account, time_scale)

    # --- reads ------------------------------------------------------------------------

    async def read_items(self) -> AsyncIterator[ChannelItem]:
        """Every item, 100 per call, oldest first.

        Ordered by creation time, ascending: new items land after the pages already read,
        and edits made meanwhile do not reshuffle the pages (ordering by ``modified`` would).
        An item deleted during the read can still shift one item past a page boundary;
        the next reconcile sees it. Raises ChannelBudgetExhausted / ChannelUnavailable
        rather than yield a partial account as if it were whole.
        """
        offset = 0
        seen: set[str] = set()
        while True:
            params = {"limit": PAGE_SIZE, "offset": offset, "order": "created", "sort": "asc"}
            try:
                data = await self._call("GET", "/1/items", params=params, expect="items")
            except BaseError as error:
                raise ChannelRefused(f"BASE account {self.account!r}: {error}") from None
            except Transient as exc:
                raise ChannelUnavailable(f"BASE account {self.account!r}: {exc}") from None
            page = data["items"]
            for raw in page:
                item = _item(raw)
                if item is None:
                    log.warning("BASE account %s: skipping a malformed item", self.account)
                elif item.item_id not in seen:
                    seen.add(item.item_id)
                    yield item
            if len(page) < PAGE_SIZE:
                return
            offset += PAGE_SIZE

    # --- writes -----------------------------------------------------------------------

    async def apply(self, changes: Sequence[ChannelChange]) -> list[ChangeResult]:
        """One edit call per change, a few in flight at once, in the given (priority) order.

        Once a budget is spent, the stop is requested, or BASE keeps failing, every change
        not yet sent comes back DEFERRED untried. Raises ChannelAuthError when the account's
        credentials are refused.
        """
        results: list[ChangeResult | None] = [None] * len(changes)
        pending = iter(range(len(changes)))
        halt: list[tuple[str, datetime | None]] = []
        auth: list[ChannelAuthError] = []
        streak = [0]  # consecutive transient failures

        async def worker() -> None:
            for index in pending:
                change = changes[index]
                if halt or auth:
                    reason, until = halt[0] if halt else ("not sent", None)
                    results[index] = _deferred(change, reason, until)
                    continue
                try:
                    result = await self._apply_one(change)
                except ChannelBudgetExhausted as exc:
                    halt.append((str(exc), exc.retry_after))
                    result = _deferred(change, str(exc), exc.retry_after)
                except Interrupted as exc:
                    halt.append((f"not sent: stopped ({exc})", None))
                    result = _deferred(change, f"not sent: stopped ({exc})", None)
                except ChannelAuthError as exc:
                    auth.append(exc)
                    result = _deferred(change, str(exc), None)
                results[index] = result
                if result.outcome is Outcome.DEFERRED and not halt and not auth:
                    streak[0] += 1
                    if streak[0] >= BREAKER:
                        halt.append((f"not sent: BASE keeps failing ({result.error})", None))
                else:
                    streak[0] = 0

        workers = min(self._options.concurrency, len(changes))
        await bounded_map(lambda _: worker(), range(workers), workers)
        if auth:
            raise auth[0]
        return [result for result in results if result is not None]

    async def _apply_one(self, change: ChannelChange) -> ChangeResult:
        form, problem = _edit_form(change)
        if problem:
            return ChangeResult(change.change_id, Outcome.FAILED, error=problem)
        if len(form) == 1:  # nothing but item_id: no call for a change that changes nothing
            return ChangeResult(change.change_id, Outcome.APPLIED)
        try:
            data = await self._call("POST", "/1/items/edit", data=form, expect="item")
        except BaseError as error:
            outcome = Outcome.GONE if error.code == "bad_item_id" else Outcome.FAILED
            return ChangeResult(change.change_id, outcome, error=str(error))
        except Transient as exc:
            return _deferred(change, str(exc), None)
        confirmed = _item(data["item"])
        return ChangeResult(change.change_id, Outcome.APPLIED, confirmed=confirmed)

    # --- the call ---------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        expect: str,
        params: dict[str, Any] | None = None,
        data: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """One BASE call: budget, token, bounded retries; the answer must hold ``expect``.

        Raises BaseError for an error answer that is the item's (or request's) own,
        Transient once retries are spent, ChannelBudgetExhausted, ChannelAuthError or
        Interrupted.
        """
        async for attempt in self._retrying(method, path):
            with attempt:
                await self._draw_call("call budget")
                response = await send(
                    self._http,
                    self._options,
                    method,
                    path,
                    stop=self._stop,
                    params=params,
                    data=data,
                    auth=self._auth,  # a refused token: refreshed, and the call sent once more
                )
                try:
                    return _answer(response, expect)
                except BaseError as error:
                    await self._on_limit(error)
                    raise
        raise AssertionError("unreachable: the retries return or raise")

    def _token_refused(self, response: httpx.Response) -> bool:
        """BASE says "bad token" with HTTP 400 ``invalid_request`` whose description is about
        the access token (the same code also refuses uneditable items); a gateway may say
        401/403."""
        try:
            code, description = _error_fields(response.json())
        except ValueError:
            return False
        if response.status_code in (401, 403):
            return code != "invalid_scope"
        return (
            response.status_code == 400
            and code == "invalid_request"
            and (not description or "アクセストークン" in description or "token" in description)
        )

    async def _on_limit(self, error: BaseError) -> None:
        """Account-wide error answers become exceptions that stop the account's work."""
        window = {"hour_api_limit": "hour", "day_api_limit": "day"}.get(error.code)
        if window is not None:
            until = await self._budget.exhaust(window)
            raise ChannelBudgetExhausted(
                f"BASE account {self.account!r}: {error} (until "
                f"{until.isoformat(timespec='seconds')})",
                until,
            )
        if error.code == "invalid_scope":
            raise ChannelAuthError(
                f"BASE account {self.account!r}: {error}; re-authorise it with the "
                "read_items and write_items scopes"
            )

    async def _refresh(self, refresh_token: str) -> Grant:
        """``POST /1/oauth/token`` (refresh_token grant). Never logs the form: it is secret."""
        settings = self._settings
        form = {
            "grant_type": "refresh_token",
            "client_id": settings.client_id,
            "client_secret": settings.client_secret.get_secret_value(),
            "refresh_token": refresh_token,
            "redirect_uri": settings.redirect_uri,
        }
        response = await send(
            self._http, self._options, "POST", "/1/oauth/token", stop=None, data=form
        )
        if response.status_code >= 500 or response.status_code == 429:
            raise Transient(f"token endpoint: HTTP {response.status_code}")
        body = json_body(response, quote=False)  # a token answer is never quoted in errors
        if response.status_code != 200:
            code, description = _error_fields(body)
            raise RefreshRefused(code or f"HTTP {response.status_code}", description)
        try:
            return Grant(
                access_token=str(body["access_token"]),
                expires_in=float(body.get("expires_in") or 3600),
                refresh_token=str(body["refresh_token"]) if body.get("refresh_token") else None,
                refresh_expires_in=30 * DAY,
            )
        except (KeyError, TypeError, ValueError):
            raise Transient("token endpoint: malformed answer") from None


def _answer(response: httpx.Response, expect: str) -> dict[str, Any]:
    status = response.status_code
    if status >= 500 or status == 429:
        raise Transient(f"HTTP {status}")
    body = json_body(response)
    if status == 200:
        if isinstance(body, dict) and expect in body:
            value = body[expect]
            if (expect == "items" and isinstance(value, list)) or isinstance(value, dict):
                return body
        raise Transient(f"HTTP 200: malformed answer (no {expect!r})")
    code, description = _error_fields(body)
    if not code:
        raise Transient(f"HTTP {status} without an error code")
    if status in (401, 403) and code != "invalid_scope":
        code = "invalid_request"  # BASE uses 400, but a gateway might not
    raise BaseError(code, description)


def _error_fields(body: Any) -> tuple[str, str]:
    if isinstance(body, dict):
        return str(body.get("error") or ""), str(body.get("error_description") or "")
    return "", ""


def _edit_form(change: ChannelChange) -> tuple[dict[str, str], str | None]:
    """The edit call's form, or why the change cannot be sent (refused before any call)."""
    if not change.item_id.isdigit():
        return {}, f"no valid BASE item_id ({change.item_id!r})"
    form = {"item_id": change.item_id}
    if change.price is not None:
        # BASE prices are whole yen; rounding here could cross the price floor unseen.
        # Values (e.g. a price of 0) are BASE's to judge: its validation_error says why.
        if not change.price.is_finite() or change.price != change.price.to_integral_value():
            return {}, f"BASE prices are whole yen, got {change.price}"
        form["price"] = str(int(change.price))
    if change.visible is not None:
        form["visible"] = "1" if change.visible else "0"
    if change.quantity is not None:
        form["stock"] = str(change.quantity)
    return form, None


def _item(raw: Any) -> ChannelItem | None:
    """A BASE item as the protocol's ChannelItem; None when the fields are unusable."""
    if not isinstance(raw, dict):
        return None
    try:
        price = raw.get("price")
        stock = raw.get("stock")
        visible = raw.get("visible")
        return ChannelItem(
            item_id=str(int(raw["item_id"])),
            sku=str(raw.get("identifier") or ""),
            price=Decimal(str(price)) if price is not None else None,
            visible=bool(int(visible)) if visible is not None else None,
            quantity=int(stock) if stock is not None else None,
            title=str(raw.get("title") or ""),
        )
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return None


def _deferred(change: ChannelChange, reason: str, until: datetime | None) -> ChangeResult:
    return ChangeResult(change.change_id, Outcome.DEFERRED, error=reason, retry_after=until)
