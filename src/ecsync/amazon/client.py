"""The SP-API pricing operations through python-amazon-sp-api's async client.

getItemOffersBatch (20 full answers a request), getItemOffers (one) and
getCompetitivePricing (20 probes). Each call is bounded by the total timeout and fails in
the terms of ``amazon.errors``; rate pacing is the caller's, per operation (the governor,
``amazon.metered``).

The package caches access tokens module-wide for 3,200 s and does not refresh on a 403, so a
long-running process clears that cache entry itself on ``Unauthorized`` and retries once. It
also turns a non-JSON body into an empty answer, which this module treats as malformed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from sp_api.asyncio.api import Products
from sp_api.asyncio.auth import AccessTokenClient
from sp_api.asyncio.auth import access_token_client as token_cache_module
from sp_api.auth._core import build_cache_key
from sp_api.auth.exceptions import AuthorizationError
from sp_api.base import ApiResponse, Marketplaces
from sp_api.base.exceptions import (
    SellingApiException,
    SellingApiForbiddenException,
    SellingApiRequestThrottledException,
)

from ecsync.amazon.errors import (
    AuthFailed,
    BatchRejected,
    Throttled,
    TokenRejected,
    TransientError,
)
from ecsync.config import AmazonSettings
from ecsync.domain.probes import ProbeError, ProbeResult, QuoteView, probe_from_entry
from ecsync.domain.probes import quote_view_from_payload as _quote_view

log = logging.getLogger(__name__)

OFFERS_BATCH = "getItemOffersBatch"
ITEM_OFFERS = "getItemOffers"
COMPETITIVE_PRICING = "getCompetitivePricing"
BATCH_SIZE = 20
OFFERS_PATH = "/products/pricing/v0/items/{asin}/offers"


@dataclass(frozen=True, slots=True)
class ItemAnswer:
    """One ASIN's part of a batch answer: a GetOffersResult payload, or why there is none.

    ``status_code``, ``code`` and ``message`` keep an item-level refusal's parts (HTTP status,
    first error's code and message), so the quote rules can tell "this ASIN is invalid in the
    marketplace" from a failure that says nothing about the ASIN.
    """

    asin: str
    payload: Mapping[str, Any] | None
    error: str | None
    status_code: int | None = None
    code: str = ""
    message: str = ""

    @property
    def quote_view(self) -> QuoteView | None:
        """What this answer implies about the Buy Box and the new offer count (what a probe
        sees), from its ``Summary``; None when it does not say (an error, a malformed one)."""
        return _quote_view(self.payload) if self.payload is not None else None


@dataclass(frozen=True, slots=True)
class BatchAnswer:
    items: list[ItemAnswer]
    rate_limit: float | None


@dataclass(frozen=True, slots=True)
class ItemOffersAnswer:
    """A getItemOffers answer: the one ASIN's part, shaped as one entry of a batch answer."""

    item: ItemAnswer
    rate_limit: float | None


@dataclass(frozen=True, slots=True)
class ProbeAnswer:
    """A getCompetitivePricing answer: one probe or probe error per ASIN asked, in order."""

    items: list[ProbeResult]
    rate_limit: float | None


class _Refused(BatchRejected):
    """A 4xx for the whole request, with its status and errors: for getItemOffers that is
    the one item's answer (400 InvalidInput for an unknown ASIN), as a batch entry says it."""

    def __init__(self, message: str, status: int, errors: Any, rate_limit: float | None) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors
        self.rate_limit = rate_limit  # Amazon sends the rate header on a 400 or 404 too


def token_client_class(token_url: str) -> type[AccessTokenClient]:
    """The package builds the LWA URL from class attributes; point them at ``token_url``."""
    parts = urlsplit(token_url)
    return type(
        "ConfiguredAccessTokenClient",
        (AccessTokenClient,),
        {"scheme": f"{parts.scheme}://", "host": parts.netloc, "path": parts.path or "/"},
    )


