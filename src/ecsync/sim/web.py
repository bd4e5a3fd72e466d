"""Small HTTP helpers the route modules share: JSON bodies, form bodies, request ids.

Starlette's own form parser needs python-multipart even for urlencoded bodies, and its
JSONResponse escapes nothing we care about, so these few lines keep the routes lean and
the simulator free of extra dependencies.
"""

from __future__ import annotations

import json
import uuid
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

JSON_TYPE = "application/json"


def dumps(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(data), status_code=status, headers=headers, media_type=JSON_TYPE)


class BadBody(ValueError):
    """The request body is not what the route accepts; the message says why."""


async def read_json(request: Request) -> Any:
    body = await request.body()
    if not body:
        raise BadBody("the request body is empty")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadBody(f"the request body is not valid JSON: {exc}") from None


async def read_params(request: Request) -> dict[str, str]:
    """Form-encoded fields, or a JSON object's fields (LWA accepts both), as strings."""
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    if "json" in content_type:
        try:
            data = json.loads(body or b"{}")
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise BadBody("the request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise BadBody("the request body must be a JSON object")
        return {str(k): "" if v is None else str(v) for k, v in data.items()}
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise BadBody("the request body is not UTF-8") from None
    return dict(parse_qsl(text, keep_blank_values=True))


def request_id() -> str:
    return str(uuid.uuid4())


def http_date(timestamp: float) -> str:
    return formatdate(timestamp, usegmt=True)


def bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""
