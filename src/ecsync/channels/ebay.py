"""The eBay adapter (Sell Inventory API): 25 price/quantity updates per call.

A change is found by offer id; when the engine does not know it yet, it is looked up by SKU
once (``GET /offer?sku=``) and handed back in ``ChangeResult.offer_id`` to be stored. Bulk
answers are 200, or 207 with a status per entry: each entry is mapped back to its change,
transient entry errors (25001 system error, 25025 concurrent access) are re-sent a bounded
number of times, a withdrawn offer (25713) is GONE, and a listing that used up its 250
daily revisions is DEFERRED to the next day. Every call counts against the account's
``daily_call_limit`` in ``api_usage`` (eBay does not publish the Inventory API's default).

The account is read in bulk (``read``) through the Sell Feed API's active inventory report
(a few calls for any number of listings; parsing in ``ebay_report.py``), with single
``GET /offer?sku=`` reads only for listed SKUs the report lacks, or for all when no report
can be had. Only eBay's positive answer (404 with 25713/25702) makes a SKU gone; any other
refusal makes the read partial.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import IO, Any, TypeVar

import httpx

from ecsync.channels.account import AccountAdapter
from ecsync.channels.budget import DAY, Window
from ecsync.channels.ebay_report import (
    MAX_ZIP_BYTES,
    ParsedReport,
    ReportCorrupt,
    ReportRefused,
    parse_report_zip,
)
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
    until_stopped,
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

INVENTORY = "/sell/inventory/v1"
BULK_PATH = f"{INVENTORY}/bulk_update_price_quantity"
BULK_LIMIT = 25
INVENTORY_PAGE = 200
MARKETPLACE = "EBAY_US"
SCOPE = "https://api.ebay.com/oauth/api_scope/sell.inventory"
RETRY_IDS = frozenset({25001, 25025})  # system error, concurrent access: send again
GONE_IDS = frozenset({25713})  # offer not available
# What a 404 for a SKU must carry to prove it has no offer: 25713 offer not available,
# 25702 SKU not available. A bare 404 (a proxy, a wrong endpoint) proves nothing.
SKU_GONE_IDS = frozenset({25713, 25702})
FEED = "/sell/feed/v1"
REPORT_FEED = "LMS_ACTIVE_INVENTORY_REPORT"
REPORT_LIMIT_IDS = frozenset({160024, 160025})  # too many tasks running / in 24 h
READ_HALT_AFTER = 5  # SKUs failing even after retries (and most of them): eBay is down
T = TypeVar("T")
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

    # Report polling, in the account's seconds (divided by ``HttpOptions.time_scale`` to
    # wait): first look after 10 s, then twice as long each time up to 2 min, and give up
    # (reading offer by offer instead) after an hour.
    report_first_poll_s = 10.0
    report_poll_cap_s = 120.0
    report_timeout_s = 3600.0
    # Without a report, single reads may spend at most this share of the day's calls left.
    fallback_budget_share = 0.5

    async def read(self, expected_skus: Iterable[str] = ()) -> ChannelRead:
        """The whole account through one inventory report, plus single reads where needed.

        The Sell Feed API's ``LMS_ACTIVE_INVENTORY_REPORT`` gives every active listing's SKU,
        price and quantity in one file: create the task, poll it, download it (about 3 to 7
        calls for any number of listings). ``expected_skus`` are the SKUs ecsync lists on
        this account: those the report lacks (withdrawn offers are not active listings, an
        offer may be newer than the report, or deleted) are read one by one.

        Items from the report have ``item_id == ""``: the report names listings (ItemID)
        and SKUs, not Inventory API offers. Listings are matched by SKU, and an unknown offer
        id is looked up by SKU on the first push (``apply``) and returned in
        ``ChangeResult.offer_id``. Items read one by one carry their offer id.

        When the report cannot be had (eBay's 25 reports a day used, the task FAILED, no
        result within ``report_timeout_s``, an unusable file) the account is read as before
        the report existed: inventory item pages, then each SKU's offers, within
        ``fallback_budget_share`` of the calls left today. In every single
        read, 404 with eBay's 25713/25702 (or an empty offer list) puts the SKU in
        ``gone_skus``; any other error is a ``ReadProblem`` and the SKU is simply absent.
        """
        before = self._calls
        expected = {sku for sku in expected_skus if sku}
        try:
            report, problems = await self._report()
        except _NoReport as exc:
            log.warning(
                "eBay account %s: no inventory report (%s); reading offers SKU by SKU",
                self.account,
                exc,
            )
            return await self._read_each(expected, before)
        items = [
            ChannelItem(
                item_id="",
                sku=entry.sku,
                price=entry.price,
                visible=None,
                quantity=entry.quantity,
                status="PUBLISHED",
            )
            for entry in report.entries
        ]
        if report.without_sku:
            log.info(
                "eBay account %s: %d listings in the report have no SKU (not made through the "
                "Inventory API): ignored",
                self.account,
                report.without_sku,
            )
        listed = {entry.sku for entry in report.entries}
        missing = sorted((expected | set(report.bad)) - listed)
        missing = await self._within_budget(missing, [], problems, None)
        reads = await self._read_skus(missing, {})
        bad = {sku: why for sku, why in report.bad.items() if sku not in reads.settled}
        problems += [ReadProblem(f"SKU {sku}", why) for sku, why in sorted(bad.items())]
        self._check_halt(reads, items)
        return ChannelRead(
            items=items + reads.items,
            problems=problems + reads.problems,
            gone_skus=frozenset(reads.gone),
            calls=self._calls - before,
        )

    async def _report(self) -> tuple[ParsedReport, list[ReadProblem]]:
        """Create, await and download one inventory report; _NoReport when it cannot be had."""
        task_id = await self._create_report_task()
        status = await self._await_task(task_id)
        report = await self._download_report(task_id)
        problems = []
        if status != "COMPLETED" or report.ack not in ("", "Success", "Warning"):
            problems.append(
                ReadProblem(
                    f"report task {task_id}",
                    f"eBay finished it {status} (Ack {report.ack or '?'}): listings may be "
                    "missing from it",
                )
            )
        return report, problems

    async def _create_report_task(self) -> str:
        async def receive(response: httpx.Response) -> str:
            await response.aread()
            if response.status_code in (200, 201, 202):
                location = str(response.headers.get("location", ""))
                task_id = location.rstrip("/").rpartition("/")[2]
                if not task_id:
                    raise _NoReport("the task was created but eBay named no Location")
                return task_id
            _feed_answer(response)
            raise _NoReport(f"HTTP {response.status_code} creating the task")

        body = {"feedType": REPORT_FEED, "schemaVersion": "1.0"}
        try:
            return await self._feed("POST", f"{FEED}/inventory_task", receive, json=body)
        except EbayError as error:
            if _error_id_set(error.errors) & REPORT_LIMIT_IDS:
                raise _NoReport(f"eBay refused another report task: {error}") from None
            raise _NoReport(f"creating the report task: {error}") from None
        except Transient as exc:
            raise _NoReport(f"creating the report task: {exc}") from None

    async def _await_task(self, task_id: str) -> str:
        """Poll until the task ends; its final status (COMPLETED or COMPLETED_WITH_ERROR)."""
        path = f"{FEED}/inventory_task/{task_id}"
        waited = 0.0
        delay = self.report_first_poll_s
        failed = 0  # polls in a row that failed even after their retries
        while True:
            await pause(self._stop, delay / self._options.time_scale)
            waited += delay
            try:
                data = await self._feed("GET", path, _json_answer)
            except EbayError as error:
                raise _NoReport(f"report task {task_id}: {error}") from None
            except Transient as exc:
                failed += 1
                if failed >= 3 or waited >= self.report_timeout_s:
                    raise _NoReport(f"report task {task_id}: {exc}") from None
                continue  # the task runs on at eBay: look again at the next interval
            failed = 0
            status = str(data.get("status") or "")
            if status in ("COMPLETED", "COMPLETED_WITH_ERROR"):
                return status
            if status not in ("CREATED", "IN_PROCESS", "QUEUED"):
                raise _NoReport(f"report task {task_id} ended {status or 'without a status'}")
            if waited >= self.report_timeout_s:
                raise _NoReport(f"report task {task_id} still {status} after {waited:g} s")
            delay = min(delay * 2, self.report_poll_cap_s, self.report_timeout_s - waited)

    async def _download_report(self, task_id: str) -> ParsedReport:
        """Download and parse the result file; a corrupt file is downloaded again."""
        path = f"{FEED}/task/{task_id}/download_result_file"
        attempt = 0
        while True:
            try:
                spool = await self._feed(
                    "GET", path, _spool_zip, timeout=self._options.total_timeout_s * 5
                )
            except (EbayError, Transient, ReportRefused) as exc:
                raise _NoReport(f"report of task {task_id}: {exc}") from None
            try:
                return await asyncio.to_thread(parse_report_zip, spool)
            except ReportRefused as exc:
                log.error(
                    "eBay account %s: report of task %s refused: %s", self.account, task_id, exc
                )
                raise _NoReport(f"report of task {task_id} refused: {exc}") from None
            except ReportCorrupt as exc:
                if attempt >= self._options.max_retries:
                    raise _NoReport(f"report of task {task_id}: {exc}") from None
                log.warning(
                    "eBay account %s: report of task %s unreadable (%s); downloading again",
                    self.account,
                    task_id,
                    exc,
                )
                await pause(self._stop, backoff_s(self._options, attempt, self._rng))
                attempt += 1
            finally:
                spool.close()

    async def _read_each(
        self, expected: set[str], before: int, *, share: float | None = None
    ) -> ChannelRead:
        """The account without a report: inventory item pages, then SKUs' offers one by one,
        within ``share`` (default ``fallback_budget_share``) of the day's calls left, so
        that a day without reports still leaves calls for the pushes that matter more."""
        skus, titles, problems = await self._inventory_skus()
        listed, others = sorted(expected), sorted(set(skus) - expected)
        wanted = await self._within_budget(listed, others, problems, share)
        reads = await self._read_skus(wanted, titles)
        self._check_halt(reads, [])
        return ChannelRead(
            items=reads.items,
            problems=problems + reads.problems,
            gone_skus=frozenset(reads.gone),
            calls=self._calls - before,
        )

    async def _inventory_skus(self) -> tuple[list[str], dict[str, str], list[ReadProblem]]:
        """Every SKU the inventory item pages list (200 per call), with its title; a page
        that cannot be read ends the paging with a problem."""
        skus: list[str] = []
        titles: dict[str, str] = {}
        offset = 0
        while True:
            params = {"limit": INVENTORY_PAGE, "offset": offset}
            try:
                data = await self._call(
                    "GET", f"{INVENTORY}/inventory_item", params=params, expect="inventoryItems"
                )
            except (EbayError, Transient) as exc:
                return skus, titles, [ReadProblem(f"inventory page offset={offset}", str(exc))]
            page = data["inventoryItems"]
            for raw in page:
                sku = str(raw.get("sku") or "") if isinstance(raw, dict) else ""
                if sku:
                    skus.append(sku)
                    titles[sku] = _title(raw)
            total = data.get("total")
            offset += len(page)
            if len(page) < INVENTORY_PAGE or (isinstance(total, int) and offset >= total):
                return skus, titles, []

    async def _read_skus(self, skus: Sequence[str], titles: dict[str, str]) -> _SkuReads:
        """Each SKU's offers, one call each; never raises for one SKU's answer.

        A budget spent, or eBay failing for READ_HALT_AFTER SKUs (after their retries) and
        for more SKUs than it answered, stops the reading: the SKUs left are one problem,
        not thousands of doomed calls.
        """
        reads = _SkuReads()

        async def one(sku: str) -> None:
            if reads.halt is not None:
                reads.unread += 1
                return
            try:
                offers = await self._offers(sku)
            except EbayError as error:
                reads.problems.append(ReadProblem(f"SKU {sku}", str(error)))
                return
            except Transient as exc:
                reads.problems.append(ReadProblem(f"SKU {sku}", str(exc)))
                reads.failures += 1
                down = reads.failures >= READ_HALT_AFTER and reads.failures > len(reads.settled)
                if down and reads.halt is None:
                    reads.halt = ChannelUnavailable(f"eBay account {self.account!r}: {exc}")
                return
            except ChannelBudgetExhausted as exc:
                if reads.halt is None:
                    reads.halt = exc
                reads.unread += 1
                return
            reads.settled.add(sku)
            if not offers:
                reads.gone.add(sku)
                return
            for raw in offers:
                item = _offer_item(raw, titles.get(sku, ""))
                if item is None:
                    reads.settled.discard(sku)
                    reads.problems.append(
                        ReadProblem(f"SKU {sku}", "malformed offer in the answer")
                    )
                else:
                    reads.items.append(item)

        await bounded_map(one, skus, self._options.concurrency)
        if reads.halt is not None and reads.unread:
            reads.problems.append(ReadProblem(f"{reads.unread} SKUs", f"not read: {reads.halt}"))
        return reads

    async def _within_budget(
        self,
        listed: list[str],
        others: list[str],
        problems: list[ReadProblem],
        share: float | None,
    ) -> list[str]:
        """The SKUs to read one by one within ``share`` (default ``fallback_budget_share``)
        of the calls left today: listed SKUs first, then the others, each in random order so
        that days without a report cover different SKUs. What is left out is one problem."""
        share = self.fallback_budget_share if share is None else share
        spare = int(await self._spare_calls() * share)
        if len(listed) + len(others) <= spare:
            return listed + others
        self._rng.shuffle(listed)
        self._rng.shuffle(others)
        problems.append(
            ReadProblem(
                f"{len(listed) + len(others) - spare} SKUs",
                f"not read: one call each, and only {spare} calls "
                f"({share:.0%} of what is left of today's budget) were "
                "spent on single reads",
            )
        )
        return (listed + others)[:spare]

    async def _spare_calls(self) -> int:
        """Calls left in the tightest budget window now."""
        budgets = await self.budgets()
        return min((b.limit - b.used for b in budgets), default=0)

    def _check_halt(self, reads: _SkuReads, items: list[ChannelItem]) -> None:
        """A read that got nothing at all because eBay or the budget stopped it raises."""
        if reads.halt is not None and not (items or reads.items or reads.gone):
            raise reads.halt

    async def read_items(self) -> AsyncIterator[ChannelItem]:
        """Every offer of the account, keyed by offer id, read SKU by SKU (no report).

        The Inventory API has no list of offers: inventory items come 200 per call
        (``GET /inventory_item``), and each SKU's offer (price, offer id, status) costs one
        more call (``GET /offer?sku=``): about N/200 + N calls for N SKUs. Prefer ``read``.
        A SKU that cannot be read fails the whole read (ChannelRefused/ChannelUnavailable):
        this iterator cannot say "partial", and an error is never a sign the offer is gone.
        """
        result = await self._read_each(set(), self._calls, share=1.0)
        if result.problems:
            first = result.problems[0]
            raise ChannelRefused(
                f"eBay account {self.account!r}: {len(result.problems)} reads failed, the "
                f"first {first.where}: {first.error}"
            )
        for item in result.items:
            yield item

    async def _offers(self, sku: str) -> list[dict[str, Any]]:
        """The SKU's offers on our marketplace; [] when eBay says it has none (404 with
        25713/25702, or an empty list). Any other refusal raises EbayError."""
        try:
            data = await self._call(
                "GET", f"{INVENTORY}/offer", params={"sku": sku}, expect="offers"
            )
        except EbayError as error:
            if _sku_gone(error):
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
                if isinstance(verdict, _Entry):  # the SKU's offer was replaced: send to it
                    retry.append(
                        (verdict, f"offer {entry.offer_id} replaced by {verdict.offer_id}")
                    )
                elif isinstance(verdict, str):
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

    async def _judge(
        self, entry: _Entry, answer: dict[str, Any] | None
    ) -> ChangeResult | str | _Entry:
        """One entry's answer as its result, or (a string) why it should be sent again, or
        the entry to send instead (its SKU's offer was replaced)."""
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
        if ids & SKU_GONE_IDS:  # about this offer or SKU: confirmed by a lookup of the SKU
            return await self._offer_gone(entry, text)
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

    async def _offer_gone(self, entry: _Entry, text: str) -> ChangeResult | _Entry:
        """25713 says *this offer* is not available. The listing's SKU may have another offer
        now (replaced or relisted), so the SKU is looked up once: only no offer at all for it
        is evidence that the listing is gone; a new offer gets the change instead."""
        if not entry.change.sku:
            return entry.result(Outcome.GONE, text)
        try:
            offers = await self._offers(entry.change.sku)
        except (EbayError, Transient) as exc:
            return entry.result(Outcome.DEFERRED, f"{text}; looking up SKU's offer: {exc}")
        current = [str(offer.get("offerId") or "") for offer in offers]
        current = [offer_id for offer_id in current if offer_id]
        if not current or entry.offer_id in current:
            return entry.result(Outcome.GONE, text)
        log.info(
            "eBay account %s: SKU %s has a new offer %s (was %s)",
            self.account,
            entry.change.sku,
            current[0],
            entry.offer_id,
        )
        return replace(entry, offer_id=current[0])

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

    async def _feed(
        self,
        method: str,
        path: str,
        receive: Callable[[httpx.Response], Awaitable[T]],
        *,
        json: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> T:
        """One Sell Feed API call, streamed: ``receive`` reads the answer (and raises
        EbayError/Transient as ``_answer`` does). Budget, token refresh on 401 and bounded
        retries as in ``_call``; Feed calls draw from the same daily call budget (a few per
        read), which only makes the budget stricter. The 401 refresh is done here rather than
        by ``RefreshingAuth``, which reads every answer's body first: a report is streamed."""
        refreshed = False
        async for attempt in self._retrying(method, path):
            with attempt:
                while True:
                    token = await self._draw_call("daily call budget")
                    try:
                        return await self._feed_once(method, path, token, receive, json, timeout)
                    except EbayError as error:
                        if error.status != 401:
                            raise
                        if refreshed:
                            raise ChannelAuthError(
                                f"eBay account {self.account!r}: a freshly refreshed access "
                                f"token was refused ({error})"
                            ) from None
                        refreshed = True
                        log.info("eBay account %s: access token refused; refreshing", self.account)
                        await self._tokens.refreshed(token)
        raise AssertionError("unreachable: the retries return or raise")

    async def _feed_once(
        self,
        method: str,
        path: str,
        token: str,
        receive: Callable[[httpx.Response], Awaitable[T]],
        json: dict[str, Any] | None,
        timeout: float | None,
    ) -> T:
        request = self._http.build_request(
            method,
            path,
            json=json,
            headers={
                "Authorization": f"Bearer {token}",
                "X-EBAY-C-MARKETPLACE-ID": MARKETPLACE,
                "Accept": "application/json",
            },
        )

        async def exchange() -> T:
            response = await self._http.send(request, stream=True)
            try:
                return await receive(response)
            finally:
                await response.aclose()

        limit = timeout or self._options.total_timeout_s
        try:
            async with asyncio.timeout(limit):
                return await until_stopped(self._stop, exchange())
        except TimeoutError:
            raise Transient(f"no answer within {limit:g} s (total timeout)") from None
        except httpx.TimeoutException as exc:
            raise Transient(f"timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise Transient(f"{type(exc).__name__}: {exc}") from None

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


class _NoReport(Exception):
    """The inventory report cannot be had this time; the message says why."""


@dataclass
class _SkuReads:
    """What reading SKUs one by one found."""

    items: list[ChannelItem] = field(default_factory=list)
    problems: list[ReadProblem] = field(default_factory=list)
    gone: set[str] = field(default_factory=set)
    settled: set[str] = field(default_factory=set)  # answered: items or positively gone
    failures: int = 0
    unread: int = 0
    halt: ChannelUnavailable | ChannelBudgetExhausted | None = None


def _sku_gone(error: EbayError) -> bool:
    """eBay said positively that the SKU or offer does not exist (not any 404)."""
    ids = _error_id_set(error.errors)
    return bool(ids & GONE_IDS) or (error.status == 404 and bool(ids & SKU_GONE_IDS))


def _feed_answer(response: httpx.Response) -> dict[str, Any]:
    """``_answer`` for a Feed call, except that eBay's task limits are refusals even when
    they come as 429: retrying them would only spend calls until tomorrow."""
    if response.status_code == 429:
        body = _maybe_json(response)
        errors = body.get("errors") if isinstance(body, dict) else None
        if isinstance(errors, list) and _error_id_set(errors) & REPORT_LIMIT_IDS:
            raise EbayError(429, [e for e in errors if isinstance(e, dict)])
    return _answer(response, None)


async def _json_answer(response: httpx.Response) -> dict[str, Any]:
    await response.aread()
    return _feed_answer(response)


async def _spool_zip(response: httpx.Response) -> IO[bytes]:
    """The result file in a spooled temporary file (memory up to 8 MiB, then disk), at most
    MAX_ZIP_BYTES; any other answer raises as ``_answer`` does."""
    if response.status_code != 200:
        await response.aread()
        _feed_answer(response)
        raise Transient(f"HTTP {response.status_code}: no result file")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_ZIP_BYTES:
        raise ReportRefused(
            f"the result file has {int(declared):,} bytes (limit {MAX_ZIP_BYTES:,})"
        )
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115
    try:
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_ZIP_BYTES:
                raise ReportRefused(f"the result file exceeds {MAX_ZIP_BYTES:,} bytes")
            spool.write(chunk)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool


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
            price=finite(Decimal(str(value))) if value is not None else None,
            visible=None,
            quantity=whole(quantity) if quantity is not None else None,
            title=title,
            status=str(offer.get("status") or ""),
        )
    except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError):
        return None


def _failed(change: ChannelChange, reason: str) -> ChangeResult:
    return ChangeResult(change.change_id, Outcome.FAILED, error=reason)


def _deferred(change: ChannelChange, reason: str, until: datetime | None) -> ChangeResult:
    return ChangeResult(change.change_id, Outcome.DEFERRED, error=reason, retry_after=until)
