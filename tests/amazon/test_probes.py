"""Probes (getCompetitivePricing) and single full answers (getItemOffers) against a real
simulator, with what Amazon should say computed here from the offers the test sets.

The oracle is the simulator's documented Buy Box rule, written again below: the cheapest
(listing + shipping) featured offer in condition new that is available now, whatever its
handling time; its landed price is reported as listing + shipping - points. The new offer
count is the number of offers in condition new, any seller, featured or not.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sp_api.asyncio.auth import access_token_client as token_module

from ecsync.amazon.client import COMPETITIVE_PRICING, ITEM_OFFERS, OFFERS_BATCH, OffersClient
from ecsync.amazon.errors import BatchRejected, Throttled, TransientError
from ecsync.amazon.governor import CUT, DOCUMENTED, FLOOR, RateGovernor, pace
from ecsync.amazon.metered import MeteredPricing
from ecsync.clock import Stop
from ecsync.config import AmazonSettings, OfferRules
from ecsync.domain.model import QuoteStatus
from ecsync.domain.probes import (
    Contradiction,
    Probe,
    ProbeError,
    probe_differs,
)
from ecsync.domain.quotes import quote_from_item_error, quote_from_payload
from ecsync.sim.server import SimOptions, running_simulator
from ecsync.sim.state import LWA_CLIENT_ID, LWA_CLIENT_SECRET, LWA_REFRESH_TOKEN
from ecsync.store.engine import make_engine, session_factory
from ecsync.store.migrate import upgrade_to_head
from ecsync.store.runner import DbRunner
from tests.sim.conftest import SimClient

RULES = OfferRules()  # max 72 h handling, new, available now


@pytest.fixture(scope="module")
def sim() -> Iterator[SimClient]:
    # python-amazon-sp-api caches access tokens per refresh token for the whole process: a
    # token from an earlier module's simulator would be refused by this one.
    token_module.cache.clear()
    with running_simulator(SimOptions(products=40, base_accounts=0, ebay_accounts=0)) as handle:
        client = SimClient(handle)
        client.freeze()
        yield client
        client.close()
    token_module.cache.clear()


@pytest.fixture
def fresh(sim: SimClient) -> SimClient:
    """No fault left over, and a full bucket for every operation (0.5 request/s, burst 1)."""
    sim.faults({})
    sim.advance(10)
    return sim


@pytest.fixture
async def client(fresh: SimClient) -> AsyncIterator[OffersClient]:
    offers = OffersClient(_settings(fresh))
    yield offers
    await offers.aclose()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[DbRunner]:
    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    upgrade_to_head(engine)
    runner = DbRunner(session_factory(engine))
    yield runner
    runner.close()
    engine.dispose()


def _settings(sim: SimClient) -> AmazonSettings:
    return AmazonSettings(
        endpoint=sim.url,
        token_url=f"{sim.url}/auth/o2/token",
        client_id=LWA_CLIENT_ID,
        client_secret=SecretStr(LWA_CLIENT_SECRET),
        refresh_token=SecretStr(LWA_REFRESH_TOKEN),
    )


def _offer(price: int, **fields: Any) -> dict[str, Any]:
    return {"price": price, "seller_id": f"A1S{price:08d}", **fields}


def _set(sim: SimClient, asin: str, offers: list[dict[str, Any]]) -> None:
    sim.control("PUT", f"/amazon/{asin}", {"offers": offers} if offers else {"out_of_stock": True})


def _expected(asin: str, offers: list[dict[str, Any]]) -> Probe:
    """The oracle: the simulator's Buy Box rule and new offer count, applied by hand."""
    new = [o for o in offers if o.get("sub_condition", "new") == "new"]
    candidates = [
        o for o in new if o.get("featured", True) and o.get("availability", "NOW") == "NOW"
    ]
    if not candidates:
        return Probe(asin, buy_box_present=False, buy_box_landed=None, new_offer_count=len(new))
    best = min(candidates, key=lambda o: o["price"] + o.get("shipping", 0))
    landed = best["price"] + best.get("shipping", 0) - best.get("points", 0)
    return Probe(
        asin, buy_box_present=True, buy_box_landed=Decimal(landed), new_offer_count=len(new)
    )


