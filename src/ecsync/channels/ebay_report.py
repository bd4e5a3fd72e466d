"""Reading eBay's ``ActiveInventoryReport`` (Sell Feed API ``LMS_ACTIVE_INVENTORY_REPORT``).

The report comes as a zip holding one XML file: ``SKUDetails`` elements (``SKU``,
``ItemID``, ``Price currencyID``, ``Quantity``, or ``Variations/Variation`` with their own
``SKU``, ``Price``, ``Quantity``) inside ``ActiveInventoryReport``, usually wrapped in
``BulkDataExchangeResponses``, in the namespace ``urn:ebay:apis:eBLBaseComponents``.

It is parsed as a stream (``iterparse``; each entry is dropped once read), so memory does
not grow with the file beyond the list of entries. What the file may do is bounded: a zip
larger than ``MAX_ZIP_BYTES``, an XML larger than ``MAX_XML_BYTES`` or compressed more than
``MAX_RATIO`` times, an encrypted member, or a DTD (entity expansion) is refused with
:class:`ReportRefused`. A file that breaks off (truncated download, bad CRC, broken XML) is
:class:`ReportCorrupt`: worth downloading again. One bad entry never spoils the rest: it
becomes a problem tied to its SKU. An entry without a SKU is a listing made outside the
Inventory API (ecsync lists only by SKU), so it is skipped and counted, not a problem.
"""

from __future__ import annotations

import io
import logging
import zipfile
import zlib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import IO, Any
from xml.etree import ElementTree as ET

log = logging.getLogger(__name__)

MAX_ZIP_BYTES = 256 * 1024 * 1024
MAX_XML_BYTES = 2 * 1024 * 1024 * 1024
MAX_RATIO = 500  # XML reports compress 10-50 times; a zip bomb about 1,000 times
_RATIO_FLOOR = 16 * 1024 * 1024  # small files may compress as much as they like
CURRENCY = "USD"
ROOTS = frozenset({"BulkDataExchangeResponses", "ActiveInventoryReport"})


class ReportRefused(Exception):
    """The report file is unsafe or not a report: not worth downloading again."""


class ReportCorrupt(Exception):
    """The report file broke off or does not decode: worth downloading again."""


@dataclass(frozen=True, slots=True)
class ReportEntry:
    """One active listing (or one variation of it) as the report gives it."""

    sku: str
    listing_id: str  # eBay ItemID: the listing, not the Inventory API offer
    price: Decimal
    quantity: int


@dataclass
class ParsedReport:
    entries: list[ReportEntry] = field(default_factory=list)
    bad: dict[str, str] = field(default_factory=dict)  # SKU -> why its entry is unusable
    without_sku: int = 0
    ack: str = ""


def parse_report_zip(file: IO[bytes]) -> ParsedReport:
    """The report inside a downloaded zip (a seekable binary file)."""
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ReportCorrupt(f"not a readable zip ({exc})") from None
    with archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
        xmls = [info for info in infos if info.filename.lower().endswith(".xml")]
        if len(xmls) != 1:
            names = ", ".join(info.filename for info in infos[:5]) or "nothing"
            raise ReportRefused(f"the zip should hold one XML report; it holds {names}")
        info = xmls[0]
        where = f"zip member {info.filename!r}"
        if info.flag_bits & 0x1:
            raise ReportRefused(f"{where} is encrypted")
        if info.file_size > MAX_XML_BYTES:
            raise ReportRefused(
                f"{where} would unpack to {info.file_size:,} bytes (limit {MAX_XML_BYTES:,})"
            )
        ratio = info.file_size / max(1, info.compress_size)
        if info.file_size > _RATIO_FLOOR and ratio > MAX_RATIO:
            raise ReportRefused(
                f"{where} is compressed {ratio:.0f} times (limit {MAX_RATIO}): a zip bomb?"
            )
        try:
            with archive.open(info) as raw:
                return parse_report_xml(raw, where=where)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise ReportCorrupt(f"{where} does not unpack ({exc})") from None


