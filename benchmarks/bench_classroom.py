"""A class on one server, printed as JSON: N classifier sessions all training against one ``odeviz
serve``, in process (threads) and with ``--workers 2`` (a Dask LocalCluster), and followers of one
teacher.

Each round: one real Chromium page (the observed one: the rtol slider → re-solved picture latency
while training, and its picture rate) plus N − 1 light clients, Bokeh's own ``bokeh.client`` sessions
that receive every update over the websocket but render nothing (a student's laptop renders its own
page on its own CPU). Every session presses Train (the light ones through the page's keyboard
shortcut, Space, the same message a browser sends); after a warm-up, over ``--seconds``: each
session's iterations per second (the last iteration its history shows), picture updates per second
on every page, the server's and the workers' CPU (in cores) and RSS. Then a teacher page shares its
session and ``--followers`` light clients follow it: the CPU each follower costs, from the server's
CPU with and without them.

The machine may be shared: the report carries the load averages; compare numbers within one run.

    PYTHONPATH=. python benchmarks/bench_classroom.py [--sessions 1,5,10,20,30] [--modes threads,workers]
                                                     [--seconds 15] [--followers 30]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the browser harness lives with the tests
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_latency import ACTION_CLOCK_JS, rtol_latency  # noqa: E402
from harness import LightClient, free_port, launch_chromium, running, threads_and_rss, wait_for_first_picture  # noqa: E402

MB = 2**20
PICTURE_SOURCE = LightClient.PICTURE_SOURCE
TICKS = os.sysconf("SC_CLK_TCK")
# Counts the observed page's picture updates in the browser.
COUNT_PICTURES_JS = """(name) => {
  window.__pictures = 0;
  Bokeh.documents[0].get_model_by_name(name).change.connect(() => { window.__pictures += 1; });
}"""
LAST_ITERATION_JS = """() => { const it = Bokeh.documents[0].get_model_by_name('history').data.iteration;
  return it.length ? it[it.length - 1] : 0; }"""


def processes_under(pid: int) -> list[int]:
    """``pid`` and every process below it (the Dask workers a LocalCluster started)."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_mb(pid: int) -> float:
    try:
        return threads_and_rss(pid)[1] / MB
    except OSError:  # the process ended meanwhile
        return 0.0


class Usage:
    """CPU (cores) of the server process and of the processes under it over an interval, and their RSS."""

    def __init__(self, server: int) -> None:
        self.server = server
        self.start = time.monotonic()
        self.cpu = {pid: cpu_seconds(pid) for pid in processes_under(server)}

    def report(self) -> dict:
        seconds = time.monotonic() - self.start
        pids = processes_under(self.server)
        cores = {pid: (cpu_seconds(pid) - self.cpu.get(pid, 0.0)) / seconds for pid in pids}
        workers = [pid for pid in pids if pid != self.server]
        return {
            "server_cpu_cores": round(cores[self.server], 2),
            "workers_cpu_cores": round(sum(cores[pid] for pid in workers), 2),
            "server_rss_mb": round(rss_mb(self.server)),
            "workers_rss_mb": round(sum(rss_mb(pid) for pid in workers)),
        }


def spread(values: list[float]) -> dict:
    """Mean, min and max; (max − min) / mean, and the farthest value's distance from the mean, in %."""
    mean = statistics.fmean(values)
    return {"mean": round(mean, 2), "min": round(min(values), 2), "max": round(max(values), 2),
            "spread_pct": round(100 * (max(values) - min(values)) / mean, 1) if mean else None,
            "worst_off_mean_pct": round(100 * max(abs(value - mean) for value in values) / mean, 1) if mean else None}


