#!/usr/bin/env python3
"""Start-up time: launch until 50 trivial HTTP services all answer `/`.

Usage: .venv/bin/python bench/runtime/startup.py [--rounds 5] [--services 50]

Candidates, interleaved (the order rotates each round) and repeated:
  lsq     `lsq up -d` in the same app folder as the round before, as a
          developer starts an app again and again (`.lsq/` keeps the
          manifest cache, ports and state); timed until it returns (it
          returns once every health check passed); the 50 ports are then
          polled to confirm.
  lsq-first  the same in a new app folder every round: a first start.
  honcho  `honcho start` on a Procfile, timed until our poller sees all 50.
  circus  `circusd` on a generated ini with 50 watchers, same poller.
  supervisord  `supervisord` on a generated config with 50 programs, same
          poller.
  bare    asyncio.create_subprocess_exec for all 50, same poller, inside
          this script's interpreter: the floor, without a launcher's start.
  bare-program  the same spawning and polling as a program of its own
          (`bare_launcher.py`), timed from its start until it says all are
          up: the floor for a launcher that someone runs, as LSQ, honcho and
          circus are run (each pays its interpreter's start and imports).
honcho, circus and supervisord live in their own venv (LSQ_BENCH_PEERS, default
/tmp/lsq-bench-peers), created on first use.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

STARTERS: dict[str, Callable[[int], c.Running]] = {
    "lsq": c.start_lsq_repeat,
    "lsq-first": c.start_lsq,
    "honcho": c.start_honcho,
    "circus": c.start_circus,
    "supervisord": lambda n: c.start_supervisord(n, quick_stop=True),
    "bare": c.start_bare,
    "bare-program": c.start_bare_program,
}


def one_round(order: list[str], count: int) -> dict[str, c.Running]:
    done = {}
    for name in order:
        run = STARTERS[name](count)
        if len(run.pids) != count:
            raise RuntimeError(f"{name}: found {len(run.pids)} services, not {count}")
        c.stop_and_clean(run)
        done[name] = run
    return done


def report(results: list[dict[str, c.Running]]) -> None:
    secs = {n: [r[n].extra["seconds"] for r in results] for n in STARTERS}
    print("\nseconds until all healthy, min / median / max:")
    for name, values in secs.items():
        print(f"  {name:12s} {c.fmt3(values)}")
    confirmed = [r["lsq"].extra["confirmed"] for r in results]
    print(f"  lsq up -d + ps + own poll confirms: {c.fmt3(confirmed)}")
    print("\nratios (per-round pairs min / median / max; ratio of medians):")
    for ours in ("lsq", "lsq-first"):
        pairs_of = (("bare-program", "<= 1.15"), ("bare", "<= 1.15 (in-process floor)"),
                    ("circus", "< 1"), ("honcho", "< 1"), ("supervisord", "< 1"))
        for peer, target in pairs_of:
            pairs = [a / b for a, b in zip(secs[ours], secs[peer])]
            of_medians = statistics.median(secs[ours]) / statistics.median(secs[peer])
            note = f"  target {target}" if target else ""
            print(f"  {ours}/{peer:12s} {c.fmt3(pairs, '')}; {of_medians:.2f}{note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--services", type=int, default=50)
    args = parser.parse_args()
    c.print_machine()
    c.ensure_peers()
    names = list(STARTERS)
    results = []
    for i in range(args.rounds):
        order = names[i % len(names) :] + names[: i % len(names)]
        done = one_round(order, args.services)
        row = "  ".join(f"{n} {done[n].extra['seconds']:.2f}s" for n in order)
        print(f"round {i + 1}: {row}", flush=True)
        results.append(done)
    report(results)


if __name__ == "__main__":
    main()
