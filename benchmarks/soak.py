"""Soak: `ecsync daemon` for several simulated days at high speed, with the market moving and
random faults, printing per simulated day the daemon's RSS, the database size and the
journal's rows, so a leak or unbounded growth shows as a trend.

    .venv/bin/python benchmarks/soak.py [--days 6] [--speed 5000] [--interval 6h]
                                        [--products 1000] [--keep-days 2] [--long]

One simulated day lasts 86,400 / speed wall seconds (17.3 s at the default speed: the run is
bounded by days x that, about 2 minutes, plus start-up). The interval must leave a cycle
time to finish (6 h at speed 5000 is 4.3 s of wall time; 90 % of it is the deadline).
``--long`` runs 30 days. ``--keep-days`` is the journal retention (``[journal] keep_days``)
the soak configures, short so that retention is seen working within the run.
Prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from harness import ECSYNC, Shop, simulator_shop

DAY_S = 86_400.0
STEPS_PER_DAY = 4  # the market moves every 6 simulated hours
FAULT_KINDS = [
    ("spapi", "throttle", 0.05),
    ("spapi", "error500", 0.03),
    ("spapi", "item_error", 0.03),
    ("base", "error500", 0.03),
    ("base", "malformed", 0.02),
    ("ebay", "error500", 0.03),
    ("ebay", "item_error", 0.03),
]


def rss_mib(pid: int) -> float:
    """Resident memory of a live process (Linux /proc), in MiB; 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def db_mib(shop: Shop) -> float:
    files = [shop.dir / name for name in ("ecsync.db", "ecsync.db-wal")]
    return sum(f.stat().st_size for f in files if f.exists()) / 2**20


def journal_rows(shop: Shop) -> tuple[int, int]:
    with sqlite3.connect(f"file:{shop.dir / 'ecsync.db'}?mode=ro", uri=True, timeout=30) as db:
        changes = db.execute("SELECT count(*) FROM changes").fetchone()[0]
        cycles = db.execute("SELECT count(*) FROM cycles").fetchone()[0]
    return int(changes), int(cycles)


def random_faults(rng: random.Random) -> dict[str, dict[str, float]]:
    spec: dict[str, dict[str, float]] = {}
    for api, kind, rate in rng.sample(FAULT_KINDS, k=2):
        spec.setdefault(api, {})[kind] = rate
    return spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=6)
    parser.add_argument("--speed", type=float, default=5_000.0)
    parser.add_argument("--interval", default="6h", help="the daemon's (simulated) interval")
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--keep-days", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--long", action="store_true", help="30 simulated days")
    parser.add_argument("--show-log", action="store_true", help="print the daemon log's tail")
    args = parser.parse_args()
    days = 30 if args.long else args.days
    rng = random.Random(args.seed)
    sim = ["--products", str(args.products), "--speed", str(args.speed), "--seed", str(args.seed)]
    sim += ["--base-accounts", "2", "--ebay-accounts", "1", "--ebay-share", "0.2"]
    with simulator_shop(*sim) as shop:
        with shop.config.open("a", encoding="utf-8") as config:
            config.write(f"\n[journal]\nkeep_days = {args.keep_days}\n")
        log = (shop.dir / "daemon.out").open("w")
        daemon = subprocess.Popen(
            [*ECSYNC, "--config", str(shop.config), "daemon", "--interval", args.interval],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        day_s = DAY_S / args.speed
        print(
            f"soak: {days} simulated days at speed {args.speed:g} ({day_s:.1f} s each), "
            f"{args.products} products, interval {args.interval}, keep_days {args.keep_days}"
        )
        print("day  rss_mib  db_mib  changes  cycles  faults")
        started = time.monotonic()
        try:
            for day in range(1, days + 1):
                faults = random_faults(rng)
                shop.http.put("/_sim/faults", json=faults).raise_for_status()
                for step in range(STEPS_PER_DAY):
                    # Each step waits for its share of the simulated day on the wall clock:
                    # this *is* the soak's time base, not a synchronisation.
                    until = started + (day - 1 + (step + 1) / STEPS_PER_DAY) * day_s
                    body = {"fraction": 0.05, "seed": args.seed * 100_000 + day * 10 + step}
                    shop.http.post("/_sim/market/step", json=body).raise_for_status()
                    time.sleep(max(0.0, until - time.monotonic()))
                    if daemon.poll() is not None:
                        raise SystemExit(f"the daemon exited ({daemon.returncode})")
                changes, cycles = journal_rows(shop)
                named = ",".join(f"{a}.{k}" for a, kinds in faults.items() for k in kinds)
                print(
                    f"{day:>3}  {rss_mib(daemon.pid):7.1f}  {db_mib(shop):6.2f}  "
                    f"{changes:7d}  {cycles:6d}  {named}",
                    flush=True,
                )
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=60)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait(timeout=30)
            log.close()
        print(f"daemon exit {daemon.returncode} after {time.monotonic() - started:.0f} s")
        with sqlite3.connect(shop.dir / "ecsync.db") as db:
            rows = db.execute("SELECT status, count(*) FROM cycles GROUP BY status").fetchall()
        print("cycles by status:", dict(rows))
        if args.show_log:
            print((shop.dir / "daemon.out").read_text()[-4000:])


if __name__ == "__main__":
    main()
