"""How an SP-API call can fail, in the terms the fetch loop acts on."""

from __future__ import annotations

from ecsync.errors import EcsyncError


class AmazonError(EcsyncError):
    """Base of SP-API failures."""


class Throttled(AmazonError):
    """HTTP 429: retry the same batch after backing off; never drop it."""


class TransientError(AmazonError):
    """5xx, timeouts, malformed answers: retry a bounded number of times."""


class BatchRejected(AmazonError):
    """A 4xx for the whole request: retrying would not help; its ASINs get error quotes."""


class TokenRejected(AmazonError):
    """HTTP 403 Unauthorized: the cached access token was revoked or expired; refresh, retry."""


class AuthFailed(AmazonError):
    """LWA refused the credentials, or a fresh token was still refused: the cycle cannot go on."""
