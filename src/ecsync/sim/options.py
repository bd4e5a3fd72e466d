"""The simulator's options (``ecsync sim`` flags), shared by the server, seeding and tests."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path


@dataclass
class SimOptions:
    """Everything that shapes one simulator run; the same options give the same market."""

    host: str = "127.0.0.1"
    port: int = 0
    seed: int = 1
    products: int = 1000
    base_accounts: int = 1
    ebay_accounts: int = 1
    ebay_share: float = 0.2
    base_variations: float = 0.0  # share of BASE items given variations (see base_seeding)
    base_uneditable: int = 0  # BASE items per shop the API cannot edit (digital, ClubT)
    drift: float = 0.1
    market_rate: float = 0.0  # mean market events per product per simulated day (0: still)
    volatility: str = "skewed"  # skewed | uniform: how the rate spreads over products
    market_hold: bool = False  # the market stays still until POST /_sim/market/start
    speed: float = 1.0
    faults: str = ""
    write_config: Path | None = None

    def check(self) -> None:
        """Refuse options that would make a nonsense market, naming the option."""
        if self.products < 0:
            raise ValueError("--products must be 0 or more")
        if self.base_accounts < 0 or self.ebay_accounts < 0:
            raise ValueError("--base-accounts and --ebay-accounts must be 0 or more")
        if not 0 <= self.ebay_share <= 1:
            raise ValueError("--ebay-share must be between 0 and 1")
        if not 0 <= self.base_variations <= 1:
            raise ValueError("--base-variations must be between 0 and 1")
        if self.base_uneditable < 0:
            raise ValueError("--base-uneditable must be 0 or more")
        if not 0 <= self.drift <= 1:
            raise ValueError("--drift must be between 0 and 1")
        # NaN compares False with everything: without these, ``--market-rate nan`` was a
        # still market, ``inf`` a traceback at start, and ``--speed nan`` a clock of NaNs.
        if not math.isfinite(self.market_rate):
            raise ValueError(
                f"--market-rate must be a finite number, 0 or more, not {self.market_rate}"
            )
        if self.market_rate < 0:
            raise ValueError("--market-rate must be 0 or more")
        if self.volatility not in ("skewed", "uniform"):
            raise ValueError(f"--volatility must be skewed or uniform, not {self.volatility!r}")
        if not math.isfinite(self.speed):
            raise ValueError(f"--speed must be a finite number, not {self.speed}")
        if self.speed <= 0:
            raise ValueError("--speed must be positive")
        if not 0 <= self.port <= 65535:
            raise ValueError("--port must be between 0 and 65535")
