"""``/healthz`` and ``/metrics`` for the daemon, on loopback, in a thread of their own.

The system ecsync replaces hung for 40 hours and nothing outside could tell. Here a
monitor (systemd, a load balancer check, Prometheus alerting) asks the daemon's own
process: the HTTP server runs in a separate thread, so it still answers when the event loop
is stuck, and it then reports 503 with the reason. The metrics use prometheus-client's
registry and text format (a registry per daemon, not the global one, so tests that run
several daemons in one process do not collide).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from ecsync.status import STALL_AFTER

log = logging.getLogger(__name__)

QUOTE_STATUSES = ("ok", "out_of_stock", "no_eligible_offer", "unknown_asin", "error")
CHANGE_STATUSES = ("planned", "applied", "failed", "held")
CYCLE_STATUSES = ("ok", "partial", "failed")
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 10800, 21600)


def cycle_succeeded(summary: Mapping[str, Any]) -> bool:
    """Did the cycle do its job? ``ok``, or ``partial`` with some quotes fetched: per-item
    errors are normal in a large shop and must not make the daemon look unhealthy, but a
    cycle whose every quote failed did nothing useful."""
    status = summary.get("status")
    if status == "ok":
        return True
    if status != "partial":
        return False
    asins = int(summary.get("asins") or 0)
    return asins == 0 or int(summary.get("quotes_error") or 0) < asins


@dataclass
class HealthState:
    """What ``/healthz`` judges, written by the daemon's loop, read by the HTTP thread.

    Times are wall-clock seconds. ``heartbeat_at`` moves only when the daemon has written
    its heartbeat to the database, so a stuck loop or an unreachable database both show.
    """

    interval_s: float
    started_at: float = field(default_factory=time.time)
    heartbeat_at: float | None = None
    last_success_at: float | None = None
    state: str = "starting"
    phase: str = ""
    stall_after_s: float = STALL_AFTER.total_seconds()
    clock: Callable[[], float] = time.time

    def verdict(self) -> tuple[bool, str]:
        """(healthy, reason): stalled heartbeat, or no successful cycle for 2 intervals."""
        now = self.clock()
        since = self.heartbeat_at if self.heartbeat_at is not None else self.started_at
        if now - since > self.stall_after_s:
            return False, (
                f"stalled: no heartbeat for {now - since:.0f} s "
                f"(limit {self.stall_after_s:.0f} s), last seen in phase {self.phase or '-'!r}"
            )
        limit = 2 * self.interval_s
        if self.last_success_at is None:
            if now - self.started_at > limit:
                return False, (
                    f"no successful cycle since the daemon started {now - self.started_at:.0f} s "
                    f"ago (limit 2 intervals = {limit:.0f} s)"
                )
        elif now - self.last_success_at > limit:
            return False, (
                f"last successful cycle {now - self.last_success_at:.0f} s ago, "
                f"older than 2 intervals ({limit:.0f} s)"
            )
        success = f"{now - self.last_success_at:.0f} s ago" if self.last_success_at else "none yet"
        return True, f"ok: {self.state} {self.phase}".rstrip() + f"; last success {success}"


class ReadModelGauges(Collector):
    """Gauges that exist only when there is something to show.

    Quote-age quantiles need a quoted ASIN, per-operation counts a finished window, and the
    refresh scheduler's figures a continuous engine: a plain ``Gauge`` would read 0 before
    (a quote age of 0 s or a hit ratio of 0 are claims, not absences), so these are built at
    each scrape from the latest read-model dicts, and simply missing when those are.
    """

    def __init__(self) -> None:
        self.quote_ages: Mapping[str, Any] = {}
        self.operations: Mapping[str, Any] | None = None
        self.refresh: Mapping[str, Any] | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        ages = GaugeMetricFamily(
            "ecsync_quote_age_seconds",
            "Age of listed ASINs' quotes (now - fetched_at), nearest-rank quantiles; 1 = max",
            labels=["quantile"],
        )
        for quantile, key in (("0.5", "p50"), ("0.95", "p95"), ("1", "max")):
            value = self.quote_ages.get(key)
            if value is not None:
                ages.add_metric([quantile], float(value))
        yield ages
        requests = GaugeMetricFamily(
            "ecsync_spapi_requests_by_operation",
            "SP-API requests per operation in the last reporting window (cycle)",
            labels=["operation"],
        )
        throttled = GaugeMetricFamily(
            "ecsync_spapi_throttled_by_operation",
            "SP-API requests answered 429 per operation in the last reporting window (cycle)",
            labels=["operation"],
        )
        used = GaugeMetricFamily(
            "ecsync_spapi_quota_used_ratio",
            "Requests over the quota's capacity (burst + rate x window) in the last window",
            labels=["operation"],
        )
        operations = (self.operations or {}).get("operations") or {}
        for name, op in operations.items():
            requests.add_metric([name], float(op.get("requests") or 0))
            throttled.add_metric([name], float(op.get("throttled") or 0))
            if op.get("used") is not None:
                used.add_metric([name], float(op["used"]))
        yield requests
        yield throttled
        yield used
        refresh = self.refresh
        if refresh is None:
            return
        ratio = refresh.get("probe_hit_ratio")
        if ratio is not None:
            yield GaugeMetricFamily(
                "ecsync_probe_hit_ratio",
                "Probes that led to a real change, over probes sent (continuous mode)",
                value=float(ratio),
            )
        queue = GaugeMetricFamily(
            "ecsync_refresh_queue",
            "ASINs waiting for a full quote, by kind (continuous mode)",
            labels=["kind"],
        )
        for kind, count in (refresh.get("queue") or {}).items():
            queue.add_metric([str(kind)], float(count or 0))
        yield queue


class DaemonMetrics:
    """The daemon's Prometheus metrics. Counters add up every cycle of this process;
    ``ecsync_last_cycle_*`` gauges repeat the latest cycle's summary."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.cycles = Counter("ecsync_cycles", "Cycles finished, by status", ["status"], registry=r)
        self.cycle_duration = Histogram(
            "ecsync_cycle_duration_seconds",
            "Cycle duration",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.last_duration = Gauge(
            "ecsync_last_cycle_duration_seconds", "Duration of the latest cycle", registry=r
        )
        self.last_status = Gauge(
            "ecsync_last_cycle_status",
            "1 for the latest cycle's status, 0 for the others",
            ["status"],
            registry=r,
        )
        self.last_cycle_id = Gauge("ecsync_last_cycle_id", "Id of the latest cycle", registry=r)
        self.last_finished = Gauge(
            "ecsync_last_cycle_timestamp_seconds", "When the latest cycle ended", registry=r
        )
        self.last_success = Gauge(
            "ecsync_last_success_timestamp_seconds",
            "When the latest successful cycle ended",
            registry=r,
        )
        self.quotes = Counter("ecsync_quotes", "Quotes fetched, by status", ["status"], registry=r)
        self.changes = Counter(
            "ecsync_changes", "Changes planned, applied, failed and held", ["status"], registry=r
        )
        self.asins = Counter("ecsync_asins", "ASINs collected by cycles", registry=r)
        self.spapi_requests = Counter(
            "ecsync_spapi_requests", "SP-API getItemOffersBatch requests", registry=r
        )
        self.spapi_throttled = Counter(
            "ecsync_spapi_throttled", "SP-API requests answered 429", registry=r
        )
        self.channel_calls = Counter(
            "ecsync_channel_calls", "Calls made to the sales channels", registry=r
        )
        self.quotes_current = Gauge(
            "ecsync_quotes_current", "Listed ASINs by current quote status", ["status"], registry=r
        )
        self.quotes_older = Gauge(
            "ecsync_quotes_older_than_intervals",
            "Listed ASINs whose last good quote is older than N daemon intervals",
            ["intervals"],
            registry=r,
        )
        self.quote_oldest = Gauge(
            "ecsync_quote_oldest_timestamp_seconds",
            "Fetch time of the oldest quote of a listed ASIN",
            registry=r,
        )
        self.budget_remaining = Gauge(
            "ecsync_api_budget_remaining",
            "API calls left in the current window (channels) or available now (SP-API)",
            ["platform", "account", "budget"],
            registry=r,
        )
        self.heartbeat = Gauge(
            "ecsync_heartbeat_timestamp_seconds", "The daemon's latest heartbeat", registry=r
        )
        self.state = Gauge(
            "ecsync_daemon_state", "1 for the daemon's current state", ["state"], registry=r
        )
        self.read_model = ReadModelGauges()
        r.register(self.read_model)
        for status in CYCLE_STATUSES:
            self.cycles.labels(status).inc(0)
        for status in QUOTE_STATUSES:
            self.quotes.labels(status).inc(0)
        for status in CHANGE_STATUSES:
            self.changes.labels(status).inc(0)

    def record_cycle(self, summary: Mapping[str, Any], finished_at: float) -> None:
        """Add one cycle's ``sync --json`` summary."""
        status = str(summary.get("status", "failed"))
        self.cycles.labels(status).inc()
        duration = float(summary.get("duration_s") or 0.0)
        self.cycle_duration.observe(duration)
        self.last_duration.set(duration)
        for known in {*CYCLE_STATUSES, status}:
            self.last_status.labels(known).set(1 if known == status else 0)
        self.last_cycle_id.set(int(summary.get("cycle_id") or 0))
        self.last_finished.set(finished_at)
        if cycle_succeeded(summary):
            self.last_success.set(finished_at)
        for status_name in QUOTE_STATUSES:
            self.quotes.labels(status_name).inc(int(summary.get(f"quotes_{status_name}") or 0))
        for status_name in CHANGE_STATUSES:
            self.changes.labels(status_name).inc(int(summary.get(f"changes_{status_name}") or 0))
        self.asins.inc(int(summary.get("asins") or 0))
        self.spapi_requests.inc(int(summary.get("spapi_requests") or 0))
        self.spapi_throttled.inc(int(summary.get("spapi_throttled") or 0))
        self.channel_calls.inc(int(summary.get("channel_calls") or 0))

    def record_store(
        self,
        quotes: Mapping[str, Any],
        budgets: Mapping[str, Any],
        operations: Mapping[str, Any] | None = None,
    ) -> None:
        """Gauges read from the database (``status``'s read model)."""
        self.read_model.quote_ages = dict(quotes.get("age_s") or {})
        self.read_model.operations = operations
        by_status = quotes.get("by_status", {})
        for status in {*QUOTE_STATUSES, "never_fetched", *by_status}:
            self.quotes_current.labels(status).set(int(by_status.get(status, 0)))
        self.quotes_older.labels("1").set(int(quotes.get("older_than_1x", 0)))
        self.quotes_older.labels("2").set(int(quotes.get("older_than_2x", 0)))
        oldest = quotes.get("oldest_fetched_at")
        if oldest:
            self.quote_oldest.set(datetime.fromisoformat(oldest).timestamp())
        for key, budget in budgets.items():
            name = budget.get("window") or budget.get("operation") or key
            self.budget_remaining.labels(budget["platform"], budget["account"], name).set(
                int(budget.get("remaining", 0))
            )

    def record_refresh(self, refresh: Mapping[str, Any] | None) -> None:
        """The continuous scheduler's live figures (``status.refresh_view``), or None."""
        self.read_model.refresh = refresh

    def record_state(self, state: str, heartbeat_at: float | None = None) -> None:
        for known in {"running", "idle", "stopping", state}:
            self.state.labels(known).set(1 if known == state else 0)
        if heartbeat_at is not None:
            self.heartbeat.set(heartbeat_at)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class HealthServer:
    """A tiny HTTP server (stdlib, threaded) serving ``/healthz`` and ``/metrics``."""

    def __init__(self, host: str, port: int, health: HealthState, metrics: DaemonMetrics) -> None:
        self.health = health
        self.metrics = metrics
        handler = _handler_for(self)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="ecsync-health",
            daemon=True,
        )

    @property
    def url(self) -> str:
        address = self._server.server_address
        host = address[0].decode() if isinstance(address[0], bytes) else str(address[0])
        port = address[1]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    def start(self) -> HealthServer:
        self._thread.start()
        log.info("serving %s/healthz and %s/metrics", self.url, self.url)
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=1.0)


def _handler_for(server: HealthServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                healthy, reason = server.health.verdict()
                self._send(200 if healthy else 503, reason.encode() + b"\n", "text/plain")
            elif path == "/metrics":
                try:
                    body = server.metrics.render()
                except Exception as exc:  # never let a scrape take the thread down
                    log.exception("rendering metrics failed")
                    self._send(500, f"{exc}\n".encode(), "text/plain")
                    return
                self._send(200, body, CONTENT_TYPE_LATEST)
            else:
                self._send(404, b"not found: try /healthz or /metrics\n", "text/plain")

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("health: " + format, *args)

    return Handler
