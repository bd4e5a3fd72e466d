"""Running the simulator: in a background thread for tests and the demo, or in the foreground.

The listening socket is bound before uvicorn starts, so port 0 resolves to a real port
that the written config and the returned URL can name. Hung requests (the ``hang`` fault)
are released as the first step of shutdown, before uvicorn waits for open connections,
so stopping never waits on them.

While it serves, the heap that existed at start (the market, and in tests the whole test
process) is frozen out of Python's cyclic garbage collector: a full collection over it
stops every thread for 0.2-0.3 s on a loaded machine, and a simulator that stops its clock's
requests that long meters their arrival late, refusing on-time requests that Amazon, whose
metering never pauses, would accept.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import uvicorn
from starlette.applications import Starlette

from ecsync.errors import Interrupted
from ecsync.sim.app import create_app
from ecsync.sim.options import SimOptions
from ecsync.sim.seeding import build_state, write_config
from ecsync.sim.state import SimState

__all__ = ["SimHandle", "SimOptions", "running_simulator", "serve"]

log = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 30.0


@dataclass
class SimHandle:
    """A running simulator: its base URL, its live state, and the config it wrote."""

    url: str
    state: SimState
    config_path: Path | None = None


class _Server(uvicorn.Server):
    """uvicorn with three changes: hung requests are freed first on shutdown, a callback
    runs once listening, and a signal is recorded rather than re-raised on exit."""

    def __init__(
        self,
        config: uvicorn.Config,
        state: SimState,
        on_started: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config)
        self._sim = state
        self._on_started = on_started
        self.stop_signal: int | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self._on_started is not None:
            self._on_started()

    async def main_loop(self) -> None:
        """uvicorn's loop, but noticing ``should_exit`` within 10 ms instead of 100 ms, so
        tests that start and stop many simulators stay fast."""
        counter = 0
        while not await self.on_tick(counter):
            for _ in range(10):
                await asyncio.sleep(0.01)
                if self.should_exit:
                    break
            counter = (counter + 1) % 864_000

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._sim.faults.release_all()
        await super().shutdown(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.stop_signal = sig
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        else:
            self.should_exit = True


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio sets TCP_NODELAY on accepted sockets only then, and
    # without it every small response waits ~40 ms on delayed ACKs.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _url(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _prepare(options: SimOptions) -> tuple[SimState, socket.socket, str, Starlette, Path | None]:
    started = time.perf_counter()
    state = build_state(options)
    sock = _bind(options.host, options.port)
    url = _url(options.host, sock)
    app = create_app(state, url)
    path = write_config(options.write_config, state, url) if options.write_config else None
    log.info("simulator ready to serve %s (built in %.2fs)", url, time.perf_counter() - started)
    return state, sock, url, app, path


def _uvicorn_config(app: Starlette) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=3,
        timeout_keep_alive=30,
    )


@contextmanager
def _frozen_heap() -> Iterator[None]:
    """Leave the existing heap out of garbage collections while serving (see the module
    docstring); whatever was frozen is handed back to the collector afterwards."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextmanager
def running_simulator(options: SimOptions) -> Iterator[SimHandle]:
    """Serve in a background thread on ``options.port`` (0: a free one) until the block ends."""
    state, sock, url, app, path = _prepare(options)
    server = _Server(_uvicorn_config(app), state)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="ecsync-sim", daemon=True
    )
    gc.freeze()  # as in _frozen_heap: no full collection pauses the metering while serving
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            gc.unfreeze()
            raise RuntimeError(f"the simulator did not start on {url}")
        time.sleep(0.005)
    try:
        yield SimHandle(url=url, state=state, config_path=path)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        gc.unfreeze()
        if thread.is_alive():
            log.warning("simulator thread did not stop within 15 s")


def serve(options: SimOptions, on_ready: Callable[[str], None]) -> None:
    """Serve in the foreground until SIGINT/SIGTERM; ``on_ready(url)`` once listening.

    After a signal the server stops cleanly, then :class:`ecsync.errors.Interrupted` is
    raised so the CLI exits with 130, as INTERFACE.md asks of an interrupted command.
    """
    state, sock, url, app, _ = _prepare(options)
    server = _Server(_uvicorn_config(app), state, on_started=lambda: on_ready(url))
    try:
        with _frozen_heap():
            server.run(sockets=[sock])
    finally:
        sock.close()
    if server.stop_signal is not None:
        name = signal.Signals(server.stop_signal).name
        raise Interrupted(f"simulator stopped by {name}")
