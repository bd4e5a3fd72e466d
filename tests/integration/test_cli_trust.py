"""What a new user hit from the command line, run as they ran it: ``python -m ecsync ...`` as a
subprocess against the simulator, judged by its exit status, its output and the simulator's
truth (issue #9, section 1b)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, update
from sqlalchemy.orm import Session

from ecsync.store.schema import Account, Change, Cycle, Listing, Token
from tests.conftest import CliResult
from tests.integration.conftest import Shop, import_channel_listings


def _ecsync(
    shop: Shop, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real entry point, as cron or a shell would run it."""
    return subprocess.run(
        [sys.executable, "-m", "ecsync", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "ECSYNC_CONFIG": str(shop.config), **(env or {})},
        cwd=shop.dir,
        timeout=300,
    )


def _sync_json(
    shop: Shop, *args: str, env: Mapping[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    result = _ecsync(shop, "sync", "--json", *args, env=env)
    assert result.stdout.strip(), result.stderr
    summary: dict[str, Any] = json.loads(result.stdout)
    return result.returncode, summary


def _rows(shop: Shop, query: Any) -> list[Any]:
    engine = create_engine(f"sqlite:///{shop.dir / 'ecsync.db'}")
    with Session(engine) as session:
        rows = list(session.execute(query).all())
    engine.dispose()
    return rows


def _listings(shop: Shop) -> list[tuple[Listing, str]]:
    query = select(Listing, Account.name).join(Account, Account.id == Listing.account_id)
    return [(row[0], row[1]) for row in _rows(shop, query)]


def _base_items(shop: Shop, account: str) -> dict[str, dict[str, Any]]:
    items = shop.sim("GET", f"/_sim/base/{account}/items")["items"]
    return {str(item["item_id"]): item for item in items}


def _ebay_offers(shop: Shop, account: str) -> dict[str, dict[str, Any]]:
    offers = shop.sim("GET", f"/_sim/ebay/{account}/offers")["offers"]
    return {offer["sku"]: offer for offer in offers}


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- a failed sync exits 1 ---------------------------------------------------------------


def test_a_refused_amazon_secret_exits_1(
    make_shop: Callable[..., Shop], cli: Callable[..., CliResult]
) -> None:
    shop = make_shop(products=40, base_accounts=1, ebay_accounts=0)
    assert cli("pull", "--all").code == 0
    code, summary = _sync_json(shop, env={"ECSYNC_AMAZON__CLIENT_SECRET": "not-the-secret"})
    assert summary["status"] == "failed"
    assert code == 1


def test_a_total_sp_api_outage_is_failed_and_exits_1(
    make_shop: Callable[..., Shop], cli: Callable[..., CliResult]
) -> None:
    shop = make_shop(products=20, base_accounts=1, ebay_accounts=0)
    assert cli("pull", "--all").code == 0
    shop.sim("PUT", "/_sim/faults", json={"spapi": {"error500": 1.0}})
    shop.sim("POST", "/_sim/stats/reset")
    # One batch, no retry: the governor's pause after a 500 would only cost time here.
    code, summary = _sync_json(shop, env={"ECSYNC_AMAZON__MAX_RETRIES": "0"})
    assert summary["quotes_error"] == 20
    assert summary["quotes_ok"] == 0
    assert summary["status"] == "failed"
    assert code == 1
    assert shop.stats()["base"]["base-1"]["writes"] == 0  # an outage hides nothing


def test_a_simulator_that_is_down_exits_1(
    make_shop: Callable[..., Shop], cli: Callable[..., CliResult]
) -> None:
    shop = make_shop(products=40, base_accounts=1, ebay_accounts=0)
    assert cli("pull", "--all").code == 0
    dead = f"http://127.0.0.1:{_closed_port()}"
    shop.config.write_text(
        shop.config.read_text(encoding="utf-8").replace(shop.url, dead), encoding="utf-8"
    )
    code, summary = _sync_json(shop)
    assert summary["status"] == "failed"
    assert code == 1


def test_a_good_sync_exits_0(make_shop: Callable[..., Shop], cli: Callable[..., CliResult]) -> None:
    shop = make_shop(products=40, base_accounts=1, ebay_accounts=0)
    assert cli("pull", "--all").code == 0
    code, summary = _sync_json(shop)
    assert (code, summary["status"]) == (0, "ok")


# --- one account's refused token stays with that account ----------------------------------


@pytest.mark.parametrize("refused_at", ["read", "push"])
def test_one_refused_base_account_does_not_stop_the_others(
    make_shop: Callable[..., Shop], cli: Callable[..., CliResult], refused_at: str
) -> None:
    shop = make_shop(products=60, base_accounts=2, ebay_accounts=1, ebay_share=1.0, drift=0.0)
    import_channel_listings(shop, cli)  # no channel call: base-2 has no token yet
    refused = {"ECSYNC_ACCOUNT__BASE_2__REFRESH_TOKEN": "revoked-by-the-seller"}
    read = "--reconcile"
    if refused_at == "push":
        # Synced while base-2 was fine; then its database comes back from an old backup:
        # BASE rotated the refresh token since, so the stored one is refused too.
        assert _sync_json(shop)[0] == 0
        engine = create_engine(f"sqlite:///{shop.dir / 'ecsync.db'}")
        with engine.begin() as connection:
            connection.execute(
                update(Token)
                .where(Token.owner == "base-2")
                .values(access_token=None, refresh_token="rotated-away-since-the-backup")
            )
        engine.dispose()
        read = "--no-reconcile"
    # One source sells out per BASE account; each is on ebay-1 too (ebay_share 1.0).
    base1 = next(iter(v for v in _base_items(shop, "base-1").values() if v["visible"]))
    base2 = next(iter(v for v in _base_items(shop, "base-2").values() if v["visible"]))
    for item in (base1, base2):
        shop.sim("PUT", f"/_sim/amazon/{item['identifier']}", json={"out_of_stock": True})
    shop.sim("POST", "/_sim/stats/reset")

    code, summary = _sync_json(shop, read, env=refused)

    assert code == 0, summary
    assert summary["status"] == "partial"
    assert set(summary["account_errors"]) == {"base-2"}
    assert "base-2" in summary["error"]
    after1, after2 = _base_items(shop, "base-1"), _base_items(shop, "base-2")
    assert not after1[str(base1["item_id"])]["visible"]  # hidden on base-1
    assert after2[str(base2["item_id"])]["visible"]  # base-2 could not be reached
    offers = _ebay_offers(shop, "ebay-1")
    for item in (base1, base2):
        assert offers[item["identifier"]]["availableQuantity"] == 0  # hidden on eBay
    assert shop.stats()["base"]["base-2"]["writes"] == 0
    # base-2's hide waits in the journal, planned, for a re-authorised account.
    waiting = _rows(
        shop,
        select(Change.kind, Change.status)
        .join(Listing, Listing.id == Change.listing_id)
        .join(Account, Account.id == Listing.account_id)
        .where(Account.name == "base-2", Listing.asin == base2["identifier"]),
    )
    assert ("hide", "planned") in waiting
    status = _ecsync(shop, "status", "--json")
    assert status.returncode == 0
    last = json.loads(status.stdout)["cycles"][0]
    assert last["status"] == "partial" and "base-2" in last["error"]


def test_every_account_refused_is_failed(
    make_shop: Callable[..., Shop], cli: Callable[..., CliResult]
) -> None:
    shop = make_shop(products=40, base_accounts=1, ebay_accounts=0)
    import_channel_listings(shop, cli)
    code, summary = _sync_json(shop, env={"ECSYNC_ACCOUNT__BASE_1__REFRESH_TOKEN": "wrong"})
    assert summary["status"] == "failed"
    assert code == 1


# --- hand edits on the channel are put back by the next sync -------------------------------


def test_a_hand_edited_price_is_put_back_by_one_sync(
    make_shop: Callable[..., Shop], cli: Callable[..., CliResult]
) -> None:
    shop = make_shop(products=60, base_accounts=1, ebay_accounts=0, drift=0.0)
    assert cli("pull", "--all").code == 0
    code, _summary = _sync_json(shop)
    assert code == 0
    item = next(v for v in _base_items(shop, "base-1").values() if v["visible"])
    synced_price = item["price"]
    by_hand = synced_price * 4 // 5  # a slip that sells 20 % under the rule's price
    shop.sim("PATCH", f"/_sim/base/base-1/items/{item['item_id']}", json={"price": by_hand})

    code, summary = _sync_json(shop, "--no-reconcile")
    assert code == 0
    assert _base_items(shop, "base-1")[str(item["item_id"])]["price"] == by_hand  # not read

    code, summary = _sync_json(shop)  # the default: BASE is read every cycle
    assert code == 0 and summary["reconciled"]["base-1"]["drifted"] >= 1
    assert _base_items(shop, "base-1")[str(item["item_id"])]["price"] == synced_price


# --- a manual sync does not wait for hours on BASE's hourly limit --------------------------


def test_sync_leaves_what_the_hourly_limit_blocks_planned_at_its_deadline(
    make_shop: Callable[..., Shop], cli: Callable[..., CliResult]
) -> None:
    shop = make_shop(products=150, base_accounts=1, ebay_accounts=0, speed=100.0, drift=0.3)
    assert cli("pull", "--all").code == 0
    _code, preview = _sync_json(shop, "--dry-run")
    planned = len(preview["changes"])
    assert planned >= 10
    limit = planned // 2
    shop.sim("PATCH", "/_sim/base/base-1", json={"hourly_limit": limit})
    shop.sim("POST", "/_sim/stats/reset")

    # 1 s of configured time at time_scale 100: long gone when the hour runs out.
    result = _ecsync(shop, "sync", "--deadline", "1s")

    assert result.returncode == 0, result.stderr
    assert shop.stats()["base"]["base-1"]["limit_errors"] >= 1
    assert "partial: deadline reached" in result.stdout
    cycle = _rows(shop, select(Cycle.status, Cycle.summary).order_by(Cycle.id.desc()))[0]
    assert cycle.status == "partial"
    applied, pending = cycle.summary["changes_applied"], cycle.summary["changes_pending"]
    assert 0 < applied <= limit
    assert applied + pending == planned
    assert shop.stats()["base"]["base-1"]["writes"] == applied

    shop.sim("PATCH", "/_sim/base/base-1", json={"hourly_limit": 5000})
    code, summary = _sync_json(shop)  # the next run sends the rest
    assert (code, summary["status"]) == (0, "ok")


def test_a_bad_deadline_is_a_usage_error(
    make_shop: Callable[..., Shop], cli: Callable[..., CliResult]
) -> None:
    shop = make_shop(products=20, base_accounts=1, ebay_accounts=0)
    result = _ecsync(shop, "sync", "--deadline", "soon")
    assert result.returncode == 2
    assert "--deadline" in result.stderr


# --- an interrupted sync --json still says what it did -------------------------------------


def test_an_interrupted_sync_json_prints_its_partial_summary(
    make_shop: Callable[..., Shop], cli: Callable[..., CliResult]
) -> None:
    shop = make_shop(products=200, base_accounts=1, ebay_accounts=0, speed=2.0)
    assert cli("pull", "--all").code == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "ecsync", "sync", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "ECSYNC_CONFIG": str(shop.config)},
    )
    log = shop.dir / "ecsync.log"
    deadline = time.monotonic() + 60
    while "batch 1/10" not in (log.read_text(encoding="utf-8") if log.exists() else ""):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, _err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    summary = json.loads(out)
    assert summary["status"] == "partial"
    assert "interrupted" in summary["error"]
    assert summary["asins"] == 200


