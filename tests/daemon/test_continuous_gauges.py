"""Issue 11, what the seller sees: in continuous mode a reporting window is always working,
so the gauges read from the store (quote age, quote counts) must be re-read while it runs,
not only between windows (they stayed as old as the daemon), and a mass-hide trip must be
alerted when it happens, not when the window closes."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.daemon.conftest import (
    DaemonProcess,
    Db,
    Webhook,
    metrics_url,
    set_config,
    wait_for,
)
from tests.integration.conftest import Shop

WINDOW = "1h"  # simulated: 36 real seconds at the simulator's 100x, longer than the test
TOP = "ecsync_quote_age_seconds{quantile=1}"


def _samples(url: str) -> dict[str, float]:
    response = httpx.get(f"{url}/metrics", timeout=5)
    assert response.status_code == 200
    return {
        f"{s.name}{{{','.join(f'{k}={v}' for k, v in sorted(s.labels.items()))}}}": s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def test_quote_age_gauges_move_while_the_first_window_runs(
    shop_for_daemon: Callable[..., tuple[Shop, Db]],
    daemons: Callable[..., DaemonProcess],
) -> None:
    shop, db = shop_for_daemon(speed=100.0, products=60)
    set_config(shop.config, "daemon", mode="continuous", window=WINDOW, metrics_port=0)
    daemon = daemons(shop.config)
    url = metrics_url(shop.dir)
    wait_for(lambda: db.cycles(daemon.pid), "the first window running")

    # A gauge holds what its last read of the store saw: it moves only if the store is
    # read again while the window works.
    first = wait_for(lambda: (s := _samples(url)).get(TOP) is not None and s, "a quote age")
    second = wait_for(
        lambda: (s := _samples(url)).get(TOP) not in (None, first[TOP]) and s,
        "the quote-age gauge to move",
    )
    assert 0 <= second["ecsync_quote_age_seconds{quantile=0.5}"] <= second[TOP]
    # Both reads fell inside the first window: no window had finished yet.
    assert db.finished(daemon.pid) == [], db.finished(daemon.pid)
    assert [c["status"] for c in db.cycles(daemon.pid)] == ["running"]
    daemon.stop()


def test_a_mass_hide_trip_is_alerted_while_its_window_runs(
    shop_for_daemon: Callable[..., tuple[Shop, Db]],
    daemons: Callable[..., DaemonProcess],
    webhook: Webhook,
) -> None:
    shop, db = shop_for_daemon(speed=100.0, products=60)
    set_config(shop.config, "daemon", mode="continuous", window=WINDOW, alerts=[webhook.url])
    items = shop.sim("GET", "/_sim/base/base-1/items")["items"]
    visible = sorted({item["identifier"] for item in items if item["visible"] == 1})
    # Half the shop's sources sell out at once: far over 5 % of the listed items in the
    # rolling window and over min_hides (5), so the guard must trip on the first quotes.
    gone = visible[: len(visible) // 2]
    assert len(gone) >= 10, visible
    for asin in gone:
        shop.sim("PUT", f"/_sim/amazon/{asin}", json={"out_of_stock": True})
    daemon = daemons(shop.config)

    tripped = wait_for(
        lambda: [m for m in webhook.messages if "mass-hide guard tripped" in m.get("title", "")],
        "the mass-hide trip alert",
    )
    # Said while the first window still runs, not at its end (36 s away).
    assert db.finished(daemon.pid) == [], db.finished(daemon.pid)
    assert [c["status"] for c in db.cycles(daemon.pid)] == ["running"]
    on_base = [m for m in tripped if "base-1" in m["title"]]
    assert len(on_base) == 1 and "held" in on_base[0]["message"], tripped
    daemon.stop()
