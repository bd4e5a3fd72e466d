"""The BASE API (``/1/...``): OAuth 2, item listing, reading and editing.

BASE answers every error with HTTP 400 and ``{"error", "error_description"}`` in Japanese;
clients must tell a bad token (``invalid_request``) from a deleted item (``bad_item_id``)
from a spent quota (``hour_api_limit`` / ``day_api_limit``) by the code alone. Each API call
(not the token endpoint) counts against the account's hourly window, which resets at
minute :00 of simulated time, and its daily window, which resets at midnight JST.

Items may have variations: their stock is then the variations' (``variation_stock``, edited
through ``variation_id[n]``/``variation_stock[n]``), and the item's ``stock`` is their sum.
Calls need the token's scope (``read_items`` / ``write_items``: else ``invalid_scope``),
and some items cannot be edited through the API at all (digital content, ClubT):
``invalid_request`` with BASE's description, the same code as a bad access token.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ecsync.sim.channels import UNEDITABLE, BaseAccount, BaseItem, BaseVariation
from ecsync.sim.state import SimState
from ecsync.sim.web import BadBody, bearer, json_response, read_params

log = logging.getLogger(__name__)

ITEMS_LIMIT = 100
ORDERS = ("list_order", "created", "modified")
# BASE's own descriptions (its API documents); an error's code alone is not always enough:
# ``invalid_request`` means a bad access token, a bad grant or an uneditable item.
MESSAGES = {
    "invalid_request": "アクセストークンが無効です。",
    "invalid_scope": "スコープが無効です。",
    "unauthorized_client": "クライアントが見つかりませんでした。",
    "access_denied": "ユーザーが存在しません。",
    "bad_item_id": "不正なitem_idです。",
    "bad_variation_id": "不正なvariation_idです。",
    "bad_params": "不正なパラメーターです。",
    "no_item_id": "item_idは必須です。",
    "no_item": "商品が見つかりませんでした。",
    "validation_error": "バリデーションエラーです。",
    "not_post_method": "POSTで送信してください。",
    "hour_api_limit": "1時間あたりのAPIの利用上限を超えました。",
    "day_api_limit": "1日あたりのAPIの利用上限を超えました。",
}
# The token endpoint's refusals, worded as BASE words them.
BAD_PARAMS = "不正なパラメーターです。"
BAD_GRANT_TYPE = "不正なgrant_typeです。"
NO_CLIENT = "client_idもしくはclient_secretがありません。"
SUSPENDED = "停止中のクライアントです。"
POST_ONLY = "POSTで送信してください。"
BAD_CODE = "不正な認可コードです。"
EXPIRED_CODE = "認可コードの有効期限が切れています。"
BAD_REFRESH = "不正なリフレッシュトークンです。"
EXPIRED_REFRESH = "リフレッシュトークンの有効期限が切れています。"
# Scopes a refresh token written into the config carries (the app was authorised for both).
CONFIG_SCOPES = frozenset({"read_users", "read_items", "write_items"})
# NOT documented by BASE (our assumption, see API_NOTES.md): an item-level ``stock`` sent
# for an item with variations is refused, since BASE keeps that stock as their sum.
VARIATION_STOCK = "バリエーションがある商品の在庫数はvariation_stockで指定してください。"
_DIGITS = re.compile(r"^[0-9]+$")
_VARIATION_FIELD = re.compile(
    r"^(variation_id|variation|variation_stock|variation_identifier)\[([0-9]+)\]$"
)
_SERVER_ERROR = (
    b"<!DOCTYPE html><html><head><title>500 Internal Server Error</title></head>"
    b"<body><h1>500 Internal Server Error</h1></body></html>"
)


def base_error(code: str, detail: str = "", *, description: str | None = None) -> Response:
    text = description if description is not None else MESSAGES[code]
    text += f"（{detail}）" if detail else ""
    return json_response({"error": code, "error_description": text}, 400)


class _Fail(Exception):
    def __init__(self, code: str, detail: str = "", *, description: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.detail = detail
        self.description = description


class BaseApi:
    """BASE routes over one :class:`SimState`."""

    def __init__(self, state: SimState) -> None:
        self.state = state
        self._by_client = {account.client_id: account for account in state.base.values()}
        # The scopes each code and token was granted (a token not listed: CONFIG_SCOPES).
        self._scopes: dict[str, frozenset[str]] = {}

    def routes(self) -> list[Route]:
        return [
            Route("/1/oauth/authorize", self.authorize, methods=["GET"]),
            Route("/1/oauth/token", self.token, methods=["GET", "POST"]),
            Route("/1/items", self.items, methods=["GET"]),
            Route("/1/items/detail", self.detail, methods=["GET"]),
            Route("/1/items/detail/", self.detail, methods=["GET"]),
            Route("/1/items/detail/{item_id}", self.detail, methods=["GET"]),
            Route("/1/items/edit", self.edit, methods=["GET", "POST"]),
            Route("/1/items/edit_stock", self.edit_stock, methods=["GET", "POST"]),
        ]

    def scopes(self, token: str) -> frozenset[str]:
        return self._scopes.get(token, CONFIG_SCOPES)

    # --- OAuth ------------------------------------------------------------------------

    async def authorize(self, request: Request) -> Response:
        """``GET /1/oauth/authorize``: the seller approves at once (or refuses, when the
        account's ``deny_authorization`` is set); redirect to the callback with a code."""
        query = request.query_params
        account = self._by_client.get(query.get("client_id", ""))
        if account is None or query.get("response_type") != "code":
            return base_error("invalid_request", "client_idまたはresponse_typeが不正です")
        redirect = query.get("redirect_uri", "")
        if not redirect:
            return base_error("invalid_request", "redirect_uriは必須です")
        if redirect != account.redirect_uri:
            return base_error(
                "invalid_request", "redirect_uriが登録されたコールバックURLと異なります"
            )
        params: dict[str, str] = {}
        if account.deny_authorization:
            params["error"] = "access_denied"
        else:
            code = self.state.base_codes.issue(account.name, self.state.clock.now())
            self._scopes[code] = frozenset(query.get("scope", "read_users").split()) | {
                "read_users"
            }
            params["code"] = code
        if "state" in query:
            params["state"] = query["state"]
        separator = "&" if "?" in redirect else "?"
        return RedirectResponse(f"{redirect}{separator}{urlencode(params)}", status_code=302)

    async def token(self, request: Request) -> Response:
        """``POST /1/oauth/token``: authorization_code and refresh_token grants.

        A refresh returns a NEW refresh token and retires the one presented, so a client
        that does not store the new one locks itself out on its next refresh. Refusals use
        BASE's codes: ``invalid_request`` for a bad grant, code or refresh token (and bad
        parameters), ``unauthorized_client`` for an unknown or suspended client,
        ``access_denied`` for a request that is not a POST.
        """
        state = self.state
        state.token_requests["base"] += 1
        if request.method != "POST":
            return base_error("access_denied", description=POST_ONLY)
        try:
            params = await read_params(request)
        except BadBody:
            return base_error("invalid_request", description=BAD_PARAMS)
        _basic_credentials(request, params)
        grant = params.get("grant_type", "")
        if grant not in ("authorization_code", "refresh_token"):
            return base_error("invalid_request", description=BAD_GRANT_TYPE)
        if not params.get("client_id") or not params.get("client_secret"):
            return base_error("invalid_request", description=NO_CLIENT)
        account = self._by_client.get(params["client_id"])
        if account is None or params["client_secret"] != account.client_secret:
            return base_error("unauthorized_client")
        if account.suspended:
            return base_error("unauthorized_client", description=SUSPENDED)
        if params.get("redirect_uri", "") != account.redirect_uri:
            return base_error("invalid_request", description=BAD_PARAMS)
        now = state.clock.now()
        if grant == "authorization_code":
            used, store, bad, expired = (
                params.get("code", ""),
                state.base_codes,
                BAD_CODE,
                EXPIRED_CODE,
            )
        else:
            used, store = params.get("refresh_token", ""), state.base_refresh
            bad, expired = BAD_REFRESH, EXPIRED_REFRESH
        if store.expired(used, now):
            store.revoke(used)
            return base_error("invalid_request", description=expired)
        if store.check(used, now) != account.name:
            return base_error("invalid_request", description=bad)
        store.revoke(used)  # a code works once; a refresh token is rotated
        scopes = self._scopes.pop(used, CONFIG_SCOPES)
        access = state.base_tokens.issue(account.name, now)
        refresh = state.base_refresh.issue(account.name, now)
        self._scopes[access] = self._scopes[refresh] = scopes
        return json_response(
            {
                "access_token": access,
                "token_type": "bearer",
                "expires_in": int(state.base_tokens.ttl),
                "refresh_token": refresh,
            }
        )

    # --- the gate ---------------------------------------------------------------------

    async def _gate(self, request: Request, scope: str) -> BaseAccount | Response:
        state = self.state
        faults = state.faults
        delay = faults.latency("base")
        if delay:
            await asyncio.sleep(delay)
        if faults.hit("base", "hang"):
            await faults.hang()
            return Response(_SERVER_ERROR, 503, media_type="text/html")
        now = state.clock.now()
        token = bearer(request)
        name = state.base_tokens.check(token, now)
        if name is None:
            return base_error("invalid_request")
        if scope not in self.scopes(token):
            return base_error("invalid_scope")
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
        return base_error(fail.code, fail.detail, description=fail.description)

    def _unreadable(self, account: BaseAccount, item: BaseItem) -> bool:
        """The ``item_malformed`` fault: this item cannot be served (the same on every read)."""
        return self.state.faults.item_hit(
            "base", "item_malformed", f"{account.name}:{item.item_id}"
        )

    # --- items ------------------------------------------------------------------------

    async def items(self, request: Request) -> Response:
        """``GET /1/items``: one page (limit <= 100) in the requested order."""
        gate = await self._gate(request, "read_items")
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
        items = [
            _garbled(item) if self._unreadable(account, item) else item.to_json() for item in page
        ]
        return self._respond(account, {"items": items})

    async def detail(self, request: Request) -> Response:
        """``GET /1/items/detail/{item_id}``: ``no_item_id`` without an id, ``no_item`` for
        an id the shop does not have."""
        gate = await self._gate(request, "read_items")
        if isinstance(gate, Response):
            return gate
        account = gate
        raw = str(request.path_params.get("item_id", ""))
        try:
            if not raw:
                raise _Fail("no_item_id")
            item = account.items.get(int(raw)) if _DIGITS.match(raw) else None
            if item is None:
                raise _Fail("no_item")
        except _Fail as fail:
            return self._failed(account, fail)
        if self._unreadable(account, item):
            self.state.stats.base[account.name].errors += 1
            return Response(_SERVER_ERROR, 500, media_type="text/html")
        self.state.stats.base[account.name].reads += 1
        return self._respond(account, {"item": item.to_json()})

    async def edit(self, request: Request) -> Response:
        """``POST /1/items/edit``: price, stock, visible, title, identifier, detail, and
        ``variation_id[n]`` / ``variation[n]`` / ``variation_stock[n]`` /
        ``variation_identifier[n]`` (an empty ``variation_id[n]`` adds a variation)."""
        return await self._edit(request, stock_only=False)

    async def edit_stock(self, request: Request) -> Response:
        """``POST /1/items/edit_stock``: item_id and stock, or variation_id and
        variation_stock."""
        return await self._edit(request, stock_only=True)

    async def _edit(self, request: Request, *, stock_only: bool) -> Response:
        gate = await self._gate(request, "write_items")
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
            if item.uneditable:
                raise _Fail("invalid_request", description=UNEDITABLE[item.uneditable])
            if stock_only:
                changes, variations = _stock_changes(params, item)
            else:
                changes = _edit_changes(params, stock_only=False)
                variations = _variation_changes(params, item)
                _check_item_stock(changes, item, variations)
        except _Fail as fail:
            return self._failed(account, fail)
        _apply(item, changes, variations)
        account.touch(item, self.state.clock.now())
        self.state.stats.base[account.name].writes += 1
        return self._respond(account, {"item": item.to_json()})


def _basic_credentials(request: Request, params: dict[str, str]) -> None:
    """BASE also accepts client_id and client_secret by HTTP Basic authentication."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or params.get("client_id"):
        return
    try:
        client_id, _, secret = base64.b64decode(value.strip()).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return
    params["client_id"], params["client_secret"] = client_id, secret


def _garbled(item: BaseItem) -> dict[str, Any]:
    """An item as the ``item_malformed`` fault serves it: its id is there, its price and
    stock are not numbers."""
    data = item.to_json()
    data["price"] = "価格を取得できません"
    data["stock"] = "-"
    return data


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
    """Validate the item-level fields of an edit, all or nothing, as BASE does."""
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


# One variation's edit: (variation_id or None to add, fields to set).
VariationEdit = tuple[int | None, dict[str, Any]]


def _variation_changes(params: dict[str, str], item: BaseItem) -> list[VariationEdit]:
    """The ``variation_*[n]`` fields of ``/1/items/edit``, validated all or nothing."""
    rows: dict[int, dict[str, str]] = {}
    for key, value in params.items():
        match = _VARIATION_FIELD.match(key)
        if match:
            rows.setdefault(int(match.group(2)), {})[match.group(1)] = value
    edits: list[VariationEdit] = []
    for index in sorted(rows):
        row = rows[index]
        if "variation_id" not in row:
            raise _Fail("validation_error", f"variation_id[{index}]は必須です")
        fields: dict[str, Any] = {}
        if "variation_stock" in row:
            if not _DIGITS.match(row["variation_stock"]):
                raise _Fail("validation_error", f"variation_stock[{index}]は0以上の整数です")
            fields["stock"] = int(row["variation_stock"])
        if "variation" in row:
            if not row["variation"].strip():
                raise _Fail("validation_error", f"variation[{index}]は必須です")
            fields["name"] = row["variation"].strip()
        if "variation_identifier" in row:
            if len(row["variation_identifier"]) > 100:
                raise _Fail("validation_error", "variation_identifierは100文字以内です")
            fields["identifier"] = row["variation_identifier"]
        raw_id = row["variation_id"]
        if raw_id == "":
            if "name" not in fields:
                raise _Fail("validation_error", f"variation[{index}]は必須です")
            edits.append((None, fields))
            continue
        if not _DIGITS.match(raw_id) or item.variation(int(raw_id)) is None:
            raise _Fail("bad_variation_id")
        edits.append((int(raw_id), fields))
    return edits


def _check_item_stock(changes: dict[str, Any], item: BaseItem, edits: list[VariationEdit]) -> None:
    """Our assumption (undocumented by BASE): item-level ``stock`` on an item that has (or
    gets) variations is a validation error, never silently applied nor ignored."""
    if "stock" in changes and (item.variations or any(vid is None for vid, _ in edits)):
        raise _Fail("validation_error", description=VARIATION_STOCK)


def _stock_changes(
    params: dict[str, str], item: BaseItem
) -> tuple[dict[str, Any], list[VariationEdit]]:
    """``/1/items/edit_stock``: ``stock``, or ``variation_id`` with ``variation_stock``."""
    if "variation_id" in params:
        raw_id = params["variation_id"]
        if not _DIGITS.match(raw_id) or item.variation(int(raw_id)) is None:
            raise _Fail("bad_variation_id")
        stock = params.get("variation_stock")
        if stock is None:
            raise _Fail("bad_params")
        if not _DIGITS.match(stock):
            raise _Fail("validation_error", "variation_stockは0以上の整数です")
        if "stock" in params:  # the item has variations: its stock is their sum
            raise _Fail("validation_error", description=VARIATION_STOCK)
        return {}, [(int(raw_id), {"stock": int(stock)})]
    if "stock" not in params:
        raise _Fail("bad_params", "stockは必須です")
    changes = _edit_changes(params, stock_only=True)
    _check_item_stock(changes, item, [])
    return changes, []


def _apply(item: BaseItem, changes: dict[str, Any], edits: list[VariationEdit]) -> None:
    for name, value in changes.items():
        setattr(item, name, value)
    if not edits:
        return
    variations = list(item.variations)
    for variation_id, fields in edits:
        if variation_id is None:
            variation = BaseVariation(item.next_variation_id(), fields["name"], 0, None)
            variations.append(variation)
            item.variations = variations
        else:
            found = item.variation(variation_id)
            assert found is not None  # validated
            variation = found
        variation.stock = fields.get("stock", variation.stock)
        variation.name = fields.get("name", variation.name)
        variation.identifier = fields.get("identifier", variation.identifier)
    item.set_variations(variations)


def control_json(item: BaseItem) -> dict[str, Any]:
    """The control API's view: BASE's JSON, plus ``uneditable`` for items BASE will not let
    the API edit (BASE does not show that field; tests need to know)."""
    data = item.to_json()
    if item.uneditable:
        data["uneditable"] = item.uneditable
    return data


def apply_hand_edit(
    account: BaseAccount, item: BaseItem, fields: dict[str, Any], now: float
) -> None:
    """The control API's ``PATCH``: a seller editing the item on BASE's own admin page.

    Besides BASE's item fields it takes ``variations`` (a list of ``{"variation",
    "variation_stock", "variation_identifier"}``: replaces them all, ``[]`` removes them)
    and ``uneditable`` (``"digital"``, ``"clubt"`` or ``""``), so a test can build the item
    it needs.
    """
    extra = {key: fields[key] for key in ("variations", "uneditable") if key in fields}
    params = {
        key: str(value)
        for key, value in fields.items()
        if key not in ("item_id", "variations", "uneditable")
    }
    unknown = set(params) - {"price", "stock", "visible", "title", "identifier", "detail"}
    if unknown:
        raise ValueError(f"unknown item fields: {', '.join(sorted(unknown))}")
    uneditable = extra.get("uneditable", item.uneditable)
    if uneditable not in ("", *UNEDITABLE):
        raise ValueError(f"uneditable: use one of {', '.join(UNEDITABLE)} or an empty string")
    variations = _hand_variations(item, extra["variations"]) if "variations" in extra else None
    try:
        changes = _edit_changes(params, stock_only=False)
        if "stock" in changes and (variations if variations is not None else item.variations):
            raise _Fail("validation_error", description=VARIATION_STOCK)
    except _Fail as fail:
        raise ValueError(f"{fail.code}: {fail.description or fail.detail}") from None
    for name, value in changes.items():
        setattr(item, name, value)
    item.uneditable = uneditable
    if variations is not None:
        item.set_variations(variations)
    account.touch(item, now)


def _hand_variations(item: BaseItem, raw: Any) -> list[BaseVariation]:
    if not isinstance(raw, list):
        raise ValueError("variations: a list is required")
    out: list[BaseVariation] = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise ValueError(f"variations[{index}]: an object is required")
        stock = entry.get("variation_stock", 0)
        if isinstance(stock, bool) or not isinstance(stock, int) or stock < 0:
            raise ValueError(f"variations[{index}].variation_stock: an integer >= 0 is required")
        identifier = entry.get("variation_identifier")
        if identifier is not None and not isinstance(identifier, str):
            raise ValueError(f"variations[{index}].variation_identifier: a string or null")
        name = str(entry.get("variation") or f"種類{index + 1}")
        out.append(BaseVariation(item.item_id * 100 + index + 1, name, stock, identifier))
    return out
