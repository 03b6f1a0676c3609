"""Many sessions of every page against one ``odeviz serve``, in a real browser, printed as JSON: what a
class leaves behind. For each page in turn: one session to warm up (imports, caches, first-use
allocations), then ``--cycles`` sessions, each opened in a new tab, trained until an iteration shows,
and closed, and the server's RSS read once that session has ended (seconds after its tab closed). Reported per page: seconds per cycle, the server's threads and RSS after the warm-up and
after the cycles (once the closed sessions have ended), the RSS growth per cycle, the RSS after each
cycle and the growth per cycle over the second half (a leak keeps growing there; heap the allocator
made once, in the first sessions, does not). The machine may
be shared: the report carries the load averages.

    PYTHONPATH=. python benchmarks/bench_lifecycle.py [--cycles 30] [--pages continuity,cnf]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the browser harness lives with the tests

from harness import free_port, launch_chromium, open_train_close, running, settled  # noqa: E402

from odeviz.views import PAGES  # noqa: E402

MB = 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=30)
    parser.add_argument("--pages", default=",".join(PAGES))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    port = free_port()
    command = [sys.executable, "-m", "odeviz", "serve", "--port", str(port)]
    report = {"cycles": args.cycles, "load_average_before": os.getloadavg(), "pages": {}}
    with running(command, f"http://127.0.0.1:{port}/", timeout=300) as base, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        for slug in args.pages.split(","):
            open_train_close(browser, base + slug)
            threads_before, rss_before = settled(base.pid)
            start, rss_each = time.perf_counter(), []
            for _ in range(args.cycles):
                open_train_close(browser, base + slug)
                rss_each.append(settled(base.pid, threads_before)[1])  # once the closed session has ended
            seconds = time.perf_counter() - start  # each cycle with the wait for its session's end
            threads_after, rss_after = settled(base.pid, threads_before)
            half = len(rss_each) // 2
            report["pages"][slug] = {
                "seconds_per_cycle": round(seconds / args.cycles, 2),
                "threads_before": threads_before, "threads_after": threads_after,
                "rss_before_mb": round(rss_before / MB), "rss_after_mb": round(rss_after / MB),
                "rss_growth_mb_per_cycle": round((rss_after - rss_before) / MB / args.cycles, 2),
                # A leak grows at every cycle; heap the allocator keeps once made shows in the first ones only.
                "rss_mb_after_each_cycle": [round(rss / MB) for rss in rss_each],
                "rss_growth_mb_per_cycle_second_half": round((rss_each[-1] - rss_each[half - 1]) / MB / (len(rss_each) - half), 2)
                if half else None,
            }
            print(slug, report["pages"][slug], file=sys.stderr, flush=True)
        browser.close()
    report["load_average_after"] = os.getloadavg()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
