"""getItemOffersBatch through python-amazon-sp-api's async client.

The package caches access tokens module-wide for 3,200 s and does not refresh on a 403, so a
long-running process clears that cache entry itself on ``Unauthorized`` and retries once. It
also turns a non-JSON body into an empty answer, which this module treats as malformed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from sp_api.asyncio.api import Products
from sp_api.asyncio.auth import AccessTokenClient
from sp_api.asyncio.auth import access_token_client as token_cache_module
from sp_api.auth._core import build_cache_key
from sp_api.auth.exceptions import AuthorizationError
from sp_api.base import Marketplaces
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

log = logging.getLogger(__name__)

OFFERS_BATCH = "getItemOffersBatch"
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


@dataclass(frozen=True, slots=True)
class BatchAnswer:
    items: list[ItemAnswer]
    rate_limit: float | None


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
        unique = list(dict.fromkeys(asins))
        if not 0 < len(unique) <= BATCH_SIZE:
            raise ValueError(f"a batch holds 1 to {BATCH_SIZE} ASINs, got {len(unique)}")
        try:
            async with asyncio.timeout(self._settings.total_timeout_s):
                answer = await self._call(unique)
        except SellingApiForbiddenException as exc:
            # The package never refreshes on a 403 by itself: drop its cached token so the
            # next ensure_token() fetches a new one. The caller retries in a new rate slot.
            token_cache_module.cache.pop(self._cache_key, None)
            raise TokenRejected(_message(exc)) from None
        except TimeoutError:
            raise TransientError(
                f"no answer within {self._settings.total_timeout_s:g} s (total timeout)"
            ) from None
        if len(unique) == len(asins):
            return answer
        by_asin = {item.asin: item for item in answer.items}
        return BatchAnswer([by_asin[asin] for asin in asins], answer.rate_limit)

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
        try:
            response = await self._products.get_item_offers_batch(requests_=requests)
        except SellingApiRequestThrottledException as exc:
            raise Throttled(_message(exc)) from None
        except SellingApiForbiddenException:
            raise
        except AuthorizationError as exc:  # the package refreshed inline and LWA refused
            raise AuthFailed(
                f"LWA token request refused: {exc.error_code}: {exc.message}"
            ) from None
        except SellingApiException as exc:
            if exc.code >= 500:
                raise TransientError(f"HTTP {exc.code}: {_message(exc)}") from None
            raise BatchRejected(f"HTTP {exc.code}: {_message(exc)}") from None
        except httpx.TimeoutException as exc:
            raise TransientError(f"timed out: {type(exc).__name__}") from None
        except (httpx.TransportError, ValueError) as exc:
            raise TransientError(f"{type(exc).__name__}: {exc}") from None
        return _parse_batch(asins, response.payload, response.rate_limit)


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
    try:
        rate = float(rate_header) if rate_header is not None else None
    except (TypeError, ValueError):
        rate = None
    return BatchAnswer(items=items, rate_limit=rate if rate and rate > 0 else None)


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
