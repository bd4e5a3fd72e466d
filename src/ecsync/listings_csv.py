"""Reading a seller's listings CSV: decoding, header and per-row checks, no database.

Sellers export these from Excel, so the file may be UTF-8 with or without a BOM or
Shift_JIS (cp932, Excel's Japanese encoding). Every bad row is collected, not just the
first, so one pass tells the seller everything to fix.

An eBay row may leave ``item_id`` empty: eBay offers are addressed through their SKU, and
the offer id is looked up by SKU on the first push (then stored). Such a row is keyed by
its SKU (eBay keeps SKUs unique per seller), so ``item_id`` becomes the SKU.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ecsync.channels.kinds import channel_kind, kind_names

REQUIRED_COLUMNS = ("platform", "account", "asin", "item_id", "sku")
ASIN_PATTERN = re.compile(r"[A-Z0-9]{10}")


@dataclass(frozen=True, slots=True)
class CsvListing:
    line: int
    platform: str
    account: str
    asin: str
    item_id: str
    sku: str


@dataclass(frozen=True, slots=True)
class ParsedCsv:
    encoding: str
    rows: list[CsvListing]
    problems: list[str]


def decode(data: bytes) -> tuple[str, str]:
    """Return (text, encoding name as told to the user)."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "UTF-8 (with BOM)"
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError as utf8_error:
        try:
            return data.decode("cp932"), "Shift_JIS"
        except UnicodeDecodeError:
            raise ValueError(
                f"neither UTF-8 nor Shift_JIS (first bad byte at offset {utf8_error.start})"
            ) from None


def parse_listings_csv(path: Path, accounts: Mapping[str, str]) -> ParsedCsv:
    """Check every row; ``accounts`` maps configured account name -> platform.

    Raises ValueError for a file that cannot be read at all (encoding, no header).
    """
    text, encoding = decode(path.read_bytes())
    reader = csv.reader(io.StringIO(text, newline=""))
    header_row = next(reader, None)
    if header_row is None or not any(cell.strip() for cell in header_row):
        raise ValueError("line 1: empty file, expected a header row " + ",".join(REQUIRED_COLUMNS))
    header = [cell.strip().lower() for cell in header_row]
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    if missing:
        raise ValueError(
            f"line 1: missing column{'s' if len(missing) > 1 else ''} "
            + ", ".join(repr(m) for m in missing)
            + f" (header has: {', '.join(header)})"
        )
    index = {column: header.index(column) for column in REQUIRED_COLUMNS}
    rows: list[CsvListing] = []
    problems: list[str] = []
    seen_asin: dict[tuple[str, str], int] = {}
    seen_item: dict[tuple[str, str], int] = {}
    line = reader.line_num
    for cells in reader:
        start_line, line = line + 1, reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        row_problems: list[str] = []
        if len(cells) != len(header):
            row_problems.append(f"{len(cells)} fields, the header has {len(header)}")
        values = {
            column: cells[position].strip() if position < len(cells) else ""
            for column, position in index.items()
        }
        row_problems += _check_row(values, accounts)
        if _found_by_sku(values["platform"]) and not values["item_id"]:
            values["item_id"] = values["sku"]  # the offer is found by SKU on first push
        if not row_problems:
            account, asin, item_id = values["account"], values["asin"], values["item_id"]
            if (first := seen_asin.get((account, asin))) is not None:
                row_problems.append(
                    f"duplicate (account, asin) ({account}, {asin}), first on line {first}"
                )
            if (first := seen_item.get((account, item_id))) is not None:
                row_problems.append(
                    f"duplicate (account, item_id) ({account}, {item_id}), first on line {first}"
                )
            seen_asin.setdefault((account, asin), start_line)
            seen_item.setdefault((account, item_id), start_line)
        if row_problems:
            problems += [f"line {start_line}: {problem}" for problem in row_problems]
        else:
            rows.append(CsvListing(line=start_line, **values))
    return ParsedCsv(encoding=encoding, rows=rows, problems=problems)


def _found_by_sku(platform: str) -> bool:
    """Channels that address items by SKU (eBay) may leave ``item_id`` empty in a row."""
    return platform in kind_names() and channel_kind(platform).requires_sku


def _check_row(values: Mapping[str, str], accounts: Mapping[str, str]) -> list[str]:
    problems = [
        f"empty required field {column!r}"
        for column in ("platform", "account", "asin", "item_id")
        if not values[column] and not (column == "item_id" and _found_by_sku(values["platform"]))
    ]
    platform, account, asin = values["platform"], values["account"], values["asin"]
    platforms = kind_names()
    if platform and platform not in platforms:
        known = " or ".join(repr(name) for name in platforms)
        problems.append(f"unknown platform {platform!r} (must be {known})")
    if account:
        if account not in accounts:
            known = ", ".join(sorted(accounts)) or "none configured"
            problems.append(f"unknown account {account!r} (known: {known})")
        elif platform in platforms and accounts[account] != platform:
            problems.append(
                f"account {account!r} is a {accounts[account]} account, the row says {platform!r}"
            )
    if asin and not ASIN_PATTERN.fullmatch(asin):
        problems.append(f"ASIN {asin!r} is not 10 characters of A-Z and 0-9")
    if platform in platforms and channel_kind(platform).requires_sku and not values["sku"]:
        label = channel_kind(platform).label
        problems.append(f"empty required field 'sku' ({label} offers are found by SKU)")
    return problems
