"""``ecsync sim``: the simulator's command line (registered by ecsync.cli as ``sim``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ecsync.errors import UsageError
from ecsync.sim.faults import FaultError, Faults, parse_fault_spec
from ecsync.sim.options import SimOptions
from ecsync.sim.server import serve


def sim_command(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port; 0 picks a free one.")] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the market and faults.")] = 1,
    products: Annotated[
        int, typer.Option("--products", help="ASINs in the Amazon catalog.")
    ] = 1000,
    base_accounts: Annotated[
        int, typer.Option("--base-accounts", help="BASE shops (base-1, base-2, ...).")
    ] = 1,
    ebay_accounts: Annotated[
        int, typer.Option("--ebay-accounts", help="eBay accounts (ebay-1, ...).")
    ] = 1,
    ebay_share: Annotated[
        float,
        typer.Option("--ebay-share", help="Fraction of products listed on each eBay account."),
    ] = 0.2,
    base_variations: Annotated[
        float,
        typer.Option("--base-variations", help="Fraction of BASE items with variations."),
    ] = 0.0,
    base_uneditable: Annotated[
        int,
        typer.Option(
            "--base-uneditable", help="BASE items per shop the API cannot edit (digital)."
        ),
    ] = 0,
    drift: Annotated[
        float,
        typer.Option("--drift", help="Fraction of products whose offers moved since the sync."),
    ] = 0.1,
    market_rate: Annotated[
        float,
        typer.Option(
            "--market-rate",
            help="Mean market events per product per simulated day (0: the market only "
            "moves when told).",
        ),
    ] = 0.0,
    volatility: Annotated[
        str,
        typer.Option(
            "--volatility",
            help="skewed (a few hot products make most events) or uniform (one rate for all).",
        ),
    ] = "skewed",
    market_hold: Annotated[
        bool,
        typer.Option(
            "--market-hold",
            help="Keep the market still until POST /_sim/market/start, which starts its "
            "schedule at that moment (set a shop up first, then start the day).",
        ),
    ] = False,
    speed: Annotated[
        float, typer.Option("--speed", help="Every rate limit and clock runs this much faster.")
    ] = 1.0,
    faults: Annotated[
        str,
        typer.Option(
            "--faults",
            help="API.KIND=RATE,... for APIs spapi, base, ebay and kinds throttle, error500, "
            "hang, malformed, item_error, latency (mean s); eBay also read_refused (a fixed "
            "share of SKUs whose single offer reads answer 400/403, never 404), task_failed "
            "and task_partial (report tasks ending FAILED / COMPLETED_WITH_ERROR). "
            "e.g. spapi.throttle=0.05,ebay.read_refused=0.1",
        ),
    ] = "",
    write_config: Annotated[
        Path | None,
        typer.Option("--write-config", help="Write an ecsync.toml that works against it."),
    ] = None,
) -> None:
    """Run the marketplace simulator (Amazon SP-API, BASE, eBay) in the foreground."""
    options = SimOptions(
        host=host,
        port=port,
        seed=seed,
        products=products,
        base_accounts=base_accounts,
        ebay_accounts=ebay_accounts,
        ebay_share=ebay_share,
        base_variations=base_variations,
        base_uneditable=base_uneditable,
        drift=drift,
        market_rate=market_rate,
        volatility=volatility,
        market_hold=market_hold,
        speed=speed,
        faults=faults,
        write_config=write_config,
    )
    try:
        options.check()
        Faults(seed).validate(parse_fault_spec(faults))
    except (ValueError, FaultError) as exc:
        raise UsageError(str(exc)) from None

    def ready(url: str) -> None:
        # The URL line comes last: it tells a script reading stdout that the server is up.
        if write_config is not None:
            typer.echo(f"config written to {write_config}")
        typer.echo(f"simulator listening on {url}")

    serve(options, ready)
