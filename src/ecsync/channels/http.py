"""HTTP plumbing the channel adapters share: timeouts, stop-aware sends, jittered backoff.

Retries of a transient failure go through :func:`retrying` (tenacity), whose waits are
:func:`pause`: a stop request ends a backoff at once with Interrupted.

Every channel call goes through :func:`send`, so none can outlive its total timeout and
none outlives a SIGTERM: the exchange is abandoned the moment the run's ``Stop`` is set.
Token refreshes are the one exception (see ``tokens.py``): they run to their timeout, because
abandoning a refresh that the server has already rotated would lose the new refresh token.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from ecsync.clock import Stop
from ecsync.errors import Interrupted

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class HttpOptions:
    """Timeouts, retries and parallelism of one adapter; the defaults suit the real APIs."""

    connect_timeout_s: float = 10.0
    read_timeout_s: float = 30.0
    total_timeout_s: float = 60.0
    max_retries: int = 3  # per call, on 5xx / timeouts / malformed answers
    retry_base_s: float = 0.5
    retry_cap_s: float = 15.0
    concurrency: int = 4  # calls in flight at once per adapter
    token_margin_s: float = 300.0  # refresh an access token this long before it expires
    lease_s: float = 90.0  # longest one process may hold the cross-process refresh lease
    time_scale: float = 1.0  # a simulator at --speed X: call windows last 1/X as long


class Transient(Exception):
    """A failure worth retrying as-is: 5xx, timeout, transport error, malformed answer."""


def make_client(endpoint: str, options: HttpOptions) -> httpx.AsyncClient:
    timeout = httpx.Timeout(
        connect=options.connect_timeout_s,
        read=options.read_timeout_s,
        write=options.read_timeout_s,
        pool=options.connect_timeout_s,
    )
    limits = httpx.Limits(
        max_connections=options.concurrency + 2, max_keepalive_connections=options.concurrency
    )
    return httpx.AsyncClient(base_url=endpoint.rstrip("/"), timeout=timeout, limits=limits)


async def until_stopped(stop: Stop, work: Coroutine[Any, Any, T]) -> T:
    """Await ``work`` unless the stop request comes first; then cancel it and raise."""
    if stop.is_set():
        work.close()
        raise Interrupted(stop.reason)
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
    if task.cancelled():
        raise Interrupted(stop.reason)
    return task.result()


async def send(
    client: httpx.AsyncClient,
    options: HttpOptions,
    method: str,
    path: str,
    *,
    stop: Stop | None,
    **kwargs: Any,
) -> httpx.Response:
    """One HTTP exchange within the total timeout; transport failures become Transient.

    With ``stop`` the exchange is abandoned at once on a stop request (Interrupted).
    """
    try:
        async with asyncio.timeout(options.total_timeout_s):
            request = client.request(method, path, **kwargs)
            if stop is None:
                return await request
            return await until_stopped(stop, request)
    except TimeoutError:
        raise Transient(f"no answer within {options.total_timeout_s:g} s (total timeout)") from None
    except httpx.TimeoutException as exc:
        raise Transient(f"timed out ({type(exc).__name__})") from None
    except httpx.TransportError as exc:
        raise Transient(f"{type(exc).__name__}: {exc}") from None


def json_body(response: httpx.Response, *, quote: bool = True) -> Any:
    """The decoded JSON body; a body that is not JSON is a malformed (transient) answer.

    ``quote=False`` keeps the body out of the error text (token endpoints: it may hold one).
    """
    try:
        return response.json()
    except ValueError:
        snippet = f" {response.text[:80].replace(chr(10), ' ')!r}" if quote else ""
        raise Transient(f"HTTP {response.status_code}: malformed answer{snippet}") from None


def backoff_s(options: HttpOptions, attempt: int, rng: random.Random) -> float:
    """Exponential backoff with equal jitter, so parallel workers do not retry in step."""
    ceiling = min(options.retry_cap_s, options.retry_base_s * 2.0**attempt)
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


async def pause(stop: Stop, seconds: float) -> None:
    """A backoff wait that ends at once, with Interrupted, on a stop request."""
    if await stop.sleep(seconds):
        raise Interrupted(stop.reason)


def retrying(
    options: HttpOptions,
    stop: Stop,
    rng: random.Random,
    before_sleep: Callable[[RetryCallState], None] | None = None,
) -> AsyncRetrying:
    """Retry a block on :class:`Transient` up to ``options.max_retries`` times, backing off
    with :func:`backoff_s` in stop-aware waits; then the last Transient is raised as is.
    Any other exception passes through at once.

    Use as ``async for attempt in retrying(...): with attempt: ...``.
    """
    return AsyncRetrying(
        stop=stop_after_attempt(options.max_retries + 1),
        retry=retry_if_exception_type(Transient),
        wait=lambda state: backoff_s(options, state.attempt_number - 1, rng),
        sleep=functools.partial(pause, stop),
        before_sleep=before_sleep,
        reraise=True,
    )


async def bounded_map(func: Callable[[T], Awaitable[R]], items: Sequence[T], limit: int) -> list[R]:
    """``func`` over ``items`` with at most ``limit`` in flight; results in input order.

    On the first exception the other calls are cancelled and the exception propagates
    (no ExceptionGroup, no orphan tasks still spending calls in the background).
    """
    semaphore = asyncio.Semaphore(max(1, limit))

    async def one(item: T) -> R:
        async with semaphore:
            return await func(item)

    tasks = [asyncio.ensure_future(one(item)) for item in items]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
