"""Build a simulator's whole starting state from its options, and write a matching config.

The channels must start as a correct sync would have left them, so a first ecsync cycle
against a fresh simulator finds exactly the ``--drift`` products to change. "Correct" is the
simulator's own small rules in :mod:`ecsync.sim.synced` (the default offer rules and the
default strategies the written config names: ``markup`` for BASE, ``ebay_formula`` for
eBay), applied to the market's offers; never ecsync's own domain code, so a client bug
cannot agree with itself. Only then does the drift move some Amazon offers.
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

from ecsync.sim import synced
from ecsync.sim.base_seeding import seed_base_shapes
from ecsync.sim.channels import BaseAccount, BaseItem, EbayAccount, EbayOffer, price_to_cents
from ecsync.sim.clock import SimClock
from ecsync.sim.events import MarketEvents
from ecsync.sim.exposure import ExposureMeter
from ecsync.sim.faults import Faults, parse_fault_spec
from ecsync.sim.market import JAPAN_MARKETPLACE_ID, Market, Product
from ecsync.sim.options import SimOptions
from ecsync.sim.state import LWA_CLIENT_ID, LWA_CLIENT_SECRET, LWA_REFRESH_TOKEN, SimState
from ecsync.sim.stats import SimStats

log = logging.getLogger(__name__)

BASE_ITEM_ID_START = 80_000_000
EBAY_OFFER_ID_START = 7_000_000_000
EBAY_OFFER_ID_STRIDE = 100_000_000


def drift_seed(seed: int) -> int:
    return random.Random(f"drift:{seed}").getrandbits(32)


def build_state(options: SimOptions, clock: SimClock | None = None) -> SimState:
    """Market, channels (synced), then drift; deterministic for the same options."""
    options.check()
    clock = clock or SimClock(options.speed)
    market = Market.generate(options.seed, options.products, clock.now_datetime().date())
    faults = Faults(options.seed)
    if options.faults:
        faults.replace(parse_fault_spec(options.faults))
    base = {f"base-{i}": BaseAccount(i) for i in range(1, options.base_accounts + 1)}
    ebay = {f"ebay-{i}": EbayAccount(i) for i in range(1, options.ebay_accounts + 1)}
    state = SimState(
        options=options,
        clock=clock,
        market=market,
        faults=faults,
        stats=SimStats(list(base), list(ebay)),
        base=base,
        ebay=ebay,
    )
    state.register_refresh_tokens()
    seed_channels(state)
    seed_base_shapes(state)
    moved = market.step(options.drift, drift_seed(options.seed)) if options.drift else {}
    state.seeding = {"drift": moved}
    attach_market_clock(state)
    log.info(
        "simulator seeded: %d products, %d BASE and %d eBay accounts, drift %s",
        options.products,
        len(base),
        len(ebay),
        moved,
    )
    return state


def attach_market_clock(state: SimState) -> None:
    """The exposure meter from now on, and the moving market when ``--market-rate`` > 0."""
    options = state.options
    start = state.clock.now()
    meter = ExposureMeter(state.market, state.base, state.ebay, start)
    state.exposure = meter
    state.market.listener = meter.asin_changed
    if options.market_rate > 0:
        state.events = MarketEvents(
            state.market,
            options.seed,
            options.market_rate,
            options.volatility,
            start,
            held=options.market_hold,
        )
        meter.catch_up = state.events.advance


class _Pricer:
    """The source cost of each product by the simulator's own rules, computed once."""

    def __init__(self, state: SimState) -> None:
        self.market = state.market
        self._cost: dict[int, int | None] = {}

    def cost(self, product: Product) -> int | None:
        """The landed source price in yen, or None when no offer qualifies."""
        if product.index not in self._cost:
            self._cost[product.index] = synced.source_cost(self.market.offers(product))
        return self._cost[product.index]


def seed_channels(state: SimState) -> None:
    pricer = _Pricer(state)
    products = state.market.products
    now = int(state.clock.now())
    accounts = list(state.base.values())
    for index, product in enumerate(products):
        if not accounts:
            break
        account = accounts[index % len(accounts)]
        _seed_base_item(account, product, pricer, now, index)
    for ebay in state.ebay.values():
        rng = random.Random(f"ebay:{state.options.seed}:{ebay.index}")
        count = round(len(products) * state.options.ebay_share)
        for index in sorted(rng.sample(range(len(products)), count)):
            _seed_ebay_offer(ebay, products[index], pricer)


