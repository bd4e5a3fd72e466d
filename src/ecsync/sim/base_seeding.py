"""BASE shops as real sellers keep them: some items with variations, a few that the API
cannot edit. Opt-in (``--base-variations``, ``--base-uneditable``), applied after the
channels are seeded as synced, and deterministic for the same seed.

An item given variations keeps what it showed: the variation that carries the ASIN holds
the item's synced stock, the others hold stock of their own that the seller manages, and
the item's ``stock`` becomes the sum, as on BASE. Three shapes, in a seeded mix:

- ``only``: one variation, without a product code (its stock is the item's);
- ``coded``: two or three variations, one whose ``variation_identifier`` is the ASIN;
- ``uncoded``: two variations, neither coded: nothing says which one is the ASIN.
"""

from __future__ import annotations

import random

from ecsync.sim.channels import UNEDITABLE, BaseAccount, BaseItem, BaseVariation
from ecsync.sim.state import SimState

SHAPES = ("only", "coded", "coded", "uncoded")  # twice as many coded as either other shape
COLOURS = ("黒", "白", "赤", "青")


def seed_base_shapes(state: SimState) -> None:
    options = state.options
    for account in state.base.values():
        if options.base_variations > 0:
            _seed_variations(account, options.base_variations, options.seed)
        if options.base_uneditable > 0:
            _seed_uneditable(account, options.base_uneditable, options.seed)


def _seed_variations(account: BaseAccount, share: float, seed: int) -> None:
    rng = random.Random(f"variations:{seed}:{account.index}")
    for item in account.items.values():
        if rng.random() < share:
            item.set_variations(variations_for(item, rng.choice(SHAPES), rng))


def variations_for(item: BaseItem, shape: str, rng: random.Random) -> list[BaseVariation]:
    """The variations of one item of ``shape``; the first holds the item's own stock."""
    count = 1 if shape == "only" else rng.choice((2, 3)) if shape == "coded" else 2
    out = []
    for index in range(count):
        stock = item.stock if index == 0 else rng.randint(0, 3)
        if shape == "coded":
            code: str | None = item.identifier if index == 0 else f"{item.identifier}-{index}"
        else:
            code = None
        name = COLOURS[index % len(COLOURS)]
        out.append(BaseVariation(item.item_id * 100 + index + 1, name, stock, code))
    if shape == "coded":
        rng.shuffle(out)  # the coded variation is not always the first one
    return out


def _seed_uneditable(account: BaseAccount, count: int, seed: int) -> None:
    rng = random.Random(f"uneditable:{seed}:{account.index}")
    ids = sorted(account.items)
    kinds = sorted(UNEDITABLE)
    for n, item_id in enumerate(sorted(rng.sample(ids, min(count, len(ids))))):
        account.items[item_id].uneditable = kinds[n % len(kinds)]