class OffersClient:
    """One SP-API seller's offers endpoint; one instance per cycle, closed afterwards."""

    def __init__(self, settings: AmazonSettings) -> None:
        self._settings = settings
        refresh_token = settings.refresh_token.get_secret_value()
        self._cache_key = build_cache_key(refresh_token)
        self._products = Products(
            marketplace=Marketplaces.JP,
            refresh_token=refresh_token,
            credentials={
                "refresh_token": refresh_token,
                "lwa_app_id": settings.client_id,
                "lwa_client_secret": settings.client_secret.get_secret_value(),
            },
            timeout=httpx.Timeout(
                connect=settings.connect_timeout_s,
                read=settings.read_timeout_s,
                write=settings.read_timeout_s,
                pool=settings.connect_timeout_s,
            ),
            auth_token_client_class=token_client_class(settings.token_url),
        )
        self._products.endpoint = settings.endpoint.rstrip("/")

    @property
    def credentials_key(self) -> str:
        """Names the rate budget: Amazon meters per application and selling partner."""
        return f"{self._settings.client_id}:{self._cache_key[-12:]}"

    async def aclose(self) -> None:
        await self._products.aclose()
        await self._products._auth.aclose()

    async def offers_batch(self, asins: Sequence[str]) -> BatchAnswer:
        """One getItemOffersBatch request for up to 20 ASINs, within the total timeout.

        Each ASIN is asked once: Amazon refuses a whole batch that names one twice
        ("Duplicate requests submitted"); a repeated ASIN gets the one answer.
        """
        unique = _unique(asins)
        answer = await self._call(unique)
        if len(unique) == len(asins):
            return answer
        by_asin = {item.asin: item for item in answer.items}
        return BatchAnswer([by_asin[asin] for asin in asins], answer.rate_limit)

    async def item_offers(self, asin: str) -> ItemOffersAnswer:
        """One getItemOffers request (condition New, consumer) for ``asin``.

        The answer is shaped as one entry of a batch answer and read by the same code, so
        the quote rules see no difference: a 400 naming the ASIN is the item's refusal (its
        status, code and message kept), not a failure of the request. A body that cannot be
        read, a 5xx or a timeout raise :class:`TransientError`, a 429 :class:`Throttled`.
        """
        try:
            response = await self._request(
                lambda: self._products.get_item_offers(
                    asin,
                    "New",
                    customer_type="Consumer",
                    MarketplaceId=self._settings.marketplace_id,
                )
            )
        except _Refused as refused:
            entry = {"status": {"statusCode": refused.status}, "body": {"errors": refused.errors}}
            return ItemOffersAnswer(_item(asin, entry), refused.rate_limit)
        payload = response.payload
        if not isinstance(payload, Mapping) or not payload:
            raise TransientError("malformed answer: no offers payload (truncated or not JSON)")
        answered = payload.get("ASIN")
        if isinstance(answered, str) and answered != asin:
            raise TransientError(f"malformed answer: asked for {asin}, answered for {answered}")
        entry = {"status": {"statusCode": 200}, "body": {"payload": payload}}
        return ItemOffersAnswer(_item(asin, entry), _rate(response.rate_limit))

    async def competitive_pricing(self, asins: Sequence[str]) -> ProbeAnswer:
        """One getCompetitivePricing request for up to 20 ASINs: a probe per ASIN asked.

        Each ASIN's entry is read on its own (``domain.probes.probe_from_entry``): a failed
        or malformed entry, or an ASIN the answer leaves out, is a :class:`ProbeError` for
        that ASIN only. An answer that is not a list of entries at all raises
        :class:`TransientError`, as a malformed batch answer does.
        """
        unique = _unique(asins)
        response = await self._request(
            lambda: self._products.get_competitive_pricing_for_asins(
                unique, customer_type="Consumer", MarketplaceId=self._settings.marketplace_id
            )
        )
        entries = response.payload
        if not isinstance(entries, list):
            raise TransientError(
                "malformed answer: no list of competitive prices (truncated or not JSON)"
            )
        by_asin: dict[str, ProbeResult] = {}
        for position, entry in enumerate(entries):
            asin = _probe_asin(entry, unique, position)
            if asin is not None:
                by_asin[asin] = probe_from_entry(asin, entry)
        items = [
            by_asin.get(asin) or ProbeError(asin, "no answer for this ASIN in the response")
            for asin in asins
        ]
        return ProbeAnswer(items, _rate(response.rate_limit))

    async def ensure_token(self) -> None:
        """Have a valid access token before the request's slot comes up.

        Refreshing inside the request would send it late by the LWA round trip, and the
        request after it on time: at a high granted rate that pair arrives closer than the
        interval and draws a 429.
        """
        try:
            async with asyncio.timeout(self._settings.total_timeout_s):
                await self._products._auth.get_auth()
        except AuthorizationError as exc:
            raise AuthFailed(
                f"LWA token request refused: {exc.error_code}: {exc.message}"
            ) from None
        except TimeoutError:
            raise TransientError("LWA token request: no answer within the total timeout") from None
        except (httpx.TransportError, ValueError) as exc:
            raise TransientError(f"LWA token request: {type(exc).__name__}: {exc}") from None

    async def _request(self, send: Callable[[], Awaitable[ApiResponse]]) -> ApiResponse:
        """One SP-API request within the total timeout, its failures in ``amazon.errors``."""
        try:
            async with asyncio.timeout(self._settings.total_timeout_s):
                return await _send(send)
        except SellingApiForbiddenException as exc:
            # The package never refreshes on a 403 by itself: drop its cached token so the
            # next ensure_token() fetches a new one. The caller retries in a new rate slot.
            token_cache_module.cache.pop(self._cache_key, None)
            raise TokenRejected(_message(exc)) from None
        except TimeoutError:
            raise TransientError(
                f"no answer within {self._settings.total_timeout_s:g} s (total timeout)"
            ) from None

    async def _call(self, asins: Sequence[str]) -> BatchAnswer:
        # Top-level fields, never inside "queryParams": Amazon fails such items since 2026-04.
        requests = [
            {
                "uri": OFFERS_PATH.format(asin=asin),
                "method": "GET",
                "MarketplaceId": self._settings.marketplace_id,
                "ItemCondition": "New",
                "CustomerType": "Consumer",
            }
            for asin in asins
        ]
        response = await self._request(
            lambda: self._products.get_item_offers_batch(requests_=requests)
        )
        return _parse_batch(asins, response.payload, response.rate_limit)


