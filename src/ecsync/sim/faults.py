"""Injected faults per API, drawn from a seeded RNG so a failing run can be replayed.

Rates are probabilities per request (``latency`` is a mean in wall-clock seconds, drawn
from an exponential distribution). ``hang`` parks the request on an event that is only
set when the server shuts down, so a hung client never blocks a clean stop.

Faults act on API calls only: never on the OAuth token endpoints (so a client can always
recover) nor on the control API. ``item_error`` fails one entry of an SP-API batch
(getItemOffersBatch, getCompetitivePricing, getCompetitiveSummary) or of an eBay bulk
update; BASE has no batch call, so ``base.item_error`` is accepted and has nothing to act
on. ``no_rate_header`` is not an error: it leaves ``x-amzn-RateLimit-Limit`` off that share
of SP-API answers (Amazon sends it "best effort"); on BASE and eBay it has nothing to act on.

``item_malformed`` is a rate of *items*, not of requests: ``base.item_malformed=0.1`` makes
one item in ten unreadable (garbled in ``/1/items`` pages, an error from
``/1/items/detail``) for the whole run, the same items for the same seed, so a client
reading the account twice meets the same broken items and can never mistake them for
deleted ones. It acts on BASE only for now (other APIs accept it and ignore it).

Kinds for eBay only (accepted for every API, acting on eBay alone):

- ``read_refused``: single item reads (``GET /offer?sku=``, ``GET /offer/{offerId}``) of
  that share of SKUs answer 403 (errorId 1100, access denied) or 400 (errorId 25709): an
  error, never the 404 / 25713 that says the offer is gone. The SKUs are a deterministic
  draw from the seed and the SKU, so the same ones stay refused while the fault is on.
- ``task_failed``: that share of Sell Feed report tasks end ``FAILED`` (nothing to download).
- ``task_partial``: that share of report tasks end ``COMPLETED_WITH_ERROR``; their report
  leaves out about one listing in ten.

The other eBay faults (throttle, error500, hang, malformed, latency) apply to the Sell
Feed API calls as to the Inventory API calls; ``malformed`` on a report download answers a
truncated zip.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Mapping
from typing import Any

APIS = ("spapi", "base", "ebay")
KINDS = (
    "throttle",
    "error500",
    "hang",
    "malformed",
    "item_error",
    "item_malformed",
    "latency",
    "read_refused",
    "task_failed",
    "task_partial",
    "no_rate_header",
)


class FaultError(ValueError):
    """A fault specification that cannot be applied; the message says which part."""


def _rate(api: str, kind: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultError(f"{api}.{kind}: must be a number, got {value!r}")
    rate = float(value)
    if kind == "latency":
        if not 0 <= rate <= 60:
            raise FaultError(f"{api}.latency: mean seconds must be between 0 and 60")
    elif not 0 <= rate <= 1:
        raise FaultError(f"{api}.{kind}: rate must be between 0 and 1, got {value!r}")
    return rate


def parse_fault_spec(spec: str) -> dict[str, Any]:
    """``spapi.throttle=0.05,base.error500=0.02,revoke_tokens`` -> the JSON of PUT /_sim/faults."""
    out: dict[str, Any] = {}
    for raw in spec.split(","):
        part = raw.strip()
        if not part:
            continue
        key, _, value = part.partition("=")
        key = key.strip()
        if key == "revoke_tokens":
            out["revoke_tokens"] = value.strip().lower() not in ("0", "false", "no")
            continue
        api, dot, kind = key.partition(".")
        if not dot or not value:
            raise FaultError(f"{part!r}: use API.KIND=RATE, e.g. spapi.throttle=0.05")
        try:
            number = float(value)
        except ValueError:
            raise FaultError(f"{part!r}: {value!r} is not a number") from None
        out.setdefault(api, {})[kind] = number
    return out


class Faults:
    """Current fault rates and the seeded draws that apply them."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._rng = random.Random(f"faults:{seed}")
        self.rates: dict[str, dict[str, float]] = {api: {} for api in APIS}
        self.revocations = 0
        self._release: asyncio.Event | None = None
        self.hanging = 0

    # --- configuration ----------------------------------------------------------------

    def validate(self, config: Mapping[str, Any]) -> dict[str, dict[str, float]]:
        if not isinstance(config, Mapping):
            raise FaultError("faults must be a JSON object")
        rates: dict[str, dict[str, float]] = {}
        for key, value in config.items():
            if key == "revoke_tokens":
                if not isinstance(value, bool):
                    raise FaultError("revoke_tokens: must be true or false")
                continue
            if key not in APIS:
                raise FaultError(f"{key}: unknown API (use {', '.join(APIS)})")
            if not isinstance(value, Mapping):
                raise FaultError(f"{key}: must be an object of fault rates")
            for kind, rate in value.items():
                if kind not in KINDS:
                    raise FaultError(f"{key}.{kind}: unknown fault (use {', '.join(KINDS)})")
                rates.setdefault(key, {})[kind] = _rate(key, kind, rate)
        return rates

    def replace(self, config: Mapping[str, Any]) -> bool:
        """PUT semantics: every rate not given becomes 0. Returns whether to revoke tokens."""
        rates = self.validate(config)
        self.rates = {api: dict(rates.get(api, {})) for api in APIS}
        return bool(config.get("revoke_tokens", False))

    def merge(self, config: Mapping[str, Any]) -> bool:
        """PATCH semantics: only the rates given change."""
        rates = self.validate(config)
        for api, kinds in rates.items():
            self.rates[api].update(kinds)
        return bool(config.get("revoke_tokens", False))

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            api: {kind: self.rates[api].get(kind, 0.0) for kind in KINDS} for api in APIS
        }
        out["revoke_tokens"] = False
        out["revocations"] = self.revocations
        out["hanging"] = self.hanging
        return out

    # --- draws ------------------------------------------------------------------------

    def hit(self, api: str, kind: str) -> bool:
        rate = self.rates[api].get(kind, 0.0)
        return rate > 0 and self._rng.random() < rate

    def item_hit(self, api: str, kind: str, key: str) -> bool:
        """A per-item fault: decided by the seed and the item's key alone, not by a draw, so
        the same item is hit on every request while the rate stays."""
        rate = self.rates[api].get(kind, 0.0)
        if rate <= 0:
            return False
        digest = hashlib.blake2b(f"{self._seed}:{api}:{kind}:{key}".encode(), digest_size=8)
        return int.from_bytes(digest.digest()) / 2**64 < rate

    def refused(self, api: str, kind: str, key: str) -> float | None:
        """A per-key draw: the key's fixed point in [0, 1) if it falls under the rate, else
        None. Unlike ``hit``, the same key gets the same answer for as long as the rate
        stays, whatever other requests came in between."""
        rate = self.rates[api].get(kind, 0.0)
        if rate <= 0:
            return None
        digest = hashlib.sha256(f"{self._seed}:{api}:{kind}:{key}".encode()).digest()
        point = int.from_bytes(digest[:8], "big") / 2**64
        return point if point < rate else None

    def choice(self, count: int) -> int:
        return self._rng.randrange(count)

    def latency(self, api: str) -> float:
        mean = self.rates[api].get("latency", 0.0)
        return self._rng.expovariate(1 / mean) if mean > 0 else 0.0

    # --- hanging ----------------------------------------------------------------------

    def bind(self, release: asyncio.Event) -> None:
        """Give the event (created on the server's loop) that shutdown sets."""
        self._release = release

    async def hang(self) -> None:
        """Never return until the server shuts down."""
        if self._release is None:
            self._release = asyncio.Event()
        self.hanging += 1
        try:
            await self._release.wait()
        finally:
            self.hanging -= 1

    def release_all(self) -> None:
        if self._release is not None:
            self._release.set()


# Fault kinds an API accepts but has nothing to act on (tests skip them, saying why).
INAPPLICABLE: dict[tuple[str, str], str] = {
    ("base", "item_error"): "BASE has no batch call: item_error has nothing to act on",
}
