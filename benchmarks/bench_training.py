"""Training speed of the continuity experiment, printed as JSON.

Four numbers from one run on one machine:
  baseline_torchdiffeq    the same two models and loss in a plain loop over torchdiffeq (no odeviz),
  odeviz_headless         odeviz's background trainer (snapshots included), no page,
  odeviz_served_client    the page under `panel serve` streaming to a client that renders nothing
                          (Bokeh's own client: the server's cost of serving, without a browser's CPU),
  odeviz_served_browser   the page under `panel serve` with Chromium attached and streaming
                          (headless Chromium renders in software on the same cores).

    python benchmarks/bench_training.py [--seconds 10]
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
from torchdiffeq import odeint_adjoint

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the browser harness lives with the tests

from odeviz.experiments import ContinuityExperiment
from odeviz.runtime import configure_torch


def baseline_iterations_per_second(seconds: float) -> float:
    """Plain torchdiffeq: same data, models, solver settings and optimiser, no trainer or counting."""
    experiment = ContinuityExperiment()
    experiment.trainer.close()
    model, x, y = experiment.model, experiment.train_x, experiment.train_y
    optimizer = torch.optim.Adam(model.parameters(), lr=experiment.learning_rate)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    iterations, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        optimizer.zero_grad()
        ode = odeint_adjoint(model["ode"], x, t, rtol=experiment.rtol, atol=experiment.atol, method="dopri5")[-1][:, 0]
        resnet = model["resnet"](x)[-1][:, 0]
        loss = torch.mean((ode - y) ** 2) + torch.mean((resnet - y) ** 2)
        loss.backward()
        optimizer.step()
        iterations += 1
    return iterations / (time.perf_counter() - start)


def headless_iterations_per_second(seconds: float) -> float:
    experiment = ContinuityExperiment()
    experiment.trainer.wait_idle()
    experiment.start()
    time.sleep(1.0)  # warm-up
    first, start = experiment.trainer.iteration, time.perf_counter()
    time.sleep(seconds)
    rate = (experiment.trainer.iteration - first) / (time.perf_counter() - start)
    experiment.close()
    return rate


FRAME_COUNTER_JS = """() => {
  const source = Bokeh.documents[0].get_model_by_name('ode-trajectories');
  window.__frames = 0;
  source.change.connect(() => { window.__frames += 1; });
}"""
ITERATIONS_JS = "() => Bokeh.documents[0].get_model_by_name('history').data.iteration.length"


def served_to_client_iterations_per_second(seconds: float) -> tuple[float, float]:
    """(training iterations per second, picture updates per second the client received)."""
    from harness import LightClient, served

    with served("apps/continuity.py") as url:
        client = LightClient(url, train=True, picture_source="ode-trajectories")
        try:
            deadline = time.monotonic() + 60
            while client.read()[0] == 0 and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1.0)  # warm-up
            (first, pictures), start = client.read(), time.perf_counter()
            time.sleep(seconds)
            (last, pictures_after), elapsed = client.read(), time.perf_counter() - start
        finally:
            client.close()
    return (last - first) / elapsed, (pictures_after - pictures) / elapsed


def served_iterations_per_second(seconds: float) -> tuple[float, float, float]:
    """(training iterations per second, plot frames per second reaching the browser,
    seconds from the click on Train to the first redrawn trajectories)."""
    from playwright.sync_api import sync_playwright

    from harness import launch_chromium, served, wait_for_first_picture

    with served("apps/continuity.py") as url, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(url)
        wait_for_first_picture(page, timeout=120_000)  # the page appears at once; Train after its first picture
        page.evaluate(FRAME_COUNTER_JS)
        clicked = time.perf_counter()
        page.get_by_role("button", name="Train", exact=True).click()
        page.wait_for_function("() => window.__frames > 0", timeout=30_000)
        first_frame = time.perf_counter() - clicked
        page.wait_for_timeout(1000)  # warm-up
        first, frames, start = page.evaluate(ITERATIONS_JS), page.evaluate("() => window.__frames"), time.perf_counter()
        page.wait_for_timeout(seconds * 1000)
        elapsed = time.perf_counter() - start
        iterations = page.evaluate(ITERATIONS_JS) - first
        frames = page.evaluate("() => window.__frames") - frames
        browser.close()
    return iterations / elapsed, frames / elapsed, first_frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    seconds = parser.parse_args().seconds
    configure_torch()
    baseline = baseline_iterations_per_second(seconds)
    headless = headless_iterations_per_second(seconds)
    client, client_pictures = served_to_client_iterations_per_second(seconds)
    served, frames, first_frame = served_iterations_per_second(seconds)
    print(json.dumps({
        "benchmark": "continuity training (cubic, dopri5 rtol 1e-3 atol 1e-6, adjoint, L = 8, 64 samples)",
        "torch_threads": torch.get_num_threads(),
        "baseline_torchdiffeq_it_per_s": round(baseline, 1),
        "odeviz_headless_it_per_s": round(headless, 1),
        "odeviz_served_client_it_per_s": round(client, 1),
        "client_pictures_per_s": round(client_pictures, 1),
        "odeviz_served_browser_it_per_s": round(served, 1),
        "browser_frames_per_s": round(frames, 1),
        "click_to_first_frame_s": round(first_frame, 2),
        "headless_vs_baseline": round(headless / baseline, 2),
        "served_client_vs_headless": round(client / headless, 2),
        "served_browser_vs_headless": round(served / headless, 2),
        "load_average": os.getloadavg(),
    }, indent=2))


if __name__ == "__main__":
    main()
