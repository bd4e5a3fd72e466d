"""Guards for reading a channel's item answers: a malformed field must fail the parse, never
read as a sell-out (``int(False)`` and ``int(0.5)`` are both 0) or as a price."""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def whole(value: Any) -> int:
    """A count or flag as sent: a JSON integer or its digits, nothing else."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"not a whole number: {value!r}")
    return int(value)


def finite(value: Decimal) -> Decimal:
    """A price that is a number (not NaN or infinity)."""
    if not value.is_finite():
        raise ValueError(f"not a finite price: {value}")
    return value