def slider_latency(page, presses: int) -> dict:
    """rtol key press → re-solved picture; a picture that takes over a minute is reported as such."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        return rtol_latency(page, presses)["all_redrawn"]
    except PlaywrightTimeout:
        return {"over_60_s": True}


def class_rounds(browser, base: str, pid: int, sizes: list[int], seconds: float, presses: int) -> list[dict]:
    """The observed Chromium page trains; light clients join until ``sizes[i]`` sessions train at once,
    then each round measures what every session gets."""
    url = f"{base}/classifier"
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    page.goto(url)
    wait_for_first_picture(page, timeout=300_000)
    page.evaluate(ACTION_CLOCK_JS)
    page.get_by_role("button", name="Train", exact=True).click()
    page.wait_for_selector("text=/Iteration [1-9]/", timeout=300_000)
    clients, rounds = [], []
    for sessions in sizes:
        opened = time.perf_counter()
        while len(clients) < sessions - 1:
            clients.append(LightClient(url))
        opening = time.perf_counter() - opened
        page.wait_for_timeout(3000)  # everyone under way
        # A Train press a loaded server did not take (seen for a few of 20 sessions opened one after
        # another): pressed again, as a student would, and counted.
        pressed_again = [client for client in clients if client.untrained()]
        for client in pressed_again:
            client.press_train()
        if pressed_again:
            page.wait_for_timeout(3000)
        page.evaluate(COUNT_PICTURES_JS, PICTURE_SOURCE)
        usage = Usage(pid)
        clients_cpu = time.process_time()  # this process: the light clients decoding every update
        start = time.monotonic()
        first = [client.read() for client in clients]
        page_first = page.evaluate(LAST_ITERATION_JS)
        page.wait_for_timeout(1000 * seconds)
        last = [client.read() for client in clients]
        still_untrained = [client.untrained() for client in clients]
        page_last = page.evaluate(LAST_ITERATION_JS)
        elapsed = time.monotonic() - start
        resources = usage.report()
        resources["light_clients_cpu_cores"] = round((time.process_time() - clients_cpu) / elapsed, 2)
        page_pictures = page.evaluate("() => window.__pictures")
        rates = [(page_last - page_first) / elapsed] + [(b[0] - a[0]) / elapsed for a, b in zip(first, last)]
        picture_rates = [page_pictures / elapsed] + [(b[1] - a[1]) / elapsed for a, b in zip(first, last)]
        rounds.append({
            "sessions": sessions,
            "iterations_per_s_per_session": spread(rates),
            "iterations_per_s_total": round(sum(rates), 1),
            "iterations_per_s_each": [round(rate, 2) for rate in rates],  # the Chromium page first
            "sessions_without_progress": sum(rate <= 0 for rate in rates),
            # light clients whose Train press did not take (pressed again), still untrained at the end, or not answering
            "clients_pressed_train_again": len(pressed_again), "clients_still_untrained": still_untrained.count(True),
            "clients_not_answering": still_untrained.count(None),
            "clients_disconnected": sum(client.disconnected is not None for client in clients),
            "picture_updates_per_s": spread(picture_rates),
            "rtol_slider_to_picture_while_training": slider_latency(page, presses),
            "seconds_to_open_the_new_sessions": round(opening, 1),
            **resources,
        })
        print(json.dumps(rounds[-1]), file=sys.stderr, flush=True)
    LightClient.close_all(clients)
    page.close()
    return rounds


def followers_round(browser, base: str, pid: int, followers: int, seconds: float) -> dict:
    """A training teacher page, then the server's CPU before and after ``followers`` follow it."""
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    page.goto(f"{base}/classifier")
    wait_for_first_picture(page, timeout=300_000)
    page.get_by_role("button", name="Share live").click()
    href = page.locator(".odeviz-share-link a").first.get_attribute("href", timeout=30_000)
    live_id = href.split("follow=", 1)[1]
    page.get_by_role("button", name="Train", exact=True).click()
    page.wait_for_timeout(3000)
    usage = Usage(pid)
    page.wait_for_timeout(1000 * seconds)
    alone = usage.report()
    clients = [LightClient(f"{base}/classifier", arguments={"follow": live_id}, train=False) for _ in range(followers)]
    page.wait_for_timeout(3000)
    usage = Usage(pid)
    start = time.monotonic()
    first_pictures = [client.read()[1] for client in clients]
    page.wait_for_timeout(1000 * seconds)
    pictures = [client.read()[1] for client in clients]
    elapsed = time.monotonic() - start
    followed = usage.report()
    LightClient.close_all(clients)
    page.close()
    extra = followed["server_cpu_cores"] + followed["workers_cpu_cores"] - alone["server_cpu_cores"] - alone["workers_cpu_cores"]
    return {
        "followers": followers,
        "cpu_cores_teacher_alone": round(alone["server_cpu_cores"] + alone["workers_cpu_cores"], 2),
        "cpu_cores_with_followers": round(followed["server_cpu_cores"] + followed["workers_cpu_cores"], 2),
        "cpu_share_of_a_core_per_follower_pct": round(100 * extra / followers, 1),
        "follower_picture_updates_per_s": spread([(b - a) / elapsed for a, b in zip(first_pictures, pictures)]),
    }


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="1,5,10,20,30")
    parser.add_argument("--modes", default="threads,workers")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--presses", type=int, default=8)
    parser.add_argument("--followers", type=int, default=30)
    parser.add_argument("--server-log", type=Path, help="keep the server's output in this file (MODE is replaced by the mode)")
    args = parser.parse_args()
    report: dict = {"benchmark": "classroom: N classifier sessions training on one odeviz serve",
                    "load_average_1_5_15min": {"start": [round(v, 2) for v in os.getloadavg()]}, "modes": {}}
    for mode in args.modes.split(","):
        port = free_port()
        command = [sys.executable, "-m", "odeviz", "serve", "--port", str(port)]
        if mode == "workers":
            command += ["--workers", "2"]
        log_path = Path(str(args.server_log).replace("MODE", mode)) if args.server_log else None
        with running(command, f"http://127.0.0.1:{port}/", timeout=300, log_path=log_path) as base, \
                sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            sizes = [int(size) for size in args.sessions.split(",")]
            rounds = class_rounds(browser, base.rstrip("/"), base.pid, sizes, args.seconds, args.presses)
            followers = (followers_round(browser, base.rstrip("/"), base.pid, args.followers, args.seconds)
                         if args.followers else None)
            browser.close()
        report["modes"][mode] = {"command": " ".join(command[1:]), "rounds": rounds, "followers": followers}
        report["load_average_1_5_15min"][f"after_{mode}"] = [round(v, 2) for v in os.getloadavg()]
    report["note"] = ("a shared 2-core machine: the observed Chromium page renders on the same cores; "
                      "compare numbers within one run")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
