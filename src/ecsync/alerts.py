"""Alerts to the seller's chat or mail, through apprise (Slack, Discord, email, JSON webhooks...).

URLs come from ``[daemon] alerts``. Two rules shape this module:

- **An alert never breaks a cycle.** Messages go to a worker thread; a slow or failing
  endpoint costs the daemon nothing but a warning in the log.
- **At most one message per kind per interval.** A shop that fails every cycle for a night
  sends one "cycle failed" per cycle, not a flood; the next message says how many similar
  ones were held back.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import apprise

log = logging.getLogger(__name__)

CYCLE_FAILED = "cycle_failed"
GUARD_TRIPPED = "guard_tripped"
ACCOUNT_FAILED = "account_failed"
THROTTLING = "throttling"
DAEMON_STARTED = "daemon_started"
DAEMON_STOPPED = "daemon_stopped"

# "Repeated throttling": at least this many 429s in a cycle, and this share of its requests.
THROTTLE_MIN = 3
THROTTLE_SHARE = 0.1

_SEVERITY = {
    "info": apprise.NotifyType.INFO,
    "success": apprise.NotifyType.SUCCESS,
    "warning": apprise.NotifyType.WARNING,
    "failure": apprise.NotifyType.FAILURE,
}


@dataclass(frozen=True, slots=True)
class Alert:
    kind: str
    title: str
    body: str
    severity: str = "warning"


def trip_alert(account: str, reason: str, cycle: int | None = None) -> Alert:
    """A mass-hide guard that tripped while a continuous reporting window runs: said at once,
    since the window's summary (and its alerts) may be up to a window away."""
    where = f"window {cycle}: " if cycle else ""
    return Alert(
        GUARD_TRIPPED,
        f"{where}mass-hide guard tripped on {account}",
        f"The mass-hide breaker tripped on {account}: {reason}. Every further hide on that "
        "account is held and not pushed: check the source offers (`ecsync changes --status "
        "held`, `ecsync history ASIN`), then `ecsync changes release ID...` or `reject ID...`.",
        "warning",
    )


def cycle_alerts(summary: Mapping[str, Any]) -> list[Alert]:
    """What a finished cycle's ``sync --json`` summary is worth telling the seller."""
    alerts = []
    cycle = summary.get("cycle_id")
    if summary.get("status") == "failed":
        alerts.append(
            Alert(
                CYCLE_FAILED,
                f"cycle {cycle} failed",
                f"Cycle {cycle} failed: {summary.get('error') or 'no reason recorded'}. "
                "The daemon carries on with the next cycle; `ecsync status` shows the details.",
                "failure",
            )
        )
    refused = dict(summary.get("account_errors") or {})
    if refused and summary.get("status") != "failed":  # a failed cycle's alert says it already
        alerts.append(
            Alert(
                ACCOUNT_FAILED,
                f"cycle {cycle}: {', '.join(sorted(refused))} stopped",
                f"Cycle {cycle}: "
                + "; ".join(f"{name}: {refused[name]}" for name in sorted(refused))
                + ". That account's changes stay planned; the other accounts went on.",
                "failure",
            )
        )
    tripped = list(summary.get("mass_hide_tripped") or [])
    drops = int(summary.get("held_drops") or 0)
    if tripped or drops:
        parts = []
        if tripped:
            parts.append(
                f"the mass-hide breaker tripped on {', '.join(tripped)}: "
                f"{summary.get('held_hides', 0)} hides held"
            )
        if drops:
            parts.append(f"{drops} price cuts larger than max_drop_pct held")
        alerts.append(
            Alert(
                GUARD_TRIPPED,
                f"cycle {cycle}: guard tripped",
                f"Cycle {cycle}: {'; '.join(parts)}. Held changes are not pushed: check the "
                "source offers (`ecsync changes --status held`, `ecsync history ASIN`), then "
                "`ecsync changes release ID...` or `reject ID...`.",
                "warning",
            )
        )
    throttled = int(summary.get("spapi_throttled") or 0)
    requests = int(summary.get("spapi_requests") or 0)
    if throttled >= THROTTLE_MIN and throttled >= THROTTLE_SHARE * requests:
        alerts.append(
            Alert(
                THROTTLING,
                f"cycle {cycle}: SP-API throttling",
                f"Cycle {cycle}: {throttled} of {requests} SP-API requests were throttled (429). "
                "Another application on the same credentials, or a reduced quota, may be "
                "drawing on the rate; the fetch slowed down to absorb it.",
                "warning",
            )
        )
    return alerts


def _quiet_add(target: apprise.Apprise, url: str) -> bool:
    apprise_log = logging.getLogger("apprise")
    level = apprise_log.level
    apprise_log.setLevel(logging.CRITICAL + 1)
    try:
        return bool(target.add(url))
    finally:
        apprise_log.setLevel(level)


def _scheme(url: str) -> str:
    return urlsplit(url).scheme or "?"


class Alerts:
    """Sends alerts from a worker thread, at most one per kind per ``min_gap_s``."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        min_gap_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._min_gap_s = min_gap_s
        self._clock = clock
        self._host = socket.gethostname()
        # apprise's DEBUG lines print webhook URLs with their tokens, and its INFO lines
        # repeat ours: only its warnings reach ecsync's log.
        logging.getLogger("apprise").setLevel(logging.WARNING)
        self._apprise = apprise.Apprise()
        for index, url in enumerate(urls):
            # The URL may hold a webhook token or a password: name only its scheme (apprise
            # itself would log a URL it cannot parse in full, so it is muted while parsing).
            if not _quiet_add(self._apprise, url):
                log.warning(
                    "daemon.alerts[%d]: apprise does not understand this %s:// URL; skipped",
                    index,
                    _scheme(url),
                )
        self._last: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()
        self._queue: queue.Queue[Alert | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return len(self._apprise) > 0

    def send(self, alert: Alert) -> bool:
        """Queue ``alert`` unless one of its kind went out less than an interval ago."""
        if not self.enabled:
            return False
        now = self._clock()
        with self._lock:
            last = self._last.get(alert.kind)
            if last is not None and now - last < self._min_gap_s:
                self._suppressed[alert.kind] += 1
                log.info("alert %s held back (one per interval): %s", alert.kind, alert.title)
                return False
            self._last[alert.kind] = now
            held = self._suppressed.pop(alert.kind, 0)
        body = alert.body
        if held:
            body += (
                f"\n({held} similar alert{'s' if held > 1 else ''} held back since the last one)"
            )
        self._queue.put(
            Alert(alert.kind, f"ecsync on {self._host}: {alert.title}", body, alert.severity)
        )
        self._ensure_worker()
        return True

    def _ensure_worker(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="ecsync-alerts", daemon=True)
            self._thread.start()

    def _work(self) -> None:
        while (alert := self._queue.get()) is not None:
            try:
                delivered = self._apprise.notify(
                    title=alert.title,
                    body=alert.body,
                    notify_type=_SEVERITY.get(alert.severity, apprise.NotifyType.WARNING),
                )
            except Exception:
                log.warning("alert %s could not be sent", alert.kind, exc_info=True)
                continue
            if delivered:
                log.info("alert sent: %s", alert.title)
            else:
                log.warning("alert %s did not reach every target (see apprise's log)", alert.kind)

    def close(self, timeout: float = 1.0) -> None:
        """Let queued alerts go out for at most ``timeout`` s: shutdown must stay prompt."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("alerts still being sent after %.1f s were abandoned at shutdown", timeout)
