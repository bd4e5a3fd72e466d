"""The BASE API (``/1/...``): OAuth 2, item listing, reading and editing.

BASE answers every error with HTTP 400 and ``{"error", "error_description"}`` in Japanese;
clients must tell a bad token (``invalid_request``) from a deleted item (``bad_item_id``)
from a spent quota (``hour_api_limit`` / ``day_api_limit``) by the code alone. Each API call
(not the token endpoint) counts against the account's hourly window, which resets at
minute :00 of simulated time, and its daily window, which resets at midnight JST.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ecsync.sim.channels import BaseAccount, BaseItem
from ecsync.sim.state import SimState
from ecsync.sim.web import BadBody, bearer, json_response, read_params

log = logging.getLogger(__name__)

ITEMS_LIMIT = 100
ORDERS = ("list_order", "created", "modified")
MESSAGES = {
    "invalid_request": "アクセストークンが無効です。",
    "invalid_client": "client_idまたはclient_secretが正しくありません。",
    "invalid_grant": "認可コードまたはリフレッシュトークンが無効です。",
    "unsupported_grant_type": "grant_typeが正しくありません。",
    "bad_item_id": "item_idが不正です。",
    "validation_error": "入力内容に誤りがあります。",
    "not_post_method": "POSTメソッドでリクエストしてください。",
    "hour_api_limit": "1時間あたりのAPIの利用上限を超えました。",
    "day_api_limit": "1日あたりのAPIの利用上限を超えました。",
}
_DIGITS = re.compile(r"^[0-9]+$")
_SERVER_ERROR = (
    b"<!DOCTYPE html><html><head><title>500 Internal Server Error</title></head>"
    b"<body><h1>500 Internal Server Error</h1></body></html>"
)


def base_error(code: str, detail: str = "") -> Response:
    description = MESSAGES[code] + (f"（{detail}）" if detail else "")
    return json_response({"error": code, "error_description": description}, 400)


class _Fail(Exception):
    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.detail = detail


class BaseApi:
    """BASE routes over one :class:`SimState`."""

    def __init__(self, state: SimState) -> None:
        self.state = state
        self._by_client = {account.client_id: account for account in state.base.values()}

    def routes(self) -> list[Route]:
        return [
            Route("/1/oauth/authorize", self.authorize, methods=["GET"]),
            Route("/1/oauth/token", self.token, methods=["GET", "POST"]),
            Route("/1/items", self.items, methods=["GET"]),
            Route("/1/items/detail/{item_id}", self.detail, methods=["GET"]),
            Route("/1/items/edit", self.edit, methods=["GET", "POST"]),
            Route("/1/items/edit_stock", self.edit_stock, methods=["GET", "POST"]),
        ]

    # --- OAuth ------------------------------------------------------------------------

    async def authorize(self, request: Request) -> Response:
        """``GET /1/oauth/authorize``: the seller "approves" at once; redirect with a code."""
        query = request.query_params
        account = self._by_client.get(query.get("client_id", ""))
        if account is None or query.get("response_type") != "code":
            return base_error("invalid_request", "client_idまたはresponse_typeが不正です")
        code = self.state.base_codes.issue(account.name, self.state.clock.now())
        redirect = query.get("redirect_uri") or account.redirect_uri
        params = {"code": code}
        if "state" in query:
            params["state"] = query["state"]
        separator = "&" if "?" in redirect else "?"
        return RedirectResponse(f"{redirect}{separator}{urlencode(params)}", status_code=302)

    async def token(self, request: Request) -> Response:
        """``POST /1/oauth/token``: authorization_code and refresh_token grants.

        A refresh returns a NEW refresh token and retires the one presented, so a client
        that does not store the new one locks itself out on its next refresh.
        """
        state = self.state
        state.token_requests["base"] += 1
        if request.method != "POST":
            return base_error("not_post_method")
        try:
            params = await read_params(request)
        except BadBody as exc:
            return base_error("invalid_request", str(exc))
        account = self._by_client.get(params.get("client_id", ""))
        if account is None or params.get("client_secret") != account.client_secret:
            return base_error("invalid_client")
        now = state.clock.now()
        grant = params.get("grant_type", "")
        if grant == "authorization_code":
            code = params.get("code", "")
            if state.base_codes.check(code, now) != account.name:
                return base_error("invalid_grant")
            state.base_codes.revoke(code)  # a code works once
        elif grant == "refresh_token":
            refresh = params.get("refresh_token", "")
            if state.base_refresh.check(refresh, now) != account.name:
                return base_error("invalid_grant")
            state.base_refresh.revoke(refresh)
        else:
            return base_error("unsupported_grant_type")
        access = state.base_tokens.issue(account.name, now)
        refresh = state.base_refresh.issue(account.name, now)
        return json_response(
            {
                "access_token": access,
                "token_type": "bearer",
                "expires_in": int(state.base_tokens.ttl),
                "refresh_token": refresh,
            }
        )

    # --- the gate ---------------------------------------------------------------------

    async def _gate(self, request: Request) -> BaseAccount | Response:
        state = self.state
        faults = state.faults
        delay = faults.latency("base")
        if delay:
            await asyncio.sleep(delay)
        if faults.hit("base", "hang"):
            await faults.hang()
            return Response(_SERVER_ERROR, 503, media_type="text/html")
        now = state.clock.now()
        name = state.base_tokens.check(bearer(request), now)
        if name is None:
            return base_error("invalid_request")
        account = state.base[name]
        counters = state.stats.base[name]
        if faults.hit("base", "throttle"):
            counters.limit_errors += 1
            return base_error("hour_api_limit")
        if account.day.remaining(now) <= 0:
            counters.limit_errors += 1
            return base_error("day_api_limit")
        if not account.hour.try_hit(now):
            counters.limit_errors += 1
            return base_error("hour_api_limit")
        account.day.try_hit(now)
        if faults.hit("base", "error500"):
            counters.errors += 1
            return Response(_SERVER_ERROR, 500, media_type="text/html")
        return account

    def _respond(self, account: BaseAccount, data: dict[str, Any]) -> Response:
        if self.state.faults.hit("base", "malformed"):
            return Response(b'{"item":{"item_id":', 200, media_type="application/json")
        return json_response(data)

    def _failed(self, account: BaseAccount, fail: _Fail) -> Response:
        self.state.stats.base[account.name].errors += 1
        return base_error(fail.code, fail.detail)

    # --- items ------------------------------------------------------------------------

    async def items(self, request: Request) -> Response:
        """``GET /1/items``: one page (limit <= 100) in the requested order."""
        gate = await self._gate(request)
        if isinstance(gate, Response):
            return gate
        account = gate
        query = request.query_params
        try:
            limit = _int_param(query.get("limit"), "limit", 20)
            offset = _int_param(query.get("offset"), "offset", 0)
            if not 1 <= limit <= ITEMS_LIMIT:
                raise _Fail("validation_error", f"limitは1〜{ITEMS_LIMIT}で指定してください")
            order = query.get("order", "list_order")
            sort = query.get("sort", "asc")
            if order not in ORDERS:
                raise _Fail("validation_error", "orderが不正です")
            if sort not in ("asc", "desc"):
                raise _Fail("validation_error", "sortが不正です")
        except _Fail as fail:
            return self._failed(account, fail)
        self.state.stats.base[account.name].reads += 1
        page = account.ordered(order, sort == "desc")[offset : offset + limit]
        return self._respond(account, {"items": [item.to_json() for item in page]})

    async def detail(self, request: Request) -> Response:
        """``GET /1/items/detail/{item_id}``."""
        gate = await self._gate(request)
        if isinstance(gate, Response):
            return gate
        account = gate
        try:
            item = _find(account, request.path_params["item_id"])
        except _Fail as fail:
            return self._failed(account, fail)
        self.state.stats.base[account.name].reads += 1
        return self._respond(account, {"item": item.to_json()})

    async def edit(self, request: Request) -> Response:
        """``POST /1/items/edit``: price, stock, visible, title, identifier, detail."""
        return await self._edit(request, stock_only=False)

    async def edit_stock(self, request: Request) -> Response:
        """``POST /1/items/edit_stock``: item_id and stock."""
        return await self._edit(request, stock_only=True)

    async def _edit(self, request: Request, *, stock_only: bool) -> Response:
        gate = await self._gate(request)
        if isinstance(gate, Response):
            return gate
        account = gate
        try:
            if request.method != "POST":
                raise _Fail("not_post_method")
            try:
                params = await read_params(request)
            except BadBody as exc:
                raise _Fail("validation_error", str(exc)) from None
            item = _find(account, params.get("item_id", ""))
            changes = _edit_changes(params, stock_only=stock_only)
        except _Fail as fail:
            return self._failed(account, fail)
        for name, value in changes.items():
            setattr(item, name, value)
        account.touch(item, self.state.clock.now())
        self.state.stats.base[account.name].writes += 1
        return self._respond(account, {"item": item.to_json()})


def _int_param(value: str | None, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    if not _DIGITS.match(value):
        raise _Fail("validation_error", f"{name}は0以上の整数で指定してください")
    return int(value)


def _find(account: BaseAccount, raw: str) -> BaseItem:
    if not raw:
        raise _Fail("bad_item_id", "item_idは必須です")
    if not _DIGITS.match(raw):
        raise _Fail("bad_item_id")
    item = account.items.get(int(raw))
    if item is None:
        raise _Fail("bad_item_id")
    return item


def _edit_changes(params: dict[str, str], *, stock_only: bool) -> dict[str, Any]:
    """Validate the fields of an edit, all or nothing, as BASE does."""
    changes: dict[str, Any] = {}
    if stock_only and "stock" not in params:
        raise _Fail("validation_error", "stockは必須です")
    if "stock" in params:
        if not _DIGITS.match(params["stock"]):
            raise _Fail("validation_error", "在庫数は0以上の整数で入力してください")
        changes["stock"] = int(params["stock"])
    if stock_only:
        return changes
    if "price" in params:
        price = params["price"]
        if not _DIGITS.match(price) or int(price) <= 0:
            raise _Fail("validation_error", "価格は1以上の整数で入力してください")
        changes["price"] = int(price)
    if "visible" in params:
        if params["visible"] not in ("0", "1"):
            raise _Fail("validation_error", "visibleは0または1で指定してください")
        changes["visible"] = int(params["visible"])
    if "title" in params:
        title = params["title"].strip()
        if not title or len(title) > 200:
            raise _Fail("validation_error", "商品名は1〜200文字で入力してください")
        changes["title"] = title
    if "identifier" in params:
        if len(params["identifier"]) > 100:
            raise _Fail("validation_error", "identifierは100文字以内で入力してください")
        changes["identifier"] = params["identifier"]
    if "detail" in params:
        changes["detail"] = params["detail"]
    return changes


def apply_hand_edit(
    account: BaseAccount, item: BaseItem, fields: dict[str, Any], now: float
) -> None:
    """The control API's ``PATCH``: a seller editing the item on BASE's own admin page."""
    params = {key: str(value) for key, value in fields.items() if key != "item_id"}
    unknown = set(params) - {"price", "stock", "visible", "title", "identifier", "detail"}
    if unknown:
        raise ValueError(f"unknown item fields: {', '.join(sorted(unknown))}")
    try:
        changes = _edit_changes(params, stock_only=False)
    except _Fail as fail:
        raise ValueError(f"{fail.code}: {fail.detail}") from None
    for name, value in changes.items():
        setattr(item, name, value)
    account.touch(item, now)
