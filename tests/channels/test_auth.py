"""The one refused-token flow (RefreshingAuth) and each channel's "is this a bad token" test.

The flow is checked on its own with httpx's in-memory transport (the token manager is a
stand-in that counts refreshes); the adapters' use of it runs against the simulator in
test_base.py / test_ebay.py.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ecsync.channels.auth import RefreshingAuth, refused_with_401
from ecsync.channels.thebase import BaseAdapter


class Tokens:
    label = "test account"

    def __init__(self) -> None:
        self.token = "old"
        self.refreshes = 0

    async def access(self) -> str:
        return self.token

    async def refreshed(self, stale: str) -> str:
        assert stale == self.token
        self.refreshes += 1
        self.token = f"new{self.refreshes}"
        return self.token


def _client(answers: list[int], seen: list[str]) -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(answers[len(seen) - 1], json={})

    return httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://t")


@pytest.mark.parametrize(
    ("answers", "sent", "refreshes", "status"),
    [
        ([200], ["Bearer old"], 0, 200),
        ([401, 200], ["Bearer old", "Bearer new1"], 1, 200),
        ([401, 401, 200], ["Bearer old", "Bearer new1"], 1, 401),  # once, never twice
    ],
)
async def test_refused_token_is_refreshed_and_the_call_sent_once_more(
    answers: list[int], sent: list[str], refreshes: int, status: int
) -> None:
    tokens = Tokens()
    draws: list[int] = []

    async def draw() -> None:
        draws.append(1)

    seen: list[str] = []
    auth = RefreshingAuth(tokens, refused_with_401, draw)  # type: ignore[arg-type]
    async with _client(answers, seen) as client:
        response = await client.get("/x", auth=auth)
    assert response.status_code == status
    assert seen == sent
    assert tokens.refreshes == refreshes
    assert len(draws) == refreshes  # the resend is a call of its own for the budget


def _answer(status: int, body: dict[str, Any]) -> httpx.Response:
    return httpx.Response(status, json=body)


@pytest.mark.parametrize(
    ("status", "body", "refused"),
    [
        (
            400,
            {"error": "invalid_request", "error_description": "アクセストークンが無効です。"},
            True,
        ),
        (400, {"error": "invalid_request", "error_description": "invalid access token"}, True),
        (400, {"error": "invalid_request", "error_description": ""}, True),
        (
            400,
            {
                "error": "invalid_request",
                "error_description": "デジタルコンテンツは編集できません。",
            },
            False,
        ),
        (400, {"error": "bad_item_id", "error_description": "商品IDが不正です。"}, False),
        (400, {"error": "hour_api_limit", "error_description": ""}, False),
        (401, {"error": "invalid_request"}, True),
        (403, {"error": "invalid_scope", "error_description": ""}, False),
        (200, {"items": []}, False),
    ],
)
def test_base_tells_a_bad_token_from_other_invalid_requests(
    status: int, body: dict[str, Any], refused: bool
) -> None:
    assert BaseAdapter._token_refused(None, _answer(status, body)) is refused  # type: ignore[arg-type]


def test_ebay_bad_token_is_a_401() -> None:
    assert refused_with_401(_answer(401, {"errors": []}))
    assert not refused_with_401(_answer(400, {"errors": []}))
    assert not refused_with_401(_answer(403, {"errors": []}))