# --- small things --------------------------------------------------------------------------


def test_import_errors_name_the_file_and_count_right(
    make_shop: Callable[..., Shop], cli: Callable[..., CliResult]
) -> None:
    shop = make_shop(products=20, base_accounts=1, ebay_accounts=0)
    path = shop.dir / "listings.csv"
    path.write_text(
        "platform,account,asin,item_id,sku\nbase,base-1,B000000001,1,\nbase,nobody,B000000002,2,\n",
        encoding="utf-8",
    )
    result = _ecsync(shop, "import", "listings.csv")
    assert result.returncode == 2
    assert "listings.csv: nothing imported, 1 bad row:" in result.stdout
    assert "listings.csv: read as UTF-8, 2 rows" in result.stdout
    assert "listings.csv: line 3: unknown account 'nobody'" in result.stderr


def test_changes_sent_before_a_kill_are_unknown_not_superseded(
    make_shop: Callable[..., Shop], cli: Callable[..., CliResult]
) -> None:
    shop = make_shop(products=300, base_accounts=1, ebay_accounts=0, drift=0.5)
    assert cli("pull", "--all").code == 0
    # Slow edits (0.2 s mean): the push lasts several seconds, so a test process starved by
    # a busy machine still kills it while a chunk is out, not after the last one settled.
    shop.sim("PUT", "/_sim/faults", json={"base": {"latency": 0.2}})
    proc = subprocess.Popen(
        [sys.executable, "-m", "ecsync", "sync"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "ECSYNC_CONFIG": str(shop.config)},
    )
    try:
        deadline = time.monotonic() + 60
        while shop.stats()["base"]["base-1"]["writes"] < 5:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    left = dict(_rows(shop, select(Change.id, Change.status).where(Change.status != "applied")))
    sent = {i for i, s in left.items() if s == "sent"}
    planned = {i for i, s in left.items() if s == "planned"}
    assert sent, "the kill came while changes were out"
    shop.sim("PUT", "/_sim/faults", json={})
    assert _ecsync(shop, "sync").returncode == 0
    after = dict(_rows(shop, select(Change.id, Change.status)))
    assert {after[i] for i in sent} == {"unknown"}
    assert {after[i] for i in planned} <= {"superseded"}
    errors = _rows(shop, select(Change.error).where(Change.id.in_(sent)))
    assert all("sent before an interruption" in e for (e,) in errors)


