"""Progress of long work: a live display on a terminal, one log line per step elsewhere."""

from __future__ import annotations

import logging
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ecsync.engine.fetch import BatchReport, FetchStats

log = logging.getLogger(__name__)


class FetchProgress:
    """Implements the fetch observer for the CLI."""

    def __init__(self, console: Console, *, live: bool) -> None:
        self._live = live
        self._progress = Progress(
            TextColumn("fetch"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:.1f} ASINs/s"),
            TextColumn("throttled {task.fields[throttled]}"),
            TextColumn("errors {task.fields[errors]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._task = self._progress.add_task("fetch", total=None, rate=0.0, throttled=0, errors=0)
        self._clock_start: float | None = None

    def __enter__(self) -> FetchProgress:
        if self._live:
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live:
            self._progress.stop()

    def fetch_started(self, asins: int, batches: int) -> None:
        self._progress.update(self._task, total=batches)
        log.info("fetching %d ASINs in %d batches", asins, batches)

    def batch_done(self, report: BatchReport, stats: FetchStats) -> None:
        elapsed = max(1e-6, self._progress.tasks[0].elapsed or 1e-6)
        done_asins = sum(stats.statuses.values())
        self._progress.update(
            self._task,
            completed=stats.batches_done,
            rate=done_asins / elapsed,
            throttled=stats.throttled,
            errors=stats.statuses.get("error", 0),
        )
        parts = [f"{count} {status.replace('_', ' ')}" for status, count in report.statuses.items()]
        message = "batch %d/%d: %d ASINs in %.2f s, %s"
        args = (report.index, report.total, report.asins, report.seconds, ", ".join(parts))
        if self._live:
            log.debug(message, *args)
        else:
            log.info(message, *args)
