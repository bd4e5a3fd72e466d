"""Bearer tokens with lifetimes in simulated time, shared by the three OAuth servers.

A token is an opaque random string mapped to its subject (the LWA client id, the BASE or
eBay account name) and its expiry on the :class:`SimClock`. Revoking everything at once
is how the ``revoke_tokens`` fault makes every client face a 403/401 mid-run.
"""

from __future__ import annotations

import secrets


class TokenStore:
    """Tokens of one kind (e.g. BASE access tokens): issue, check, revoke."""

    __slots__ = ("_tokens", "prefix", "ttl")

    def __init__(self, prefix: str, ttl: float) -> None:
        self.prefix = prefix
        self.ttl = ttl
        self._tokens: dict[str, tuple[str, float]] = {}

    def issue(self, subject: str, now: float) -> str:
        token = self.prefix + secrets.token_urlsafe(24)
        self._tokens[token] = (subject, now + self.ttl)
        return token

    def add(self, token: str, subject: str, expires_at: float) -> None:
        """Register a token minted elsewhere (the refresh tokens handed out in the config)."""
        self._tokens[token] = (subject, expires_at)

    def check(self, token: str, now: float) -> str | None:
        """The token's subject, or None if unknown, expired or revoked."""
        entry = self._tokens.get(token)
        if entry is None:
            return None
        subject, expires_at = entry
        if now >= expires_at:
            del self._tokens[token]
            return None
        return subject

    def expired(self, token: str, now: float) -> bool:
        """Whether ``token`` is known but past its expiry (BASE words the two refusals
        differently); ``check`` forgets an expired token, so ask this first."""
        entry = self._tokens.get(token)
        return entry is not None and now >= entry[1]

    def revoke(self, token: str) -> None:
        self._tokens.pop(token, None)

    def revoke_all(self) -> int:
        count = len(self._tokens)
        self._tokens.clear()
        return count

    def __len__(self) -> int:
        return len(self._tokens)
