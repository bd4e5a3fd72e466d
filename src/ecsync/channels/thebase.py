"""The BASE adapter: bulk reads 100 items per call, one ``/1/items/edit`` per changed item.

BASE answers every error with HTTP 400 and ``{"error", "error_description"}``. The code
tells a deleted item (``bad_item_id`` / ``no_item``: GONE) from a spent quota
(``hour_api_limit`` / ``day_api_limit``: stop and defer the rest until the window resets);
``invalid_request`` needs its description too: about the access token it means refresh and
retry once, otherwise (digital content, ClubT items) the item cannot be edited and the change
fails with BASE's reason. BASE has no batch edit, so price, visibility and stock of one item
travel together in one call, and calls are metered against the 5,000/hour and 100,000/day
windows in ``api_usage``, shared by every process.

Items with variations keep their stock in ``variations[]`` and BASE makes the item's
``stock`` their sum. ecsync's stock for such an item is the stock of the variation that
carries the ASIN (``variation_identifier`` equal to the item's ``identifier``, or the only
variation), written through ``variation_id[0]``/``variation_stock[0]``; item-level ``stock``
is never sent for it. When no variation carries the ASIN, ecsync reports the item's total
stock and refuses (FAILED, with the reason) any change that would have to set it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
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
from ecsync.channels.parsing import finite, whole
from ecsync.channels.protocol import (
    ChangeResult,
    ChannelChange,
    ChannelItem,
    ChannelRead,
    Outcome,
    ReadProblem,
)
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
# Items malformed in a bulk page are re-read one by one, at most this many per read (the rest
# are reported as problems): a garbled shop must not spend the hour's calls on re-reads.
MAX_REREADS = 10
# Answers that say this very item does not exist: positive evidence that it is gone.
GONE_CODES = frozenset({"bad_item_id", "no_item"})
# ``invalid_request`` descriptions that are about the access token (BASE: アクセストークン...).
TOKEN_WORDS = ("アクセストークン", "access token", "access_token")
REFRESH_HINT = (
    "BASE rotates the refresh token at every refresh and retires the old one, so a refresh "
    "token from an older copy of the database (a restored backup, a move to PostgreSQL) or "
    "a config-file token already used no longer works: re-authorise this account on BASE "
    "and put the new refresh token in its refresh_token in the config file"
)


class BaseError(Exception):
    """A BASE error answer (always HTTP 400): its code and Japanese description.

    ``about_token``: the answer refuses the access token (refresh and retry once), as
    opposed to an ``invalid_request`` about the item (digital content cannot be edited).
    """

    def __init__(self, code: str, description: str, *, about_token: bool | None = None) -> None:
        super().__init__(f"{code}: {description}" if description else code)
        self.code = code
        self.description = description
        if about_token is None:
            text = description.lower()
            about_token = code == "invalid_request" and (
                not text or any(word in text for word in TOKEN_WORDS)
            )
        self.about_token = about_token


@dataclass(frozen=True, slots=True)
class StockSlot:
    """Where ecsync writes an item's stock: the item (no variations), one variation, or
    nowhere (``problem`` says why)."""

    variation_id: str | None = None
    problem: str = ""


PLAIN = StockSlot()


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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Where each item's stock is written, learnt from this run's reads and answers.
        self._slots: dict[str, StockSlot] = {}  # items with variations
        self._plain: set[str] = set()  # items without

    def windows(self, account: AccountSettings, time_scale: float) -> list[Window]:
        return base_windows(account, time_scale)

    # --- reads ------------------------------------------------------------------------

    async def read(self, expected_skus: Iterable[str] = ()) -> ChannelRead:
        """Every item, 100 per call, oldest first, with what could not be read.

        Ordered by creation time, ascending: new items land after the pages already read,
        and edits made meanwhile do not reshuffle the pages (ordering by ``modified`` would).
        An item deleted during the read can still shift one item past a page boundary;
        the next reconcile sees it. An item malformed in its page is re-read alone: BASE's
        ``bad_item_id`` / ``no_item`` for it is positive evidence that it is gone, any other
        failure a ``ReadProblem``. A page that fails once items were read ends the read as
        partial; raises (ChannelBudgetExhausted, ChannelUnavailable, ChannelRefused,
        ChannelAuthError) when nothing could be read.
        """
        return await self._read(strict=False)

    async def read_items(self) -> AsyncIterator[ChannelItem]:
        """Every item; raises rather than yield a partial account as if it were whole."""
        result = await self._read(strict=True)
        for item in result.items:
            yield item

    async def _read(self, *, strict: bool) -> ChannelRead:
        before = self._calls
        items: list[ChannelItem] = []
        problems: list[ReadProblem] = []
        seen: set[str] = set()
        broken: list[tuple[str, int]] = []  # (item id or "", page offset) of malformed items
        offset = 0
        while True:
            params = {"limit": PAGE_SIZE, "offset": offset, "order": "created", "sort": "asc"}
            try:
                data = await self._call("GET", "/1/items", params=params, expect="items")
            except (BaseError, Transient, ChannelBudgetExhausted) as exc:
                error = self._read_error(exc)
                if strict or offset == 0:
                    raise error from None
                problems.append(ReadProblem(f"page offset={offset}", str(exc)))
                break
            page = data["items"]
            for raw in page:
                parsed = _parse(raw)
                if parsed is None:
                    broken.append((_raw_id(raw), offset))
                    continue
                item, slot = parsed
                if item.item_id not in seen:
                    seen.add(item.item_id)
                    items.append(item)
                    self._remember(item.item_id, slot)
            if len(page) < PAGE_SIZE:
                break
            offset += PAGE_SIZE
        gone = await self._reread(broken, items, seen, problems)
        unset = [item_id for item_id, slot in self._slots.items() if slot.problem]
        if unset:
            log.warning(
                "BASE account %s: %d items have variations but none carrying the ASIN as its "
                "product code: ecsync keeps their price and visibility, not their stock "
                "(first: item %s, %s)",
                self.account,
                len(unset),
                unset[0],
                self._slots[unset[0]].problem,
            )
        if problems:
            log.warning(
                "BASE account %s: partial read, %d problems (first: %s: %s)",
                self.account,
                len(problems),
                problems[0].where,
                problems[0].error,
            )
            if strict:
                raise ChannelUnavailable(
                    f"BASE account {self.account!r}: {problems[0].where}: {problems[0].error}"
                    + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
                )
        return ChannelRead(items, problems, frozenset(gone), calls=self._calls - before)

    def _read_error(self, exc: Exception) -> Exception:
        if isinstance(exc, BaseError):
            return ChannelRefused(f"BASE account {self.account!r}: {exc}")
        if isinstance(exc, Transient):
            return ChannelUnavailable(f"BASE account {self.account!r}: {exc}")
        return exc

    async def _reread(
        self,
        broken: list[tuple[str, int]],
        items: list[ChannelItem],
        seen: set[str],
        problems: list[ReadProblem],
    ) -> set[str]:
        """Re-read the items malformed in their page, one call each; returns the ids BASE
        says do not exist."""
        gone: set[str] = set()
        for index, (item_id, offset) in enumerate(broken):
            if not item_id:
                problems.append(
                    ReadProblem(f"page offset={offset}", "an item without a usable item_id")
                )
                continue
            where = f"item {item_id}"
            if index >= MAX_REREADS:
                problems.append(ReadProblem(where, "malformed in its page (not re-read)"))
                continue
            try:
                data = await self._call("GET", f"/1/items/detail/{item_id}", expect="item")
            except BaseError as error:
                if error.code in GONE_CODES:
                    gone.add(item_id)
                else:
                    problems.append(ReadProblem(where, f"malformed in its page; alone: {error}"))
                continue
            except (Transient, ChannelBudgetExhausted) as exc:
                problems.append(ReadProblem(where, f"malformed in its page; alone: {exc}"))
                continue
            parsed = _parse(data["item"])
            if parsed is None or parsed[0].item_id != item_id:
                problems.append(ReadProblem(where, "malformed in its page and alone"))
            elif item_id not in seen:
                seen.add(item_id)
                items.append(parsed[0])
                self._remember(item_id, parsed[1])
        return gone

    def _remember(self, item_id: str, slot: StockSlot) -> None:
        """Keep where each item's stock is written, for the edits of this run."""
        if slot == PLAIN:
            self._plain.add(item_id)
            self._slots.pop(item_id, None)
        else:
            self._slots[item_id] = slot
            self._plain.discard(item_id)

    async def _slot(self, item_id: str) -> StockSlot:
        """Where this item's stock goes: known from this run's reads, else read alone (one
        call), since sending item-level stock to an item with variations is never right."""
        if item_id in self._plain:
            return PLAIN
        slot = self._slots.get(item_id)
        if slot is not None:
            return slot
        data = await self._call("GET", f"/1/items/detail/{item_id}", expect="item")
        parsed = _parse(data["item"])
        if parsed is None:
            raise Transient(f"item {item_id}: malformed detail answer")
        self._remember(item_id, parsed[1])
        return parsed[1]

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
            if change.quantity is not None:
                slot = await self._slot(change.item_id)
                if slot.problem:
                    error = (
                        f"BASE item {change.item_id}: stock not set: {slot.problem}; set it "
                        "on BASE, or give the variation of this ASIN the ASIN as its "
                        "product code"
                    )
                    return ChangeResult(change.change_id, Outcome.FAILED, error=error)
                if slot.variation_id is not None:
                    del form["stock"]
                    form["variation_id[0]"] = slot.variation_id
                    form["variation_stock[0]"] = str(change.quantity)
            data = await self._call("POST", "/1/items/edit", data=form, expect="item")
        except BaseError as error:
            outcome = Outcome.GONE if error.code in GONE_CODES else Outcome.FAILED
            return ChangeResult(change.change_id, outcome, error=str(error))
        except Transient as exc:
            return _deferred(change, str(exc), None)
        parsed = _parse(data["item"])
        if parsed is None:
            return ChangeResult(change.change_id, Outcome.APPLIED)
        self._remember(parsed[0].item_id, parsed[1])
        return ChangeResult(change.change_id, Outcome.APPLIED, confirmed=parsed[0])

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
        return response.status_code == 400 and BaseError(code, description).about_token

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
            # unauthorized_client: unknown or suspended app, wrong secret (bad credentials);
            # invalid_request / access_denied: the refresh token or the shop's user.
            raise RefreshRefused(
                code or f"HTTP {response.status_code}",
                description,
                bad_client=code == "unauthorized_client",
                hint=REFRESH_HINT,
            )
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
        # BASE uses 400, but a gateway might not: a 401/403 refuses the token.
        raise BaseError("invalid_request", description, about_token=True)
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


