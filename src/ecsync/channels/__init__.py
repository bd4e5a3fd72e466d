"""Sales-channel adapters behind one protocol (``protocol.py``): BASE and eBay.

The engine asks :func:`open_adapter` for an account's adapter and knows nothing else about
the channel: auth and token rotation, paging, batching and call budgets stay inside. Each
channel kind is registered once in ``kinds.py``.
"""

from __future__ import annotations

from ecsync.channels.ebay import EbayAdapter
from ecsync.channels.errors import (
    ChannelAuthError,
    ChannelBudgetExhausted,
    ChannelError,
    ChannelRefused,
    ChannelUnavailable,
)
from ecsync.channels.http import HttpOptions
from ecsync.channels.kinds import ChannelKind, channel_kind, kind_names, register_kind
from ecsync.channels.protocol import (
    Budget,
    ChangeResult,
    ChannelAdapter,
    ChannelChange,
    ChannelItem,
    ChannelRead,
    Outcome,
    ReadProblem,
)
from ecsync.channels.thebase import BaseAdapter
from ecsync.clock import Clock, Stop
from ecsync.config import AccountSettings, Settings
from ecsync.store.runner import DbRunner

__all__ = [
    "BaseAdapter",
    "Budget",
    "ChangeResult",
    "ChannelAdapter",
    "ChannelAuthError",
    "ChannelBudgetExhausted",
    "ChannelChange",
    "ChannelError",
    "ChannelItem",
    "ChannelKind",
    "ChannelRead",
    "ChannelRefused",
    "ChannelUnavailable",
    "EbayAdapter",
    "HttpOptions",
    "Outcome",
    "ReadProblem",
    "channel_kind",
    "kind_names",
    "open_account",
    "open_adapter",
    "register_kind",
]


def open_adapter(
    account: AccountSettings,
    db: DbRunner,
    stop: Stop,
    clock: Clock | None = None,
    *,
    options: HttpOptions | None = None,
) -> ChannelAdapter:
    """The adapter for ``account``'s platform; close it with ``aclose`` when done.

    ``options`` (timeouts, retries, parallelism) default to values that suit the real APIs;
    tests pass short ones.
    """
    try:
        kind = channel_kind(account.platform)
    except ValueError as exc:
        raise ValueError(f"account {account.name!r}: {exc}") from None
    return kind.open(account, db, stop, clock, options)


def open_account(
    settings: Settings, name: str, db: DbRunner, stop: Stop, clock: Clock | None = None
) -> ChannelAdapter:
    """``open_adapter`` for a configured account, on the configured clock scale."""
    http = settings.channels
    options = HttpOptions(
        connect_timeout_s=http.connect_timeout_s,
        read_timeout_s=http.read_timeout_s,
        total_timeout_s=http.total_timeout_s,
        max_retries=http.max_retries,
        retry_base_s=http.retry_base_s,
        concurrency=http.concurrency,
        time_scale=settings.runtime.time_scale,
    )
    return open_adapter(settings.account(name), db, stop, clock, options=options)
