"""Fault matrix: every fault kind the simulator knows, on every API, at 30 %: ``ecsync
sync`` ends with the documented exit code (0: per-item errors are reported, not fatal),
hides nothing and retires nothing because of an error (judged by the simulator's truth),
and a clean ``sync`` once the faults stop leaves every channel item on the oracle.

KINDS and APIS come from the simulator's module, so a fault kind added there joins the
matrix by itself; combinations the simulator declares inapplicable are skipped with its
reason. One small shop per API serves all of that API's kinds in turn (the market moves
before each case, so each faulted cycle has fetching, hiding and pushing to do).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from ecsync.sim import faults as sim_faults
from tests.proof import oracle
from tests.proof.conftest import ProofShop, proof_shop

RATE = 0.3
# BASE's throttle fault answers hour_api_limit: the client waits for the next hour window,
# 0.72 s of wall time at this speed.
SPEED = 5000.0
LATENCY_MEAN_S = 0.02  # `latency` is a mean delay, not a rate: small, so the case stays short
# Kinds whose 30 % the client cannot sit out within a test's bounds, with the reason.
# (None since [channels] timeouts are configurable: the proof config makes a hang cost 1.5 s.)
CLIENT_BOUND: dict[tuple[str, str], str] = {}
CASES = [(api, kind) for api in sim_faults.APIS for kind in sim_faults.KINDS]


def _skip_reason(api: str, kind: str) -> str | None:
    inapplicable: dict[tuple[str, str], str] = getattr(sim_faults, "INAPPLICABLE", {})
    return inapplicable.get((api, kind)) or CLIENT_BOUND.get((api, kind))


@pytest.fixture(scope="module")
def shops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ProofShop]]:
    """One shop per API, started on first use and kept for that API's kinds."""
    with ExitStack() as stack:

        class Lazy(dict[str, ProofShop]):
            def __missing__(self, api: str) -> ProofShop:
                directory = tmp_path_factory.mktemp(f"faults-{api}")
                shop = stack.enter_context(
                    proof_shop(
                        directory, products=80, ebay_share=0.5, seed=11, drift=0.3, speed=SPEED
                    )
                )
                # One clean cycle first: the first after a pull does not reconcile, and every
                # faulted cycle should read the channels back (reconcile_every = 1).
                code, summary = shop.sync()
                assert code == 0 and summary["status"] == "ok", summary
                self[api] = shop
                return shop

        yield Lazy()


def _gone(shop: ProofShop) -> list[tuple[str, str]]:
    """(account, ASIN) of every listing the database holds as gone."""
    with sqlite3.connect(shop.dir / "ecsync.db") as db:
        rows = db.execute(
            "SELECT accounts.name, listings.asin FROM listings JOIN accounts"
            " ON accounts.id = listings.account_id WHERE listings.status = 'gone'"
        ).fetchall()
    return [(str(a), str(b)) for a, b in rows]


def _fault_spec(api: str, kind: str) -> dict[str, Any]:
    return {api: {kind: LATENCY_MEAN_S if kind == "latency" else RATE}}


@pytest.mark.slow
@pytest.mark.parametrize(("api", "kind"), CASES, ids=[f"{a}.{k}" for a, k in CASES])
def test_a_fault_at_30_percent_hides_and_retires_nothing_and_heals(
    shops: dict[str, ProofShop], api: str, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    reason = _skip_reason(api, kind)
    if reason:
        pytest.skip(f"{api}.{kind}: {reason}")
    shop = shops[api]
    shop.sim("PUT", "/_sim/faults", json={})
    shop.sim("POST", "/_sim/market/step", json={"fraction": 0.3, "seed": len(kind) * 7919})
    before = oracle.channel_truth(shop.http)
    want = oracle.oracle(shop.http, before)

    shop.sim("PUT", "/_sim/faults", json=_fault_spec(api, kind))
    code, summary = shop.sync_here(capsys)
    shop.sim("PUT", "/_sim/faults", json={})
    assert code == 0, summary
    assert summary["status"] in ("ok", "partial"), summary

    # No hide caused by an error: what went off sale has no eligible offer in truth.
    after = oracle.channel_truth(shop.http)
    wrongly_hidden = [
        key
        for key, (_platform, item) in after.items()
        if before[key][1].on_sale and not item.on_sale and want[key].on_sale
    ]
    assert wrongly_hidden == []
    # No listing retired by an error: every item still exists on its channel.
    assert _gone(shop) == []

    code, summary = shop.sync_here(capsys)
    assert code == 0 and summary["status"] == "ok", summary
    assert oracle.mismatches(shop.http, want, hidden_exact=False) == []


def test_the_matrix_covers_every_kind_of_every_api() -> None:
    assert {a for a, _k in CASES} == set(sim_faults.APIS)
    assert {k for _a, k in CASES} == set(sim_faults.KINDS)
    assert len(CASES) >= 18
