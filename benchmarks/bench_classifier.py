"""Training and display speed of the classifier experiment, printed as JSON.

Numbers from one run on one machine (compare them with each other, not across runs):
  baseline_torchdiffeq    the same model, data, solver and optimiser in a plain loop over torchdiffeq,
  odeviz_headless         odeviz's background trainer with its display snapshots, no page,
  odeviz_served_browser   the page under `panel serve` with Chromium attached and streaming;
  odeviz_served_hidden    the same, but the page hidden once training starts (display: none): the
                          browser still receives and applies every frame, it paints nothing, so the
                          difference to the above is the browser's drawing, not the server's work;
plus what one display snapshot costs (training and paused resolution), how many reach the browser
per second, and the time from the click on Train to the first redrawn trajectories.

    PYTHONPATH=. python benchmarks/bench_classifier.py [--seconds 10]
"""
import argparse
import json
import os
import sys
import statistics
import time
from pathlib import Path

import torch
from torch import nn
from torchdiffeq import odeint_adjoint

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the browser harness lives with the tests

from odeviz.experiments import ClassifierExperiment
from odeviz.experiments.classifier import MAP_RESOLUTION, MAP_RESOLUTION_TRAINING
from odeviz.runtime import configure_torch
from odeviz.numerics.solve import CancelToken


def baseline_iterations_per_second(seconds: float) -> float:
    """Plain torchdiffeq: the experiment's data, model, solver settings and optimiser, nothing else."""
    experiment = ClassifierExperiment()
    experiment.trainer.close()
    field, readout = experiment.model["field"], experiment.model["readout"]
    x, y = experiment.train_x, experiment.train_y
    optimizer = torch.optim.Adam(experiment.model.parameters(), lr=experiment.learning_rate)
    batches = torch.Generator().manual_seed(0)
    t = torch.tensor([0.0, 1.0])
    iterations, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        batch = torch.randperm(len(x), generator=batches)[: experiment.batch_size]
        optimizer.zero_grad()
        end = odeint_adjoint(field, x[batch], t, rtol=experiment.rtol, atol=experiment.atol, method="dopri5")[-1]
        nn.functional.cross_entropy(readout(end), y[batch]).backward()
        optimizer.step()
        iterations += 1
    return iterations / (time.perf_counter() - start)


def snapshot_milliseconds(experiment: ClassifierExperiment, map_resolution: int, repeats: int = 10) -> float:
    """Median wall time of one display snapshot of the experiment's current weights."""
    token, times = CancelToken(), []
    for _ in range(repeats):
        start = time.perf_counter()
        experiment.picture(token, 0, map_resolution)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def headless(seconds: float) -> dict:
    experiment = ClassifierExperiment()
    experiment.trainer.wait_idle()
    experiment.start()
    time.sleep(1.0)  # warm-up
    first, frames, start = experiment.trainer.iteration, experiment.trainer.mailbox.newer_than(0)[0], time.perf_counter()
    time.sleep(seconds)
    elapsed = time.perf_counter() - start
    rate = (experiment.trainer.iteration - first) / elapsed
    snapshots = (experiment.trainer.mailbox.newer_than(0)[0] - frames) / elapsed
    experiment.pause()
    experiment.trainer.wait_idle()
    experiment.trainer.close()
    # The picture of a model that has learned something: its flow is what costs evaluations.
    costs = {"training": snapshot_milliseconds(experiment, MAP_RESOLUTION_TRAINING),
             "paused": snapshot_milliseconds(experiment, MAP_RESOLUTION)}
    return {"it_per_s": rate, "snapshots_per_s": snapshots, "snapshot_ms": costs}


# Counts redrawn trajectories, and times the first one after the click in the page's own clock
# (what the user waits for, without the test driver's overhead).
FRAME_COUNTER_JS = """() => {
  const source = Bokeh.documents[0].get_model_by_name('trajectories-0');
  window.__frames = 0;
  window.__clicked = null;
  window.__first_frame = null;
  document.addEventListener('click', () => { window.__clicked ??= performance.now(); }, true);
  source.change.connect(() => {
    window.__frames += 1;
    if (window.__clicked !== null) window.__first_frame ??= performance.now();
  });
}"""
ITERATIONS_JS = "() => Bokeh.documents[0].get_model_by_name('history').data.iteration.length"


def served(seconds: float, render: bool = True) -> dict:
    """Training iterations per second, plot frames per second reaching the browser, and seconds
    from the click on Train to the first redrawn trajectories (``render=False``: the page is hidden
    after the click, so the browser applies frames without painting them)."""
    from playwright.sync_api import sync_playwright

    from harness import launch_chromium, wait_for_first_picture
    from harness import served as serving

    with serving("apps/classifier.py") as url, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(url)
        wait_for_first_picture(page, timeout=120_000)  # the page appears at once; Train after its first picture
        page.evaluate(FRAME_COUNTER_JS)
        page.get_by_role("button", name="Train", exact=True).click()
        page.wait_for_function("() => window.__first_frame !== null", timeout=30_000)
        first_frame = page.evaluate("() => (window.__first_frame - window.__clicked) / 1000")
        if not render:
            page.evaluate("() => { document.body.style.display = 'none'; }")
        page.wait_for_timeout(1000)  # warm-up
        first, frames, start = page.evaluate(ITERATIONS_JS), page.evaluate("() => window.__frames"), time.perf_counter()
        page.wait_for_timeout(seconds * 1000)
        elapsed = time.perf_counter() - start
        iterations = page.evaluate(ITERATIONS_JS) - first
        frames = page.evaluate("() => window.__frames") - frames
        browser.close()
    return {"it_per_s": iterations / elapsed, "frames_per_s": frames / elapsed, "click_to_first_frame_s": first_frame}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    seconds = parser.parse_args().seconds
    configure_torch()
    baseline = baseline_iterations_per_second(seconds)
    alone = headless(seconds)
    page = served(seconds)
    hidden = served(seconds, render=False)
    print(json.dumps({
        "benchmark": "classifier training (two moons, 512 points, batch 128, width 32, dopri5 rtol 1e-3 "
                     "atol 1e-4, adjoint)",
        "torch_threads": torch.get_num_threads(),
        "baseline_torchdiffeq_it_per_s": round(baseline, 1),
        "odeviz_headless_it_per_s": round(alone["it_per_s"], 1),
        "odeviz_headless_snapshots_per_s": round(alone["snapshots_per_s"], 1),
        "snapshot_ms_while_training": round(alone["snapshot_ms"]["training"], 1),
        "snapshot_ms_paused": round(alone["snapshot_ms"]["paused"], 1),
        "odeviz_served_browser_it_per_s": round(page["it_per_s"], 1),
        "browser_frames_per_s": round(page["frames_per_s"], 1),
        "odeviz_served_hidden_it_per_s": round(hidden["it_per_s"], 1),
        "hidden_frames_per_s": round(hidden["frames_per_s"], 1),
        "click_to_first_frame_s": round(page["click_to_first_frame_s"], 2),
        "headless_vs_baseline": round(alone["it_per_s"] / baseline, 2),
        "served_vs_headless": round(page["it_per_s"] / alone["it_per_s"], 2),
        "served_hidden_vs_headless": round(hidden["it_per_s"] / alone["it_per_s"], 2),
        "load_average_1_5_15min": [round(value, 2) for value in os.getloadavg()],
    }, indent=2))


if __name__ == "__main__":
    main()
