"""What the seller sees of issue 11: quote age, each SP-API operation's use of its quota, and
the continuous scheduler's queue and probe hit rate, in ``status`` (text and JSON) and
``/metrics``, from the database alone.

Oracles are the test's own: quote-age percentiles by the nearest-rank rule written below
(integer arithmetic, no call into ecsync), request counts from the simulator's
``/_sim/stats``, which counts what reached it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ecsync.config import load_settings
from ecsync.health import DaemonMetrics
from ecsync.status import quote_view
from ecsync.store.engine import make_engine, session_factory, transaction
from ecsync.store.migrate import upgrade_to_head
from ecsync.store.schema import Account, Cycle, Listing, Product
from tests.conftest import CliResult
from tests.daemon.conftest import DaemonProcess, Db, daemon_lease, metrics_url, set_config, wait_for
from tests.integration.conftest import Shop

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def nearest_rank_percentile(values: list[int], percent: int) -> int:
    """The test's own rule: sort ascending; the ``percent`` percentile of ``n`` values is the
    value at 1-based rank ceil(percent * n / 100), computed in integers (no float edge)."""
    ordered = sorted(values)
    rank = max(1, -(-percent * len(ordered) // 100))
    return ordered[rank - 1]


def _fill(url: str, quoted_ages: list[int], never: int) -> None:
    """A store whose listed ASINs on the active account have these quote ages (seconds), plus
    ``never`` listed ones without a quote, and rows that must NOT count: an old quote listed
    only on an inactive account, one whose listing is retired, one with no listing."""
    engine = make_engine(url)
    upgrade_to_head(engine)
    with transaction(session_factory(engine)) as session:
        active = Account(name="base-1", platform="base", active=True, created_at=NOW)
        idle = Account(name="base-2", platform="base", active=False, created_at=NOW)
        session.add_all([active, idle])
        session.flush()
        rows: list[tuple[str, int | None, Account, str]] = [
            (f"B{i:09d}", age, active, "listed") for i, age in enumerate(quoted_ages)
        ]
        rows += [(f"BN{i:08d}", None, active, "listed") for i in range(never)]
        rows += [
            ("BX00000001", 10**7, idle, "listed"),
            ("BX00000002", 10**7 + 1, active, "retired"),
        ]
        for asin, age, account, status in rows:
            fetched = NOW - timedelta(seconds=age) if age is not None else None
            session.add(Product(asin=asin, fetched_at=fetched, last_attempt_at=fetched))
            session.flush()
            session.add(
                Listing(
                    account_id=account.id,
                    asin=asin,
                    item_id=asin,
                    status=status,
                    created_at=NOW,
                    updated_at=NOW,
                )
            )
        session.add(Product(asin="BX00000003", fetched_at=NOW - timedelta(days=400)))
    engine.dispose()


def _quotes(url: str) -> dict[str, Any]:
    engine = make_engine(url)
    with transaction(session_factory(engine)) as session:
        view = quote_view(session, NOW, 3600.0)
    engine.dispose()
    return view


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'ages.db'}"


@pytest.mark.parametrize("n", [1, 2, 20, 37, 101])
def test_quote_age_percentiles_follow_nearest_rank(store_url: str, n: int) -> None:
    rng = random.Random(n)
    ages = rng.sample(range(1, 500_000), n)  # distinct, so a rank off by one shows
    _fill(store_url, ages, never=3)
    view = _quotes(store_url)
    assert view["quoted"] == n
    assert view["never_quoted"] == 3
    assert view["age_s"] == {
        "p50": nearest_rank_percentile(ages, 50),
        "p95": nearest_rank_percentile(ages, 95),
        "max": max(ages),
    }


def test_no_quote_yet_is_no_age_not_zero(store_url: str) -> None:
    _fill(store_url, [], never=4)
    view = _quotes(store_url)
    assert view["quoted"] == 0 and view["never_quoted"] == 4
    assert view["age_s"] == {"p50": None, "p95": None, "max": None}


def _status(cli: Callable[..., CliResult]) -> dict[str, Any]:
    result = cli("status", "--json")
    assert result.code == 0, result.err
    data: dict[str, Any] = json.loads(result.out)
    return data


def test_each_operation_counts_what_reached_amazon(
    shop_for_daemon: Callable[..., tuple[Shop, Db]], cli: Callable[..., CliResult]
) -> None:
    shop, db = shop_for_daemon(products=200, speed=100.0)
    # Half the answers are 429s: over ten batches or more, a zero count is a 1-in-1000 fluke.
    shop.sim("PUT", "/_sim/faults", json={"spapi": {"throttle": 0.5}})
    shop.sim("POST", "/_sim/stats/reset")
    sync = cli("sync", "--json")
    assert sync.code == 0, sync.err
    stats = shop.stats()["spapi"]
    assert stats["requests"] and stats["throttled"] > 0

    data = _status(cli)
    operations = data["operations"]
    assert operations is not None
    seen = operations["operations"]
    assert {op: entry["requests"] for op, entry in seen.items()} == stats["requests"]
    assert sum(entry["throttled"] for entry in seen.values()) == stats["throttled"]
    cycle = db.finished()[-1]
    assert operations["cycle_id"] == cycle["id"]
    batch = seen["getItemOffersBatch"]
    # The governor paces under the quota: what went out fits what the bucket could grant.
    assert batch["rate_source"] == "reported" and batch["rate"] > 0
    assert 0 < batch["requests"] <= batch["capacity"]
    assert batch["used"] == pytest.approx(batch["requests"] / batch["capacity"], abs=1e-4)

    quotes = data["quotes"]
    assert quotes["quoted"] + quotes["never_quoted"] == quotes["total"] == 200
    assert data["refresh"] is None  # sweep mode: no scheduler, nothing shown

    text = cli("status").out
    assert f"SP-API quota use in the last window (cycle {cycle['id']}" in text
    assert f"getItemOffersBatch: {batch['requests']} / " in text
    assert "quote age: p50 " in text and "never quoted" in text
    assert "Refresh (continuous)" not in text


def _samples(url: str) -> dict[str, float]:
    response = httpx.get(f"{url}/metrics", timeout=5)
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def test_metrics_carry_quote_ages_and_operations_from_a_running_daemon(
    shop_for_daemon: Callable[..., tuple[Shop, Db]],
    daemons: Callable[..., DaemonProcess],
    cli: Callable[..., CliResult],
) -> None:
    shop, db = shop_for_daemon(products=60, speed=1000.0)
    set_config(shop.config, "daemon", metrics_port=0)
    shop.sim("POST", "/_sim/stats/reset")
    daemon = daemons(shop.config, "--interval", "10h")  # one cycle while the test looks
    url = metrics_url(shop.dir)
    wait_for(lambda: db.finished(daemon.pid), "the first cycle")
    key = "ecsync_spapi_requests_by_operation{operation=getItemOffersBatch}"
    samples = wait_for(lambda: (s := _samples(url)).get(key) and s, "the per-operation gauge")
    requests = shop.stats()["spapi"]["requests"]
    for operation, count in requests.items():
        assert samples[f"ecsync_spapi_requests_by_operation{{operation={operation}}}"] == count
        assert samples[f"ecsync_spapi_throttled_by_operation{{operation={operation}}}"] >= 0
    p50 = samples["ecsync_quote_age_seconds{quantile=0.5}"]
    p95 = samples["ecsync_quote_age_seconds{quantile=0.95}"]
    top = samples["ecsync_quote_age_seconds{quantile=1}"]
    assert 0 <= p50 <= p95 <= top
    # Sweep mode: the scheduler's gauges are absent, not zero.
    assert not any(
        name.startswith(("ecsync_probe_hit_ratio", "ecsync_refresh_queue")) for name in samples
    )
    daemon.stop()


def test_a_continuous_heartbeat_shows_queue_and_probe_hit_rate(
    write_config: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    config = write_config()
    assert cli("init").code == 0
    engine = make_engine(load_settings(config).database_url)
    now = datetime.now(UTC)
    refresh = {
        "quote_age_s": {"p50": 600.0, "p95": 3000.0, "max": 7000.0},
        "queue": {"urgent": 3, "new": 5, "overdue": 0, "in_flight": 2},
        "probes": 400,
        "probe_differences": 40,
        "probe_hits": 30,
        "asins": 120,
        "mean_rate_per_day": 1.2,
    }
    with transaction(session_factory(engine)) as session:
        session.add(
            daemon_lease(
                since=now - timedelta(hours=1),
                heartbeat_at=now,
                phase="refresh",
                progress={"interval_s": 3600.0, "refresh": refresh},
                next_cycle_at=None,
            )
        )
        session.add(
            Cycle(started_at=now - timedelta(hours=1), finished_at=now, status="ok", summary={})
        )
    engine.dispose()
    data = _status(cli)
    live = data["refresh"]
    assert live["queue"] == refresh["queue"]
    assert live["probes"] == 400 and live["probe_hits"] == 30
    assert live["probe_hit_ratio"] == pytest.approx(30 / 400)
    assert data["operations"] is None  # that window carried no per-operation counts
    text = cli("status").out
    assert "Refresh (continuous): queue 3 urgent, 5 new, 0 overdue, 2 in flight" in text
    assert "400 probes, 30 led to a change (7.5%)" in text

    metrics = DaemonMetrics()
    metrics.record_refresh(live)
    samples = {
        f"{s.name}{{{','.join(f'{k}={v}' for k, v in sorted(s.labels.items()))}}}": s.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for s in family.samples
    }
    assert samples["ecsync_probe_hit_ratio{}"] == pytest.approx(0.075)
    assert samples["ecsync_refresh_queue{kind=urgent}"] == 3
    assert samples["ecsync_refresh_queue{kind=in_flight}"] == 2


async def test_the_governor_counts_per_operation_and_a_window_takes_them(tmp_path: Path) -> None:
    """What a continuous engine closes at each reporting window: counts per operation, then 0."""
    from ecsync.amazon.governor import RateGovernor
    from ecsync.clock import Stop
    from ecsync.store.runner import DbRunner

    class Frozen:
        now = 1_800_000_000.0

        def time(self) -> float:
            return self.now

        def monotonic(self) -> float:
            return self.now

    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    upgrade_to_head(engine)
    db = DbRunner(session_factory(engine))
    governor = RateGovernor(db, "client:abc", Stop(), Frozen())
    try:
        await governor.acquire("getItemOffersBatch")  # a full bucket: each slot at once
        await governor.acquire("getCompetitivePricing")
        await governor.throttled("getCompetitivePricing")
        assert governor.take_counts() == {
            "getCompetitivePricing": {"requests": 1, "throttled": 1},
            "getItemOffersBatch": {"requests": 1, "throttled": 0},
        }
        assert governor.operation_counts() == {}
    finally:
        db.close()
        engine.dispose()