def _seed_base_item(
    account: BaseAccount, product: Product, pricer: _Pricer, now: int, index: int
) -> None:
    # What the item showed before the last sync; kept when the sync had to hide it.
    price = int(round(product.base_price * 1.3, -1)) or 10
    visible, stock = 0, 1
    cost = pricer.cost(product)
    if cost is not None:
        price, visible, stock = synced.base_price(cost), 1, 1
    item_id = BASE_ITEM_ID_START + index
    account.add(
        BaseItem(
            item_id,
            title=pricer.market.title(product),
            price=price,
            stock=stock,
            visible=visible,
            identifier=product.asin,
            now=now,
            list_order=index + 1,
        )
    )


def _seed_ebay_offer(account: EbayAccount, product: Product, pricer: _Pricer) -> None:
    cost = pricer.cost(product)
    if cost is not None:
        price, quantity = synced.ebay_price(cost), 1
    else:
        price, quantity = synced.ebay_price(product.base_price), 0
    offer_id = str(EBAY_OFFER_ID_START + account.index * EBAY_OFFER_ID_STRIDE + product.index)
    offer = EbayOffer(offer_id, product.asin, pricer.market.title(product), 0, quantity)
    offer.price_cents = price_to_cents(price)
    account.add(offer)


# --- the config file ------------------------------------------------------------------


def _toml(value: str) -> str:
    return json.dumps(value)  # a JSON string of ASCII text is a valid TOML basic string


def config_text(state: SimState, url: str) -> str:
    """An ``ecsync.toml`` in the shape of docs/sim-config-example.toml for this simulator."""
    lines = [
        "# What `ecsync sim --write-config PATH` writes (values vary with the port and seed).",
        f"# Simulator {url}, seed {state.options.seed}, {state.options.products} products.",
        "[database]",
        'url = ""            # empty: ecsync.db beside this file',
        "",
        "[amazon]",
        f"endpoint = {_toml(url)}",
        f"token_url = {_toml(url + '/auth/o2/token')}",
        f"marketplace_id = {_toml(JAPAN_MARKETPLACE_ID)}",
        f"client_id = {_toml(LWA_CLIENT_ID)}",
        f"client_secret = {_toml(LWA_CLIENT_SECRET)}",
        f"refresh_token = {_toml(LWA_REFRESH_TOKEN)}",
    ]
    for base in state.base.values():
        lines += [
            "",
            "[[accounts]]",
            f"name = {_toml(base.name)}",
            'platform = "base"',
            f"endpoint = {_toml(url)}",
            f"client_id = {_toml(base.client_id)}",
            f"client_secret = {_toml(base.client_secret)}",
            f"refresh_token = {_toml(base.refresh_token)}",
            f"redirect_uri = {_toml(base.redirect_uri)}",
            'pricing = "markup"',
        ]
    for ebay in state.ebay.values():
        lines += [
            "",
            "[[accounts]]",
            f"name = {_toml(ebay.name)}",
            'platform = "ebay"',
            f"endpoint = {_toml(url)}",
            f"client_id = {_toml(ebay.client_id)}",
            f"client_secret = {_toml(ebay.client_secret)}",
            f"refresh_token = {_toml(ebay.refresh_token)}",
            'pricing = "ebay_formula"',
        ]
    lines += ["", "[daemon]", 'interval = "3h"', "", "[logging]", 'file = "ecsync.log"', ""]
    if state.options.speed != 1:
        lines += [
            "[runtime]",
            "# The simulator runs this many times faster than real time: ecsync's channel",
            "# windows, daemon interval, staleness and deadlines follow its clock.",
            f"time_scale = {state.options.speed:g}",
            "",
        ]
    return "\n".join(lines)


def write_config(path: Path, state: SimState, url: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config_text(state, url), encoding="utf-8")
    log.info("wrote simulator config %s", path)
    return path
