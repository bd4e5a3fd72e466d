"""CSV import is all-or-nothing, idempotent, and reports every bad row by line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from ecsync.store.schema import Listing, Product
from tests.conftest import CliResult

HEADER = "platform,account,asin,item_id,sku\n"
GOOD = HEADER + (
    "base,base-1,B000000001,1001,\n"
    "base,base-2,B000000002,2001,\n"
    "ebay,ebay-1,B000000001,v-1,B000000001\n"
)


@pytest.fixture
def shop(write_config: Callable[[str], Path], cli: Callable[..., CliResult]) -> Path:
    config = write_config()
    assert cli("init").code == 0
    return config


def _listings(workdir: Path) -> list[tuple[str, str, str, str]]:
    engine = create_engine(f"sqlite:///{workdir / 'ecsync.db'}")
    with engine.connect() as connection:
        rows = connection.execute(
            select(Listing.account_id, Listing.asin, Listing.item_id, Listing.sku).order_by(
                Listing.account_id, Listing.asin
            )
        ).all()
        products = connection.execute(select(Product.asin)).scalars().all()
    engine.dispose()
    return [(str(a), b, c, d) for a, b, c, d in rows] + [("product", p, "", "") for p in products]


def _csv(workdir: Path, text: str, encoding: str = "utf-8", name: str = "in.csv") -> Path:
    path = workdir / name
    path.write_bytes(text.encode(encoding))
    return path


def test_import_then_reimport_changes_nothing(
    shop: Path, workdir: Path, cli: Callable[..., CliResult]
) -> None:
    path = _csv(workdir, GOOD)
    first = cli("import", str(path))
    assert first.code == 0, first.err
    assert "3 added, 0 updated, 0 unchanged" in first.out
    snapshot = _listings(workdir)
    again = cli("import", str(path))
    assert "0 added, 0 updated, 3 unchanged" in again.out
    assert _listings(workdir) == snapshot
    assert len([row for row in snapshot if row[0] == "product"]) == 2  # ASIN fetched once


def test_changed_rows_update(shop: Path, workdir: Path, cli: Callable[..., CliResult]) -> None:
    cli("import", str(_csv(workdir, GOOD)))
    changed = GOOD.replace("base-1,B000000001,1001,", "base-1,B000000001,1009,SKU-9")
    result = cli("import", str(_csv(workdir, changed, name="b.csv")))
    assert "0 added, 1 updated, 2 unchanged" in result.out
    assert ("1", "B000000001", "1009", "SKU-9") in _listings(workdir)


def test_item_ids_may_swap_inside_one_file(
    shop: Path, workdir: Path, cli: Callable[..., CliResult]
) -> None:
    cli(
        "import",
        str(_csv(workdir, HEADER + "base,base-1,B000000001,1,\nbase,base-1,B000000002,2,\n")),
    )
    swapped = HEADER + "base,base-1,B000000001,2,\nbase,base-1,B000000002,1,\n"
    result = cli("import", str(_csv(workdir, swapped, name="s.csv")))
    assert result.code == 0, result.err
    assert {(r[1], r[2]) for r in _listings(workdir) if r[0] == "1"} == {
        ("B000000001", "2"),
        ("B000000002", "1"),
    }


BAD_ROWS = [
    ("amazon,base-1,B000000009,9,\n", "unknown platform 'amazon'"),
    ("base,base-9,B000000009,9,\n", "unknown account 'base-9'"),
    ("ebay,base-1,B000000009,9,X\n", "account 'base-1' is a base account, the row says 'ebay'"),
    ("base,base-1,B00000009,9,\n", "ASIN 'B00000009' is not 10 characters"),
    ("base,base-1,b000000009,9,\n", "ASIN 'b000000009' is not 10 characters"),
    ("base,base-1,B00000000-,9,\n", "ASIN 'B00000000-' is not 10 characters of A-Z and 0-9"),
    ("base,base-1,,9,\n", "empty required field 'asin'"),
    ("base,base-1,B000000009,,\n", "empty required field 'item_id'"),
    (",base-1,B000000009,9,\n", "empty required field 'platform'"),
    ("ebay,ebay-1,B000000009,9,\n", "empty required field 'sku'"),
    ("base,base-1,B000000009\n", "3 fields, the header has 5"),
    (
        "base,base-1,B000000001,77,\n",
        "duplicate (account, asin) (base-1, B000000001), first on line 2",
    ),
    (
        "base,base-1,B000000009,1001,\n",
        "duplicate (account, item_id) (base-1, 1001), first on line 2",
    ),
]


@pytest.mark.parametrize(("row", "reason"), BAD_ROWS)
def test_each_bad_row_class_is_reported_and_nothing_written(
    shop: Path, workdir: Path, cli: Callable[..., CliResult], row: str, reason: str
) -> None:
    before = _listings(workdir)
    result = cli("import", str(_csv(workdir, GOOD + row)))
    assert result.code == 2
    assert f"line 5: {reason}" in result.err
    assert _listings(workdir) == before == []


def test_every_bad_row_is_reported_at_once(
    shop: Path, workdir: Path, cli: Callable[..., CliResult]
) -> None:
    text = GOOD + "".join(row for row, _ in BAD_ROWS[:4])
    result = cli("import", str(_csv(workdir, text)))
    assert result.code == 2
    for offset, (_row, reason) in enumerate(BAD_ROWS[:4]):
        assert f"line {5 + offset}: {reason}" in result.err
    assert _listings(workdir) == []


def test_conflict_with_an_existing_listing(
    shop: Path, workdir: Path, cli: Callable[..., CliResult]
) -> None:
    cli("import", str(_csv(workdir, GOOD)))
    before = _listings(workdir)
    text = HEADER + "base,base-2,B000000003,3001,\nbase,base-1,B000000005,1001,\n"
    result = cli("import", str(_csv(workdir, text, name="c.csv")))
    assert result.code == 2
    assert (
        "line 3: duplicate (account, item_id) (base-1, 1001): already the listing of ASIN B000000001"
        in result.err
    )
    assert _listings(workdir) == before


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("platform,account,asin,item_id\n", "line 1: missing column 'sku'"),
        ("platform,asin\n", "line 1: missing columns 'account', 'item_id', 'sku'"),
        ("", "line 1: empty file"),
    ],
)
def test_bad_header(
    shop: Path, workdir: Path, cli: Callable[..., CliResult], header: str, reason: str
) -> None:
    result = cli("import", str(_csv(workdir, header)))
    assert result.code == 2
    assert reason in result.err


@pytest.mark.parametrize(
    ("encoding", "prefix", "told"),
    [
        ("utf-8", b"", "UTF-8"),
        ("utf-8", b"\xef\xbb\xbf", "UTF-8 (with BOM)"),
        ("cp932", b"", "Shift_JIS"),
    ],
)
def test_encodings(
    shop: Path,
    workdir: Path,
    cli: Callable[..., CliResult],
    encoding: str,
    prefix: bytes,
    told: str,
) -> None:
    text = HEADER + "base,base-1,B000000001,1001,商品-青\n"
    path = workdir / "enc.csv"
    path.write_bytes(prefix + text.encode(encoding))
    result = cli("import", str(path))
    assert result.code == 0, result.err
    assert f"read as {told}" in result.out
    assert ("1", "B000000001", "1001", "商品-青") in _listings(workdir)


def test_undecodable_file(shop: Path, workdir: Path, cli: Callable[..., CliResult]) -> None:
    path = workdir / "bin.csv"
    path.write_bytes(HEADER.encode() + b"\xff\xfe\xfd\x80\x81,\n")
    result = cli("import", str(path))
    assert result.code == 2
    assert "neither UTF-8 nor Shift_JIS" in result.err


def test_missing_file(shop: Path, workdir: Path, cli: Callable[..., CliResult]) -> None:
    result = cli("import", str(workdir / "missing.csv"))
    assert result.code == 2
    assert "missing.csv: cannot read" in result.err


def test_import_before_init_says_run_init(
    write_config: Callable[[str], Path], workdir: Path, cli: Callable[..., CliResult]
) -> None:
    write_config()
    result = cli("import", str(_csv(workdir, GOOD)))
    assert result.code == 2
    assert "run `ecsync init`" in result.err


def test_accounts_list_shows_configured_accounts_and_counts(
    shop: Path, workdir: Path, cli: Callable[..., CliResult]
) -> None:
    cli("import", str(_csv(workdir, GOOD)))
    import json

    result = cli("accounts", "list", "--json")
    assert result.code == 0
    accounts = {a["name"]: a for a in json.loads(result.out)}
    assert accounts["base-1"]["listings"] == {"listed": 1}
    assert accounts["ebay-1"]["platform"] == "ebay"
    assert accounts["ebay-1"]["pricing"] == "ebay_formula"
    assert accounts["base-2"]["active"] is True


def test_daemon_and_status_are_built(shop: Path, cli: Callable[..., CliResult]) -> None:
    # Once stubs ("not implemented yet"); tests/daemon covers them against the simulator.
    daemon = cli("daemon")
    assert daemon.code == 2 and "amazon.client_id: required" in daemon.err
    assert cli("status").code == 0


@pytest.mark.parametrize(
    ("command", "key"),
    [
        (["pull", "--all"], "accounts[0].client_id: required for 'base-1'"),
        (["sync"], "amazon.client_id: required (or ECSYNC_AMAZON__CLIENT_ID)"),
        (
            ["sync"],
            "accounts[2].refresh_token: required for 'ebay-1' (or ECSYNC_ACCOUNT__EBAY_1__REFRESH_TOKEN)",
        ),
    ],
)
def test_missing_credentials_exit_2_before_any_call(
    shop: Path, cli: Callable[..., CliResult], command: list[str], key: str
) -> None:
    result = cli(*command)
    assert result.code == 2
    assert key in result.err
