"""How often an account is read in bulk: per account, else ``[daemon]``, else per platform
(BASE and eBay every cycle), counting the cycle about to run."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from ecsync.config import load_settings
from ecsync.engine.cycle import accounts_due_for_reconcile
from ecsync.store.engine import make_engine
from ecsync.store.migrate import upgrade_to_head
from ecsync.store.schema import Account, Cycle
from tests.conftest import CliResult

ACCOUNTS = """
[[accounts]]
name = "base-1"
platform = "base"

[[accounts]]
name = "base-2"
platform = "base"
reconcile_every = 4

[[accounts]]
name = "ebay-1"
platform = "ebay"
"""


def test_each_account_has_its_own_reconcile_every(write_config: Callable[..., Path]) -> None:
    settings = load_settings(write_config(ACCOUNTS))
    assert [settings.reconcile_every(n) for n in ("base-1", "base-2", "ebay-1")] == [1, 4, 1]
    daemon_wide = load_settings(write_config(ACCOUNTS + "\n[daemon]\nreconcile_every = 8\n"))
    assert [daemon_wide.reconcile_every(n) for n in ("base-1", "base-2", "ebay-1")] == [8, 4, 8]


def test_reconcile_every_below_1_is_refused(
    write_config: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    write_config(ACCOUNTS.replace("reconcile_every = 4", "reconcile_every = 0"))
    result = cli("accounts", "list")
    assert result.code == 2
    assert "reconcile_every" in result.err


T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("every", "finished_since", "due"),
    [(1, 0, True), (3, 1, False), (3, 2, True), (8, 6, False), (8, 7, True)],
)
def test_an_account_is_due_every_n_cycles_counting_this_one(
    tmp_path: Path, every: int, finished_since: int, due: bool
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    upgrade_to_head(engine)
    with Session(engine) as session, session.begin():
        session.add(Account(name="a", platform="base", created_at=T0, last_reconciled_at=T0))
        session.add(Account(name="never", platform="base", created_at=T0))
        for i in range(finished_since):  # cycles run (and ended) since the last read
            at = T0 + timedelta(minutes=i + 1)
            session.add(Cycle(started_at=at, finished_at=at, status="ok"))
        session.add(Cycle(started_at=T0 + timedelta(hours=1), status="running"))  # this one
    with Session(engine) as session:
        names = accounts_due_for_reconcile(session, {"a": every, "never": every}, None)
        assert names == (["a", "never"] if due else ["never"])  # never read: always due
        assert accounts_due_for_reconcile(session, {"a": every}, False) == []
        assert accounts_due_for_reconcile(session, {"a": every}, True) == ["a"]
    engine.dispose()
