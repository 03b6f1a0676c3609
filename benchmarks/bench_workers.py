"""The worker path of a class alone, printed as JSON: N classifier sessions training in a Dask
LocalCluster of 2 workers (what ``odeviz serve --workers 2`` makes, with its default training slots),
each read by its page's stand-in at a page's poll rate (10 Hz), with no server and no browsers.

``bench_classroom.py`` measures the whole class on this machine, where the benchmark's own Chromium
page and light clients share the two cores with the server and the workers; this one leaves them out
(a student's browser runs on the student's laptop): per session, iterations and pictures per second;
on one session, the rtol change → the re-solved picture in its stand-in's mailbox (what the page would
show at its next poll, ≤ 0.1 s later).

    PYTHONPATH=. python benchmarks/bench_workers.py [--sessions 1,5,10,20,30] [--seconds 15] [--presses 10]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_classroom import spread  # noqa: E402
from bench_latency import percentiles  # noqa: E402

POLL_SECONDS = 0.1  # a page's poll period


class Pages:
    """Every session's page: reads its stand-in's mailbox at the poll rate and counts new pictures."""

    def __init__(self, experiments) -> None:
        self.experiments = experiments
        self.seen = [0] * len(experiments)
        self.pictures = [0] * len(experiments)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            for index, experiment in enumerate(self.experiments):
                news = experiment.trainer.mailbox.newer_than(self.seen[index])
                if news is not None:
                    self.seen[index] = news[0]
                    self.pictures[index] += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def knob_latency(experiment, presses: int) -> dict:
    """rtol changed → a picture at that tolerance in the stand-in's mailbox, ``presses`` times, 1 s apart."""
    latencies = []
    for press in range(presses):
        rtol = (1e-4, 1e-3)[press % 2]  # (the first differs from the default, 1e-3)
        version = experiment.trainer.mailbox.newer_than(0)[0]
        start = time.perf_counter()
        experiment.rtol = rtol
        while True:
            news = experiment.trainer.mailbox.newer_than(version)
            if news is not None:
                version, snapshot = news
                if snapshot.solver.rtol == rtol:
                    break
            time.sleep(0.005)
        latencies.append(time.perf_counter() - start)
        time.sleep(1.0)
    return percentiles(latencies)


def one_round(sessions: int, seconds: float, presses: int) -> dict:
    from odeviz.experiments import ClassifierExperiment, placement

    experiments = [placement.make_experiment(ClassifierExperiment, seed=seed) for seed in range(sessions)]
    pages = Pages(experiments)
    try:
        for experiment in experiments:
            assert experiment.trainer.wait_idle(300), "a session never became ready"
        for experiment in experiments:
            experiment.start()
        time.sleep(3.0)  # everyone under way
        first_iterations, first_pictures = [e.trainer.iteration for e in experiments], list(pages.pictures)
        start = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - start
        iterations = [(e.trainer.iteration - before) / elapsed for e, before in zip(experiments, first_iterations)]
        pictures = [(after - before) / elapsed for after, before in zip(pages.pictures, first_pictures)]
        latency = knob_latency(experiments[0], presses)
    finally:
        pages.stop()
        for experiment in experiments:
            experiment.close()
    time.sleep(2.0)  # their hosts closed
    return {"sessions": sessions, "iterations_per_s_per_session": spread(iterations),
            "iterations_per_s_total": round(sum(iterations), 1), "picture_updates_per_s": spread(pictures),
            "rtol_change_to_picture_while_training": latency, "load_average_1min": round(os.getloadavg()[0], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="1,5,10,20,30")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--presses", type=int, default=10)
    args = parser.parse_args()
    from odeviz.experiments import placement

    report = {"benchmark": "the worker path alone: N classifier sessions on a LocalCluster of 2 workers, no server",
              "load_average_1_5_15min": {"start": [round(v, 2) for v in os.getloadavg()]}, "rounds": []}
    from odeviz.cli.serve import DEFAULT_SLOTS_PER_WORKER

    placement.use_workers(workers=2, slots_per_worker=DEFAULT_SLOTS_PER_WORKER)  # as `odeviz serve --workers 2`
    try:
        for sessions in (int(size) for size in args.sessions.split(",")):
            report["rounds"].append(one_round(sessions, args.seconds, args.presses))
            print(json.dumps(report["rounds"][-1]), file=sys.stderr, flush=True)
    finally:
        placement.stop_workers()
    report["load_average_1_5_15min"]["end"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