async def _send(send: Callable[[], Awaitable[ApiResponse]]) -> ApiResponse:
    """Await the package's call, mapping its exceptions (a 403 passes through: the caller
    drops the cached token first)."""
    try:
        return await send()
    except SellingApiRequestThrottledException as exc:
        raise Throttled(_message(exc)) from None
    except SellingApiForbiddenException:
        raise
    except AuthorizationError as exc:  # the package refreshed inline and LWA refused
        raise AuthFailed(f"LWA token request refused: {exc.error_code}: {exc.message}") from None
    except SellingApiException as exc:
        if exc.code >= 500:
            raise TransientError(f"HTTP {exc.code}: {_message(exc)}") from None
        headers = exc.headers if isinstance(exc.headers, Mapping) else {}
        raise _Refused(
            f"HTTP {exc.code}: {_message(exc)}",
            exc.code,
            exc.error,
            _rate(headers.get("x-amzn-RateLimit-Limit")),
        ) from None
    except httpx.TimeoutException as exc:
        raise TransientError(f"timed out: {type(exc).__name__}") from None
    except (httpx.TransportError, ValueError) as exc:
        raise TransientError(f"{type(exc).__name__}: {exc}") from None


def _unique(asins: Sequence[str]) -> list[str]:
    """Each ASIN once: Amazon refuses a batch that names one twice; a repeat gets the one
    answer."""
    unique = list(dict.fromkeys(asins))
    if not 0 < len(unique) <= BATCH_SIZE:
        raise ValueError(f"a batch holds 1 to {BATCH_SIZE} ASINs, got {len(unique)}")
    return unique


