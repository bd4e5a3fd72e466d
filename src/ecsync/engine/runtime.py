"""Running async work from the CLI with SIGINT/SIGTERM turned into a clean stop."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ecsync.clock import Stop

T = TypeVar("T")


def run_with_stop(main: Callable[[Stop], Awaitable[T]]) -> T:
    """Run ``main(stop)``; the first SIGINT/SIGTERM sets ``stop``, a second one aborts."""

    async def runner() -> T:
        stop = Stop()
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []

        def on_signal(sig: signal.Signals) -> None:
            stop.set(f"{sig.name} received")
            for other in installed:
                loop.remove_signal_handler(other)

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, on_signal, sig)
                installed.append(sig)
            except (NotImplementedError, RuntimeError):  # Windows, or not the main thread
                pass
        try:
            return await main(stop)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    return asyncio.run(runner())
