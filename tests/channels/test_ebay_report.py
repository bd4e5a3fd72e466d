"""Parsing eBay's ActiveInventoryReport zip: hand-written files, hand-computed answers."""

from __future__ import annotations

import io
import tracemalloc
import zipfile
from decimal import Decimal

import pytest

from ecsync.channels import ebay_report
from ecsync.channels.ebay_report import (
    ReportCorrupt,
    ReportEntry,
    ReportRefused,
    parse_report_zip,
)

HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<BulkDataExchangeResponses xmlns="urn:ebay:apis:eBLBaseComponents">'
    "<ActiveInventoryReport><Timestamp>2026-12-01T00:00:00.000Z</Timestamp><Ack>Success</Ack>"
)
TAIL = "</ActiveInventoryReport></BulkDataExchangeResponses>"


def _details(sku: str, price: str = "24.99", quantity: str = "3", item: str = "110") -> str:
    return (
        f'<SKUDetails><SKU>{sku}</SKU><Price currencyID="USD">{price}</Price>'
        f"<Quantity>{quantity}</Quantity><ItemID>{item}</ItemID></SKUDetails>"
    )


def _zip(xml: str | bytes, name: str = "report.xml", **extra: bytes) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, xml)
        for other, data in extra.items():
            archive.writestr(other, data)
    buffer.seek(0)
    return buffer


def test_entries_with_namespace_variations_and_escapes() -> None:
    variations = (
        "<SKUDetails><ItemID>220</ItemID><Variations>"
        '<Variation><SKU>V-RED</SKU><Price currencyID="USD">10.5</Price>'
        "<Quantity>2</Quantity></Variation>"
        '<Variation><SKU>V-BLUE</SKU><Price currencyID="USD">11</Price>'
        "<Quantity>0</Quantity></Variation>"
        "</Variations></SKUDetails>"
    )
    xml = HEAD + _details("A&amp;B", "24.99", "3", "110") + variations + TAIL
    report = parse_report_zip(_zip(xml))
    assert report.entries == [
        ReportEntry("A&B", "110", Decimal("24.99"), 3),
        ReportEntry("V-RED", "220", Decimal("10.5"), 2),
        ReportEntry("V-BLUE", "220", Decimal("11"), 0),
    ]
    assert report.bad == {} and report.ack == "Success" and report.without_sku == 0


def test_a_bad_entry_is_a_problem_of_its_sku_and_the_rest_is_read() -> None:
    xml = (
        HEAD
        + _details("GOOD1")
        + _details("BADPRICE", price="abc", item="111")
        + _details("NEGQTY", quantity="-1")
        + _details("ZERO", price="0.00")
        + '<SKUDetails><SKU>EUR</SKU><Price currencyID="EUR">5</Price>'
        "<Quantity>1</Quantity></SKUDetails>"
        + "<SKUDetails><ItemID>999</ItemID><Price>1</Price><Quantity>1</Quantity></SKUDetails>"
        + _details("DUP", item="1")
        + _details("DUP", item="2")
        + _details("GOOD2", price="1", quantity="0")
        + TAIL
    )
    report = parse_report_zip(_zip(xml))
    assert [entry.sku for entry in report.entries] == ["GOOD1", "GOOD2"]
    assert set(report.bad) == {"BADPRICE", "NEGQTY", "ZERO", "EUR", "DUP"}
    assert "item 111" in report.bad["BADPRICE"] and "'abc'" in report.bad["BADPRICE"]
    assert "twice" in report.bad["DUP"]
    assert report.without_sku == 1  # a listing made outside the Inventory API: skipped


def test_truncated_files_are_corrupt_so_they_are_downloaded_again() -> None:
    whole = _zip(HEAD + _details("A") * 50 + TAIL).getvalue()
    with pytest.raises(ReportCorrupt):
        parse_report_zip(io.BytesIO(whole[: len(whole) // 2]))
    with pytest.raises(ReportCorrupt, match="XML"):
        parse_report_zip(_zip(HEAD + _details("A") + "<SKUDetails><SKU>B"))
    with pytest.raises(ReportCorrupt):
        parse_report_zip(io.BytesIO(b"not a zip at all"))


def test_unsafe_or_wrong_files_are_refused() -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        "<ActiveInventoryReport><SKUDetails><SKU>&b;</SKU></SKUDetails></ActiveInventoryReport>"
    )
    with pytest.raises(ReportRefused, match="DTD"):
        parse_report_zip(_zip(bomb))
    with pytest.raises(ReportRefused, match="one XML"):
        parse_report_zip(_zip("x", name="report.txt"))
    with pytest.raises(ReportRefused, match="one XML"):
        parse_report_zip(_zip(HEAD + TAIL, **{"second.xml": b"<a/>"}))
    with pytest.raises(ReportRefused, match="not a report"):
        parse_report_zip(_zip("<html><body/></html>"))
    failure = HEAD.replace("<Ack>Success</Ack>", "<Ack>Failure</Ack>") + TAIL
    with pytest.raises(ReportRefused, match="Failure"):
        parse_report_zip(_zip(failure))


def test_oversized_and_overcompressed_members_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    xml = HEAD + _details("A") * 2000 + TAIL  # about 200 kB, compresses very well
    monkeypatch.setattr(ebay_report, "MAX_XML_BYTES", 50_000)
    with pytest.raises(ReportRefused, match="unpack to"):
        parse_report_zip(_zip(xml))
    monkeypatch.setattr(ebay_report, "MAX_XML_BYTES", 10**9)
    monkeypatch.setattr(ebay_report, "_RATIO_FLOOR", 1000)
    monkeypatch.setattr(ebay_report, "MAX_RATIO", 5)
    with pytest.raises(ReportRefused, match="compressed"):
        parse_report_zip(_zip(xml))


def test_memory_stays_bounded_while_streaming() -> None:
    """Each entry is dropped from the tree once read: 20,000 entries without a SKU (kept by
    nobody) must not pile up as elements (that would take about 7 MB)."""
    entry = "<SKUDetails><ItemID>1</ItemID><Price>1</Price><Quantity>1</Quantity></SKUDetails>"
    archive = _zip(HEAD + entry * 20_000 + TAIL)
    tracemalloc.start()
    try:
        report = parse_report_zip(archive)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.without_sku == 20_000 and not report.entries
    assert peak < 2_500_000
