"""How a journal change reads for a person: one place for ``history``, ``changes`` and the
demo, so the same change is never described two ways."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol

from ecsync.engine.plan import money


class JournalRow(Protocol):
    """What a journal row shows: its change, status, reason, error and the seller's say."""

    @property
    def kind(self) -> str: ...

    @property
    def status(self) -> str: ...

    @property
    def reason(self) -> str: ...

    @property
    def error(self) -> str | None: ...

    @property
    def decided_by(self) -> str | None: ...

    @property
    def old_price(self) -> Decimal | None: ...

    @property
    def new_price(self) -> Decimal | None: ...

    @property
    def old_visible(self) -> bool | None: ...

    @property
    def new_visible(self) -> bool | None: ...

    @property
    def old_quantity(self) -> int | None: ...

    @property
    def new_quantity(self) -> int | None: ...


def describe_change(kind: str, old: tuple[Any, Any, Any], new: tuple[Any, Any, Any]) -> str:
    """``price_cut price 460->350``: the kind and every field that moves."""
    parts = [kind]
    labels = ("price", "visible", "qty")
    for label, before, after in zip(labels, old, new, strict=True):
        if before != after:
            parts.append(f"{label} {plain(before)}->{plain(after)}")
    return " ".join(parts)


def describe_row(row: JournalRow) -> str:
    return describe_change(
        row.kind,
        (row.old_price, row.old_visible, row.old_quantity),
        (row.new_price, row.new_visible, row.new_quantity),
    )


def why(row: JournalRow, decided_at: str | None = None) -> str:
    """The reason, the channel's error and who released or rejected it (and when)."""
    text = row.reason + (f" [{row.error}]" if row.error else "")
    if row.decided_by:
        when = f" at {decided_at}" if decided_at else ""
        text += f" [{row.status} by {row.decided_by}{when}]"
    return text


def plain(value: Any) -> str:
    if value is None:
        return "?"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Decimal):
        return str(money(value))
    return str(value)