def test_the_demo_hint_names_a_command_that_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ecsync.cli import invocation

    assert invocation(str(tmp_path / "__main__.py")) == f"{sys.executable} -m ecsync"
    venv_bin = tmp_path / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "ecsync").write_text("#!/bin/sh\n", encoding="utf-8")
    (venv_bin / "ecsync").chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", "/nonexistent")  # `make demo` puts nothing on PATH
    assert invocation(str(venv_bin / "ecsync")) == ".venv/bin/ecsync"
    monkeypatch.setenv("PATH", str(venv_bin))  # an activated venv: plain `ecsync` works
    assert invocation(str(venv_bin / "ecsync")) == "ecsync"


# --- a channel that is down is not hammered until the deadline ------------------------------


def test_a_channel_that_is_down_stops_for_the_cycle_and_its_changes_wait(
    make_shop: Callable[..., Shop], cli: Callable[..., CliResult]
) -> None:
    shop = make_shop(products=60, base_accounts=1, ebay_accounts=0, drift=0.0)
    assert cli("pull", "--all").code == 0
    visible = [v for v in _base_items(shop, "base-1").values() if v["visible"]][:6]
    for item in visible:
        shop.sim("PUT", f"/_sim/amazon/{item['identifier']}", json={"out_of_stock": True})
    shop.sim("PUT", "/_sim/faults", json={"base": {"error500": 1.0}})
    shop.sim("POST", "/_sim/stats/reset")

    fast = {"ECSYNC_CHANNELS__RETRY_BASE_S": "0.01"}  # the adapter's own backoff, shortened
    code, summary = _sync_json(shop, "--no-reconcile", env=fast)

    shop.sim("PUT", "/_sim/faults", json={})
    assert code == 0, summary
    assert summary["status"] == "partial"
    assert set(summary["channel_unavailable"]) == {"base-1"}
    assert "base-1" in summary["error"] and "deadline" not in summary["error"]
    # Three rounds of at most 6 changes, each call tried 1 + max_retries (3) times: bounded,
    # where retrying until the deadline made hundreds of calls.
    assert summary["channel_calls"] <= 3 * 6 * 4
    assert summary["changes_pending"] == 6
    # The channel is back: the next sync sends what waited.
    code, summary = _sync_json(shop, "--no-reconcile")
    assert (code, summary["status"]) == (0, "ok"), summary
    after = _base_items(shop, "base-1")
    assert all(not after[str(item["item_id"])]["visible"] for item in visible)
