"""eBay's Sell Feed API, as far as ecsync uses it: the ``LMS_ACTIVE_INVENTORY_REPORT`` task.

``POST /sell/feed/v1/inventory_task`` creates a task (202, ``Location`` names it);
``GET /sell/feed/v1/inventory_task/{task_id}`` shows its ``status``, which moves
``CREATED`` -> ``IN_PROCESS`` -> ``COMPLETED`` over simulated time (a few seconds queued, then
15-60 s plus 2 s per 1,000 listings; drawn from the seed, so the same run gives the same
timeline and ``--speed`` compresses it); ``GET /sell/feed/v1/task/{task_id}/download_result_file``
answers a zip holding the XML ``ActiveInventoryReport``: one ``SKUDetails`` (``SKU``,
``ItemID``, ``Price currencyID``, ``Quantity``) per *active* (published) listing, as the
account stands at the first download.

Limits: 25 report tasks per rolling 24 h per seller (``PATCH /_sim/ebay/{account}
{"daily_report_limit": n}``), 10 tasks queued or running at once, 100,000 Feed calls a
day. The limit errors use eBay's ids for them in the order-report documentation (160025,
160024); the status codes (403) and the other 1600xx ids below are the simulator's own
choice, as eBay does not document them for inventory tasks. Every Feed call counts in
``/_sim/stats`` as ``feed_calls``, apart from Inventory API ``reads``.
"""

from __future__ import annotations

import io
import random
import zipfile
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ecsync.sim.channels import EbayAccount, FeedTask
from ecsync.sim.ebay import EbayApi, ebay_error
from ecsync.sim.web import BadBody, read_json

FEED = "/sell/feed/v1"
REPORT_FEED = "LMS_ACTIVE_INVENTORY_REPORT"
SCHEMA_VERSION = "1.0"
MAX_RUNNING_TASKS = 10
NAMESPACE = "urn:ebay:apis:eBLBaseComponents"
TASK_RETENTION_S = 2 * 86400.0
PARTIAL_SHARE = 0.1  # COMPLETED_WITH_ERROR: the share (at least one) the report leaves out


def _feed_error(error_id: int, message: str, **extra: Any) -> dict[str, Any]:
    return ebay_error(error_id, message, domain="API_FEED", **extra)


