"""A running simulator, a migrated database and adapter factories for the channel tests.

Every test gets its own simulator (it starts in well under a second) so faults, deleted
items and changed limits never leak between tests. Adapters get short timeouts and
near-zero backoff so fault tests take milliseconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import Engine

from ecsync.channels import BaseAdapter, EbayAdapter, HttpOptions
from ecsync.clock import Stop
from ecsync.config import AccountSettings, Settings, load_settings
from ecsync.sim.server import SimOptions, running_simulator
from ecsync.store.engine import make_engine, session_factory
from ecsync.store.migrate import upgrade_to_head
from ecsync.store.runner import DbRunner

FAST = HttpOptions(
    connect_timeout_s=2.0,
    read_timeout_s=2.0,
    total_timeout_s=3.0,
    max_retries=2,
    retry_base_s=0.005,
    retry_cap_s=0.02,
    concurrency=4,
)


class FakeClock:
    """ecsync's side of time, moved by the test together with the simulator's."""

    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return time.monotonic()


@dataclass
class Sim:
    url: str
    settings: Settings
    http: httpx.Client
    dir: Path

    def get(self, path: str, **kwargs: Any) -> Any:
        response = self.http.get(path, **kwargs)
        response.raise_for_status()
        return response.json()

    def send(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, path, json=body)
        response.raise_for_status()
        return response.json() if response.content else None

    def account(self, name: str, **changes: Any) -> AccountSettings:
        return self.settings.account(name).model_copy(update=changes)

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.get("/_sim/stats")
        return result

    def base_items(self, account: str = "base-1") -> dict[str, dict[str, Any]]:
        items = self.get(f"/_sim/base/{account}/items")["items"]
        return {str(item["item_id"]): item for item in items}

    def ebay_offers(self, account: str = "ebay-1") -> dict[str, dict[str, Any]]:
        offers = self.get(f"/_sim/ebay/{account}/offers")["offers"]
        return {offer["offerId"]: offer for offer in offers}

    def faults(self, body: dict[str, Any]) -> None:
        self.send("PUT", "/_sim/faults", body)

    def freeze(self) -> None:
        """Stop simulated time, so windows and token lifetimes move only by ``advance``."""
        self.send("PUT", "/_sim/clock", {"frozen": True})

    def advance(self, seconds: float) -> None:
        self.send("POST", "/_sim/clock/advance", {"seconds": seconds})

    def now(self) -> float:
        return float(self.get("/_sim/clock")["now"])


AdapterT = TypeVar("AdapterT", BaseAdapter, EbayAdapter)


@pytest.fixture
def make_sim(tmp_path: Path) -> Iterator[Callable[..., Sim]]:
    contexts: list[Any] = []
    clients: list[httpx.Client] = []

    def make(**options: Any) -> Sim:
        config = tmp_path / f"ecsync-{len(contexts)}.toml"
        defaults: dict[str, Any] = {"products": 300, "speed": 100.0, "seed": 7}
        context = running_simulator(SimOptions(**{**defaults, **options}, write_config=config))
        handle = context.__enter__()
        contexts.append(context)
        http = httpx.Client(base_url=handle.url, timeout=10)
        clients.append(http)
        return Sim(handle.url, load_settings(config), http, tmp_path)

    yield make
    for client in clients:
        client.close()
    for context in reversed(contexts):
        context.__exit__(None, None, None)


@pytest.fixture
def sim(make_sim: Callable[..., Sim]) -> Sim:
    return make_sim()


@dataclass
class Databases:
    """Runners on one SQLite file; each extra runner stands for another ecsync process."""

    path: Path
    engines: list[Engine] = field(default_factory=list)
    runners: list[DbRunner] = field(default_factory=list)

    def runner(self) -> DbRunner:
        engine = make_engine(f"sqlite:///{self.path}")
        if not self.engines:
            upgrade_to_head(engine)
        self.engines.append(engine)
        runner = DbRunner(session_factory(engine))
        self.runners.append(runner)
        return runner

    def close(self) -> None:
        for runner in self.runners:
            runner.close()
        for engine in self.engines:
            engine.dispose()


@pytest.fixture
def dbs(tmp_path: Path) -> Iterator[Databases]:
    databases = Databases(tmp_path / "ecsync.db")
    yield databases
    databases.close()


@pytest.fixture
def db(dbs: Databases) -> DbRunner:
    return dbs.runner()


@pytest.fixture
async def adapters() -> Any:
    """Close every adapter a test opened, even when it fails."""
    opened: list[BaseAdapter | EbayAdapter] = []
    yield opened
    for adapter in opened:
        await adapter.aclose()


def _opener(
    kind: type[AdapterT],
    default_account: str,
    sim: Sim,
    db: DbRunner,
    adapters: list[BaseAdapter | EbayAdapter],
) -> Callable[..., AdapterT]:
    """A factory of adapters on the test's simulator and database, closed after the test."""

    def make(
        account: AccountSettings | None = None,
        *,
        runner: DbRunner | None = None,
        stop: Stop | None = None,
        clock: FakeClock | None = None,
        options: HttpOptions = FAST,
    ) -> AdapterT:
        adapter = kind(
            account or sim.settings.account(default_account),
            runner or db,
            stop or Stop(),
            clock,
            options=options,
        )
        adapters.append(adapter)
        return adapter

    return make


@pytest.fixture
def open_base(
    sim: Sim, db: DbRunner, adapters: list[BaseAdapter | EbayAdapter]
) -> Callable[..., BaseAdapter]:
    return _opener(BaseAdapter, "base-1", sim, db, adapters)


@pytest.fixture
def open_ebay(
    sim: Sim, db: DbRunner, adapters: list[BaseAdapter | EbayAdapter]
) -> Callable[..., EbayAdapter]:
    return _opener(EbayAdapter, "ebay-1", sim, db, adapters)