SCENARIOS: dict[str, list[dict[str, Any]]] = {
    # The cheapest offer is not featured, a cheaper one ships later, a used one is cheapest
    # of all: the Buy Box is the 5,000 + 300 offer, less its 50 points.
    "buy box among distractors": [
        _offer(5000, shipping=300, points=50),
        _offer(4800, featured=False),
        _offer(4000, availability="FUTURE_WITHOUT_DATE"),
        _offer(3000, sub_condition="good"),
    ],
    "only used offers": [_offer(3000, sub_condition="good"), _offer(3500, sub_condition="mint")],
    "out of stock": [],
    "new offers, none featured": [_offer(4000, featured=False), _offer(4100, featured=False)],
    "many offers": [_offer(6000 + 10 * i, fba=i % 2 == 0) for i in range(7)]
    + [_offer(2000, sub_condition="acceptable")],
}


async def test_probes_match_the_buy_box_rule_and_counts(
    fresh: SimClient, client: OffersClient
) -> None:
    asins = fresh.asins(len(SCENARIOS))
    for asin, offers in zip(asins, SCENARIOS.values(), strict=True):
        _set(fresh, asin, offers)
    answer = await client.competitive_pricing(asins)
    expected = [_expected(a, o) for a, o in zip(asins, SCENARIOS.values(), strict=True)]
    assert answer.items == expected
    assert answer.rate_limit == DOCUMENTED[COMPETITIVE_PRICING].rate  # speed 1
    # Sanity of the scenarios themselves: both kinds of "no Buy Box" are there.
    assert [p.buy_box_present for p in expected] == [True, False, False, False, True]
    assert [p.new_offer_count for p in expected] == [3, 0, 0, 2, 7]
    stats = fresh.stats()["spapi"]["requests"]
    assert stats.get(COMPETITIVE_PRICING) == 1


async def test_a_full_answer_implies_what_the_probe_sees(
    fresh: SimClient, client: OffersClient
) -> None:
    """getItemOffers' Summary and getCompetitivePricing tell the same Buy Box and count, so
    an unchanged market gives no contradiction."""
    for asin, offers in zip(fresh.asins(len(SCENARIOS)), SCENARIOS.values(), strict=True):
        _set(fresh, asin, offers)
        fresh.advance(10)
        full = await client.item_offers(asin)
        fresh.advance(10)
        [probe] = (await client.competitive_pricing([asin])).items
        oracle = _expected(asin, offers)
        assert probe == oracle
        view = full.item.quote_view
        assert view is not None
        assert (view.buy_box_present, view.buy_box_landed, view.new_offer_count) == (
            oracle.buy_box_present,
            oracle.buy_box_landed,
            oracle.new_offer_count,
        )
        assert probe_differs(probe, view) is None


async def test_a_slow_featured_offer_holds_the_buy_box_while_the_source_is_another(
    fresh: SimClient, client: OffersClient
) -> None:
    asin = fresh.asins(1)[0]
    slow = _offer(4000, max_hours=96, min_hours=72)
    source = _offer(4500, max_hours=24)
    _set(fresh, asin, [slow, source])
    full = await client.item_offers(asin)
    assert full.item.payload is not None and full.item.error is None
    quote = quote_from_payload(full.item.payload, RULES)
    # The reseller buys from the 24 h offer; the Buy Box is the 96 h one, 500 yen cheaper.
    assert (quote.status, quote.price, quote.offer_count) == (QuoteStatus.OK, Decimal(4500), 1)
    fresh.advance(10)
    [probe] = (await client.competitive_pricing([asin])).items
    assert probe == Probe(asin, True, Decimal(4000), 2)
    view = full.item.quote_view
    assert probe_differs(probe, view) is None

    # The source sells out; the Buy Box (the slow offer) does not move: only the count shows it.
    _set(fresh, asin, [slow])
    fresh.advance(10)
    [after] = (await client.competitive_pricing([asin])).items
    assert after == Probe(asin, True, Decimal(4000), 1)
    difference = probe_differs(after, view)
    assert difference is not None
    assert difference.reason is Contradiction.FEWER_NEW_OFFERS