def _iso(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class EbayFeed:
    """The Feed API routes, sharing the Inventory API's gate (faults, token, call window)."""

    def __init__(self, api: EbayApi) -> None:
        self.api = api
        self.state = api.state

    def routes(self) -> list[Route]:
        return [
            Route(f"{FEED}/inventory_task", self.create_task, methods=["POST"]),
            Route(f"{FEED}/inventory_task/{{task_id}}", self.get_task, methods=["GET"]),
            Route(
                f"{FEED}/task/{{task_id}}/download_result_file",
                self.download,
                methods=["GET"],
            ),
        ]

    async def create_task(self, request: Request) -> Response:
        """``createInventoryTask``: 202 and ``Location``, or the error that says why not."""
        gate = await self.api._gate(request, feed=True)
        if isinstance(gate, Response):
            return gate
        account = gate
        if not request.headers.get("x-ebay-c-marketplace-id"):
            return self.api._fail(
                account,
                400,
                _feed_error(160001, "The X-EBAY-C-MARKETPLACE-ID header is missing or invalid."),
            )
        try:
            body = await read_json(request)
        except BadBody as exc:
            return self.api._fail(account, 400, _feed_error(160003, f"Invalid request: {exc}"))
        feed_type = body.get("feedType") if isinstance(body, dict) else None
        if feed_type != REPORT_FEED:
            return self.api._fail(
                account,
                400,
                _feed_error(
                    160017,
                    f"The 'feedType' {feed_type!r} is invalid. Supported: {REPORT_FEED}.",
                    parameters=[{"name": "feedType", "value": str(feed_type)}],
                ),
            )
        if body.get("schemaVersion") != SCHEMA_VERSION:
            return self.api._fail(
                account,
                400,
                _feed_error(160018, f"The 'schemaVersion' is invalid. Use {SCHEMA_VERSION}."),
            )
        now = self.state.clock.now()
        running = sum(1 for task in account.tasks.values() if now < task.finishes)
        if running >= MAX_RUNNING_TASKS:
            return self.api._fail(
                account,
                403,
                _feed_error(
                    160024,
                    "You have reached the maximum number of feed tasks that can be queued or "
                    "processed concurrently. Wait for current tasks to complete.",
                ),
            )
        if not account.take_report(now):
            return self.api._fail(
                account,
                403,
                _feed_error(
                    160025,
                    f"You have exceeded the maximum number of {REPORT_FEED} tasks "
                    f"({account.report_limit}) that can be created in a 24-hour period. "
                    "Wait until the present period ends before adding tasks.",
                ),
            )
        task = self._new_task(account, now)
        location = f"{str(request.base_url).rstrip('/')}{FEED}/inventory_task/{task.task_id}"
        return Response(b"", 202, headers={"Location": location})

    def _new_task(self, account: EbayAccount, now: float) -> FeedTask:
        # eBay keeps task files for a limited time; so does the simulator (soak runs).
        for old in [t for t in account.tasks.values() if t.created < now - TASK_RETENTION_S]:
            del account.tasks[old.task_id]
        account.tasks_created += 1
        number = account.tasks_created
        rng = random.Random(f"feed:{self.state.options.seed}:{account.name}:{number}")
        starts = now + rng.uniform(2.0, 10.0)
        finishes = starts + rng.uniform(15.0, 60.0) + 2.0 * len(account.by_sku) / 1000
        task = FeedTask(f"task-{account.index}-{number}", REPORT_FEED, now, starts, finishes)
        faults = self.state.faults
        if faults.hit("ebay", "task_failed"):
            task.outcome = "FAILED"
        elif faults.hit("ebay", "task_partial"):
            task.outcome = "COMPLETED_WITH_ERROR"
        account.tasks[task.task_id] = task
        return task

    def _task(self, account: EbayAccount, task_id: str) -> FeedTask | Response:
        task = account.tasks.get(task_id)
        if task is None:
            return self.api._fail(
                account,
                404,
                _feed_error(
                    160002,
                    f"The task ID {task_id} does not exist.",
                    parameters=[{"name": "task_id", "value": task_id}],
                ),
            )
        return task

    async def get_task(self, request: Request) -> Response:
        """``getInventoryTask``: the task and its status now."""
        gate = await self.api._gate(request, feed=True)
        if isinstance(gate, Response):
            return gate
        task = self._task(gate, request.path_params["task_id"])
        if isinstance(task, Response):
            return task
        now = self.state.clock.now()
        status = task.status(now)
        data: dict[str, Any] = {
            "taskId": task.task_id,
            "status": status,
            "feedType": task.feed_type,
            "creationDate": _iso(task.created),
            "schemaVersion": SCHEMA_VERSION,
            "detailHref": f"{str(request.base_url).rstrip('/')}{request.url.path}",
        }
        if status not in ("CREATED", "IN_PROCESS"):
            data["completionDate"] = _iso(task.finishes)
        return self.api._respond(data)

    async def download(self, request: Request) -> Response:
        """``getResultFile``: the zipped report of a finished task."""
        gate = await self.api._gate(request, feed=True)
        if isinstance(gate, Response):
            return gate
        account = gate
        task = self._task(account, request.path_params["task_id"])
        if isinstance(task, Response):
            return task
        status = task.status(self.state.clock.now())
        if status not in ("COMPLETED", "COMPLETED_WITH_ERROR"):
            return self.api._fail(
                account,
                409,
                _feed_error(
                    160027,
                    f"The task {task.task_id} has no result file: its status is {status}.",
                ),
            )
        if task.report is None:
            task.report = _report_zip(account, task, self.state.clock.now())
        content = task.report
        if self.state.faults.hit("ebay", "malformed"):
            content = content[: max(1, len(content) // 2)]
        return Response(
            content,
            200,
            media_type="application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{task.task_id}.zip"'},
        )


def _report_zip(account: EbayAccount, task: FeedTask, now: float) -> bytes:
    """The ``ActiveInventoryReport`` of the account's published offers, zipped."""
    partial = task.outcome == "COMPLETED_WITH_ERROR"
    rng = random.Random(f"report:{task.task_id}")
    ack = "PartialFailure" if partial else "Success"
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<BulkDataExchangeResponses xmlns="{NAMESPACE}">\n',
        "<ActiveInventoryReport>\n",
        f"<Timestamp>{_iso(now)}</Timestamp>\n<Ack>{ack}</Ack>\n<Version>1349</Version>\n",
    ]
    # Withdrawn offers are no longer active listings: eBay leaves them out.
    active = [offer for offer in account.by_sku.values() if offer.status == "PUBLISHED"]
    left_out: set[int] = set()
    if partial and active:
        left_out = set(rng.sample(range(len(active)), max(1, round(len(active) * PARTIAL_SHARE))))
    for index, offer in enumerate(active):
        if index in left_out:
            continue
        parts.append(
            f"<SKUDetails><SKU>{escape(offer.sku)}</SKU>"
            f"<Price currencyID={quoteattr('USD')}>{offer.price}</Price>"
            f"<Quantity>{offer.quantity}</Quantity>"
            f"<ItemID>{offer.listing_id}</ItemID></SKUDetails>\n"
        )
    parts.append("</ActiveInventoryReport>\n</BulkDataExchangeResponses>\n")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{task.task_id}-ActiveInventoryReport.xml", "".join(parts))
    return buffer.getvalue()
