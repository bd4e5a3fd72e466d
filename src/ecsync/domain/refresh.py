"""The refresh scheduler: which ASINs to quote or probe next, so the quotas go where the risk is.

CONTRACT STUB (issue 11): the lead wrote the interface; the body is to be built.

Pure: no I/O, no clock of its own (every method takes ``now`` in seconds, the caller's
clock), so it is unit-testable and the engine decides when to call it. The engine loads
one :class:`AsinState` per ASIN at start, then reports every quote and probe back.

Priority is the exposure a refresh is expected to avoid:
``stake x (1 - exp(-rate x age))`` where ``rate`` is the ASIN's change rate learned from its
own quote history (changes / observed seconds, shrunk towards the catalogue's mean rate for
ASINs with little history: empirical Bayes), ``age`` the time since its last full quote and
``stake`` what is at risk (listings x source price). Before any priority come, in order:
ASINs a probe contradicted (most urgent contradiction first), never-quoted ASINs (new
listings), and ASINs whose quote is older than ``max_quote_age`` (oldest first), so nothing
starves, including changes the Buy Box does not show.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ecsync.domain.probes import Difference

__all__ = ["AsinState", "RefreshPolicy", "RefreshScheduler"]


@dataclass(frozen=True, slots=True)
class AsinState:
    """What the store knows of one ASIN when the scheduler starts."""

    asin: str
    stake: float  # listings x source price in yen (>= 1 for a listed ASIN)
    last_quote_s: float | None = None  # epoch seconds of the last full quote (None: never)
    changes: int = 0  # full quotes that differed from the one before (price or stock)
    observed_s: float = 0.0  # seconds of quote history those changes were seen over


@dataclass(frozen=True, slots=True)
class RefreshPolicy:
    max_quote_age_s: float = 6 * 3600.0
    prior_rate_per_day: float = 1.0  # before the catalogue has taught a mean rate
    prior_weight_s: float = 86_400.0  # how much history the prior counts for


class RefreshScheduler:
    """The queues of full quotes and probes over one Amazon account's ASINs."""

    def __init__(self, policy: RefreshPolicy | None = None) -> None:
        self.policy = policy or RefreshPolicy()

    def load(self, states: Iterable[AsinState], now: float) -> None:
        """Replace the ASINs known (a listing added or retired: call again or use add/remove)."""

    def add(self, state: AsinState) -> None: ...

    def remove(self, asin: str) -> None: ...

    def next_full(self, n: int, now: float) -> list[str]:
        """Up to ``n`` distinct ASINs for a full quote, most urgent first; they leave the
        queue until :meth:`quoted` or :meth:`quote_failed` brings them back."""
        return []

    def next_single(self, now: float) -> str | None:
        """The one ASIN most worth a getItemOffers now (a probe-contradicted one first)."""
        return None

    def next_probe(self, n: int, now: float) -> list[str]:
        """Up to ``n`` ASINs for getCompetitivePricing, by the same expected exposure but
        counted from the last probe or quote, whichever is later."""
        return []

    def quoted(self, asin: str, now: float, changed: bool) -> None:
        """A full quote came back (``changed``: price or stock moved since the last one)."""

    def quote_failed(self, asin: str, now: float) -> None:
        """No usable quote (error, throttle, stop): back in the queue, nothing learned."""

    def probed(self, asin: str, now: float, difference: Difference | None) -> None:
        """A probe came back; a difference sends the ASIN to the front of the full queue.
        A probe error is not reported here at all (it is not evidence of anything)."""

    def metrics(self, now: float) -> dict[str, Any]:
        """``quote_age_s`` {p50, p95, max}, ``queue`` {urgent, new, overdue}, ``probes``,
        ``probe_hits`` (probes whose difference was confirmed by a changed full quote),
        ``asins``."""
        return {}