async def test_a_probe_of_a_sold_out_item_is_the_most_urgent(
    fresh: SimClient, client: OffersClient
) -> None:
    asin = fresh.asins(1)[0]
    _set(fresh, asin, [_offer(3000), _offer(3200, max_hours=96)])
    view = (await client.item_offers(asin)).item.quote_view
    _set(fresh, asin, [])
    fresh.advance(10)
    [probe] = (await client.competitive_pricing([asin])).items
    assert probe == Probe(asin, False, None, 0)
    difference = probe_differs(probe, view)
    assert difference is not None and difference.reason is Contradiction.NO_NEW_OFFERS


async def test_an_unknown_asin_is_a_probe_error_not_an_empty_buy_box(
    fresh: SimClient, client: OffersClient
) -> None:
    known, unknown = fresh.asins(2)
    _set(fresh, known, [_offer(2500)])
    fresh.control("PUT", f"/amazon/{unknown}", {"unknown": True})
    try:
        answer = await client.competitive_pricing([known, unknown, "B0NOTINCAT"])
        fresh.advance(10)
        single = await client.item_offers(unknown)
    finally:
        fresh.control("PUT", f"/amazon/{unknown}", {"unknown": False})
    first, second, third = answer.items
    assert first == Probe(known, True, Decimal(2500), 1)
    for asin, refused in ((unknown, second), ("B0NOTINCAT", third)):
        assert isinstance(refused, ProbeError), refused
        assert refused.asin == asin and "ClientError" in refused.reason
    # getItemOffers refuses it with 400 InvalidInput naming the ASIN, read as a batch entry.
    item = single.item
    assert (item.payload, item.status_code, item.code) == (None, 400, "InvalidInput")
    quote = quote_from_item_error(item.asin, item.status_code, item.code, item.message)
    assert quote.status is QuoteStatus.UNKNOWN_ASIN
    assert single.rate_limit == DOCUMENTED[ITEM_OFFERS].rate  # the header rides on a 400


async def test_a_repeated_asin_is_asked_once(fresh: SimClient, client: OffersClient) -> None:
    a, b = fresh.asins(2)
    _set(fresh, a, [_offer(1000)])
    _set(fresh, b, [_offer(1100), _offer(1200)])
    answer = await client.competitive_pricing([a, b, a])
    assert answer.items == [
        _expected(a, [_offer(1000)]),
        _expected(b, [_offer(1100), _offer(1200)]),
        _expected(a, [_offer(1000)]),
    ]
    with pytest.raises(ValueError, match="1 to 20"):
        await client.competitive_pricing([f"B0{i:08d}" for i in range(21)])


@pytest.mark.parametrize("fault", ["malformed", "error500"])
async def test_an_unreadable_answer_raises_a_transient_error(
    fresh: SimClient, client: OffersClient, fault: str
) -> None:
    asins = fresh.asins(3)
    await client.ensure_token()  # before the fault: the token endpoint is not faulted anyway
    fresh.faults({"spapi": {fault: 1.0}})
    for _ in range(3):  # malformed: a truncated body or an HTML page, whichever comes
        fresh.advance(10)
        with pytest.raises(TransientError):
            await client.competitive_pricing(asins)
        fresh.advance(10)
        with pytest.raises(TransientError):
            await client.item_offers(asins[0])


async def test_a_failed_entry_is_a_probe_error_for_that_asin_only(
    fresh: SimClient, client: OffersClient
) -> None:
    asins = fresh.asins(5)
    offers = [[_offer(1000 + 100 * i)] for i in range(5)]
    for asin, asin_offers in zip(asins, offers, strict=True):
        _set(fresh, asin, asin_offers)
    fresh.faults({"spapi": {"item_error": 1.0}})
    answer = await client.competitive_pricing(asins)
    errors = [item for item in answer.items if isinstance(item, ProbeError)]
    assert len(errors) == 1 and "ServerError" in errors[0].reason
    for asin, asin_offers, item in zip(asins, offers, answer.items, strict=True):
        if item is not errors[0]:
            assert item == _expected(asin, asin_offers)
    assert probe_differs(errors[0], None) is None