def _rate(rate_header: Any) -> float | None:
    """The ``x-amzn-RateLimit-Limit`` header as a positive rate, or None (best effort)."""
    try:
        rate = float(rate_header) if rate_header is not None else None
    except (TypeError, ValueError):
        return None
    return rate if rate and rate > 0 else None


def _probe_asin(entry: Any, asins: Sequence[str], position: int) -> str | None:
    """Which asked ASIN a competitive pricing entry answers: its ``ASIN``, else the
    product's identifier, else its position (an entry naming an ASIN not asked: none)."""
    if isinstance(entry, Mapping):
        named = entry.get("ASIN")
        if not isinstance(named, str):
            product = entry.get("Product")
            ids = product.get("Identifiers") if isinstance(product, Mapping) else None
            market = ids.get("MarketplaceASIN") if isinstance(ids, Mapping) else None
            named = market.get("ASIN") if isinstance(market, Mapping) else None
        if isinstance(named, str):
            return named if named in asins else None
    return asins[position] if position < len(asins) else None


def _message(exc: SellingApiException) -> str:
    code = getattr(exc, "amzn_code", None) or exc.code
    return f"{code}: {getattr(exc, 'message', '') or exc.error}"


def _parse_batch(asins: Sequence[str], payload: Any, rate_header: Any) -> BatchAnswer:
    responses = payload.get("responses") if isinstance(payload, Mapping) else None
    if not isinstance(responses, list):
        raise TransientError("malformed answer: no 'responses' list (truncated or not JSON)")
    by_asin: dict[str, ItemAnswer] = {}
    for position, entry in enumerate(responses):
        asin = _answer_asin(entry, asins, position)
        if asin is None:
            continue
        by_asin[asin] = _item(asin, entry)
    items = [
        by_asin.get(asin) or ItemAnswer(asin, None, "no answer for this ASIN in the batch")
        for asin in asins
    ]
    return BatchAnswer(items=items, rate_limit=_rate(rate_header))


def _answer_asin(entry: Any, asins: Sequence[str], position: int) -> str | None:
    if isinstance(entry, Mapping):
        request = entry.get("request")
        if isinstance(request, Mapping) and isinstance(request.get("Asin"), str):
            return request["Asin"] if request["Asin"] in asins else None
    return asins[position] if position < len(asins) else None


def _item(asin: str, entry: Any) -> ItemAnswer:
    if not isinstance(entry, Mapping):
        return ItemAnswer(asin, None, "malformed batch entry")
    status = entry.get("status")
    code = status.get("statusCode") if isinstance(status, Mapping) else None
    body = entry.get("body")
    if not isinstance(body, Mapping):
        return ItemAnswer(asin, None, f"HTTP {code}: batch entry without a body")
    if code != 200 or body.get("errors"):
        errors = body.get("errors")
        first = errors[0] if isinstance(errors, list) and errors else {}
        detail = first.get("message", "") if isinstance(first, Mapping) else ""
        reason = first.get("code", "") if isinstance(first, Mapping) else ""
        return ItemAnswer(
            asin,
            None,
            f"HTTP {code}: {reason} {detail}".strip(),
            status_code=code if isinstance(code, int) else None,
            code=reason if isinstance(reason, str) else "",
            message=detail if isinstance(detail, str) else "",
        )
    payload = body.get("payload")
    if not isinstance(payload, Mapping):
        return ItemAnswer(asin, None, "HTTP 200 without a payload")
    return ItemAnswer(asin, payload, None)