def _raw_id(raw: Any) -> str:
    try:
        return str(int(raw["item_id"]))
    except (KeyError, TypeError, ValueError):
        return ""


def _parse(raw: Any) -> tuple[ChannelItem, StockSlot] | None:
    """A BASE item as the protocol's ChannelItem, and where its stock is written; None when
    the fields are unusable (a malformed item is never guessed at)."""
    if not isinstance(raw, dict):
        return None
    try:
        price = raw.get("price")
        visible = raw.get("visible")
        identifier = str(raw.get("identifier") or "")
        quantity, slot, sku = _stock(raw, identifier)
        return (
            ChannelItem(
                item_id=str(int(raw["item_id"])),
                sku=sku,
                price=finite(Decimal(str(price))) if price is not None else None,
                visible=bool(whole(visible)) if visible is not None else None,
                quantity=quantity,
                title=str(raw.get("title") or ""),
            ),
            slot,
        )
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return None


def _stock(raw: dict[str, Any], identifier: str) -> tuple[int | None, StockSlot, str]:
    """The item's stock as ecsync sees it, where it is written, and the item's code (the
    ASIN): a plain item's ``stock``; with variations, the stock of the variation whose
    ``variation_identifier`` is the item's identifier, or of the only variation."""
    stock = raw.get("stock")
    total = whole(stock) if stock is not None else None
    variations = raw.get("variations") or []
    if not isinstance(variations, list):
        raise TypeError("variations")
    if not variations:
        return total, PLAIN, identifier
    parsed = [
        (str(int(v["variation_id"])), whole(v["variation_stock"]), v.get("variation_identifier"))
        for v in variations
    ]
    if len(parsed) == 1:
        variation_id, variation_stock, code = parsed[0]
        return variation_stock, StockSlot(variation_id), identifier or str(code or "")
    coded = [v for v in parsed if identifier and str(v[2] or "") == identifier]
    if len(coded) == 1:
        return coded[0][1], StockSlot(coded[0][0]), identifier
    problem = (
        f"it has {len(parsed)} variations and "
        + ("several" if coded else "none")
        + f" with the product code (variation_identifier) {identifier or '(none)'!r}"
    )
    return total, StockSlot(problem=problem), identifier


def _deferred(change: ChannelChange, reason: str, until: datetime | None) -> ChangeResult:
    return ChangeResult(change.change_id, Outcome.DEFERRED, error=reason, retry_after=until)