async def _rate(db: DbRunner, governor: RateGovernor, operation: str) -> float:
    return await db.run(lambda s: governor._row(s, operation).rate)


async def test_metered_calls_learn_the_granted_rate_of_their_own_operation(
    fresh: SimClient, client: OffersClient, db: DbRunner
) -> None:
    governor = RateGovernor(db, client.credentials_key, Stop())
    metered = MeteredPricing(client, governor)
    asin = fresh.asins(1)[0]
    _set(fresh, asin, [_offer(1500)])
    probes = await metered.competitive_pricing([asin])
    full = await metered.item_offers(asin)
    assert probes.items == [_expected(asin, [_offer(1500)])]
    assert full.item.payload is not None
    assert await governor.granted_rate(COMPETITIVE_PRICING) == 0.5
    assert await governor.granted_rate(ITEM_OFFERS) == 0.5
    assert await governor.granted_rate(OFFERS_BATCH) is None  # untouched
    assert metered.requests == {COMPETITIVE_PRICING: 1, ITEM_OFFERS: 1}


async def test_a_throttled_probe_backs_off_its_own_bucket_only(
    fresh: SimClient, client: OffersClient, db: DbRunner
) -> None:
    governor = RateGovernor(db, client.credentials_key, Stop())
    metered = MeteredPricing(client, governor)
    before = {op: await _rate(db, governor, op) for op in (ITEM_OFFERS, OFFERS_BATCH)}
    fresh.faults({"spapi": {"throttle": 1.0}})
    with pytest.raises(Throttled):
        await metered.competitive_pricing(fresh.asins(2))
    documented = DOCUMENTED[COMPETITIVE_PRICING].rate
    expected = max(documented * FLOOR, pace(documented) * CUT)
    assert await _rate(db, governor, COMPETITIVE_PRICING) == pytest.approx(expected)
    assert expected < pace(documented)
    assert {op: await _rate(db, governor, op) for op in before} == before
    assert metered.throttled == {COMPETITIVE_PRICING: 1}
    assert fresh.stats()["spapi"]["throttled"] >= 1


async def test_a_single_answer_is_the_same_as_its_batch_entry(
    fresh: SimClient, client: OffersClient
) -> None:
    asin = fresh.asins(1)[0]
    _set(fresh, asin, [_offer(3000, max_hours=96), _offer(3300, shipping=200, fba=True)])
    batch = await client.offers_batch([asin])
    single = await client.item_offers(asin)
    assert single.item == batch.items[0]
    assert single.item.payload is not None
    quote = quote_from_payload(single.item.payload, RULES)
    assert (quote.status, quote.price) == (QuoteStatus.OK, Decimal(3500))


async def test_a_refusal_of_the_request_is_not_about_the_asin(fresh: SimClient) -> None:
    """A wrong marketplace: getCompetitivePricing is rejected as a whole; getItemOffers'
    refusal does not name the ASIN, so the quote rules read it as an error, never as an
    unknown ASIN."""
    settings = _settings(fresh).model_copy(update={"marketplace_id": "A1PA6795UKMFR9"})
    client = OffersClient(settings)
    asin = fresh.asins(1)[0]
    try:
        with pytest.raises(BatchRejected, match="HTTP 400"):
            await client.competitive_pricing([asin])
        fresh.advance(10)
        single = await client.item_offers(asin)
    finally:
        await client.aclose()
    item = single.item
    assert (item.payload, item.status_code, item.code) == (None, 400, "InvalidInput")
    quote = quote_from_item_error(item.asin, item.status_code, item.code, item.message)
    assert quote.status is QuoteStatus.ERROR
