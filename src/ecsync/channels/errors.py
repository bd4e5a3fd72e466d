"""Channel failures that stop an account's push, as opposed to per-item outcomes."""

from __future__ import annotations

from datetime import datetime

from ecsync.errors import EcsyncError


class ChannelError(EcsyncError):
    """A channel could not be used at all right now."""


class ChannelAuthError(ChannelError):
    """The account's credentials or refresh token were refused: a person must re-authorise."""


class ChannelBudgetExhausted(ChannelError):
    """The account's call budget (ours or the channel's) is spent until ``retry_after``.

    ``apply`` turns it into DEFERRED results; ``read_items`` raises it, since a half-read
    account must not be mistaken for a complete one.
    """

    def __init__(self, message: str, retry_after: datetime | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ChannelUnavailable(ChannelError):
    """The channel kept failing (5xx, timeouts, malformed answers) after bounded retries."""


class ChannelRefused(ChannelError):
    """The channel refused a whole request (not one item of it); retrying would not help."""