class _Guard(io.RawIOBase):
    """Reads through, refusing a DTD anywhere (entity tricks) and more than ``limit`` bytes."""

    _MARKS = (b"<!DOCTYPE", b"<!ENTITY")

    def __init__(self, source: IO[bytes], limit: int, where: str) -> None:
        self._source = source
        self._limit = limit
        self._where = where
        self._seen = 0
        self._tail = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._source.read(len(buffer))
        size = len(chunk)
        self._seen += size
        if self._seen > self._limit:
            raise ReportRefused(f"{self._where} unpacks to more than {self._limit:,} bytes")
        window = self._tail + chunk
        if any(mark in window for mark in self._MARKS):
            raise ReportRefused(f"{self._where} declares a DTD; reports never do")
        self._tail = window[-8:]
        buffer[:size] = chunk
        return size


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _child(element: ET.Element, name: str) -> ET.Element | None:
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _text(element: ET.Element, name: str) -> str:
    child = _child(element, name)
    return (child.text or "").strip() if child is not None else ""


def parse_report_xml(source: IO[bytes], *, where: str = "report") -> ParsedReport:
    """Stream the XML: every ``SKUDetails`` becomes entries (or a bad SKU), then is dropped."""
    report = ParsedReport()
    seen: dict[str, str] = {}  # SKU -> listing id of its first entry
    stack: list[ET.Element] = []
    number = 0
    guard = io.BufferedReader(_Guard(source, MAX_XML_BYTES, where))
    try:
        for event, element in ET.iterparse(guard, events=("start", "end")):
            if event == "start":
                if not stack and _local(element.tag) not in ROOTS:
                    raise ReportRefused(f"{where}: <{_local(element.tag)}> is not a report")
                stack.append(element)
                continue
            stack.pop()
            name = _local(element.tag)
            if name == "Ack" and len(stack) <= 2:
                report.ack = (element.text or "").strip()
            elif name == "SKUDetails":
                number += 1
                _take(report, seen, element, number)
                if stack:
                    stack[-1].remove(element)  # bounded memory: the entry is read
    except ET.ParseError as exc:
        raise ReportCorrupt(f"{where}: XML breaks off or is malformed ({exc})") from None
    if report.ack == "Failure":
        raise ReportRefused(f"{where}: eBay's report says Ack=Failure")
    return report


def _take(report: ParsedReport, seen: dict[str, str], details: ET.Element, number: int) -> None:
    listing_id = _text(details, "ItemID")
    variations = _child(details, "Variations")
    rows = [details]
    if variations is not None:
        rows = [v for v in variations if _local(v.tag) == "Variation"] or rows
    for row in rows:
        sku = _text(row, "SKU")
        if not sku:
            report.without_sku += 1
            continue
        place = f"report entry {number} (item {listing_id or '?'})"
        if sku in seen or sku in report.bad:
            first = seen.pop(sku, None)
            report.entries = [e for e in report.entries if e.sku != sku]
            report.bad[sku] = f"{place}: SKU listed twice (also item {first or '?'})"
            continue
        try:
            entry = _entry(row, sku, listing_id, fallback_price=_child(details, "Price"))
        except ValueError as exc:
            report.bad[sku] = f"{place}: {exc}"
            continue
        seen[sku] = listing_id
        report.entries.append(entry)


def _entry(
    row: ET.Element, sku: str, listing_id: str, *, fallback_price: ET.Element | None
) -> ReportEntry:
    price_element = _child(row, "Price")
    if price_element is None:
        price_element = fallback_price
    if price_element is None:
        raise ValueError("no Price")
    currency = price_element.get("currencyID", CURRENCY)
    if currency != CURRENCY:
        raise ValueError(f"price in {currency}, the account sells in {CURRENCY}")
    text = (price_element.text or "").strip()
    try:
        price = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"price {text!r} is not a number") from None
    if not price.is_finite() or price <= 0:
        raise ValueError(f"price {text!r} is not a positive amount")
    quantity_text = _text(row, "Quantity")
    try:
        quantity = int(quantity_text)
    except ValueError:
        raise ValueError(f"quantity {quantity_text!r} is not a whole number") from None
    if quantity < 0:
        raise ValueError(f"quantity {quantity} is below 0")
    return ReportEntry(sku=sku, listing_id=listing_id, price=price, quantity=quantity)
