"""Interactive latency in a real browser, printed as JSON: what a person waits for.

- start: ``python -m odeviz serve`` launched → the index answers; a page opened → its first plot drawn;
- Train: the click → the first redrawn picture (classifier page);
- knobs: a key press on the rtol slider → the page shows the picture re-solved at the new tolerance
  (the readout names it), paused and while training, on each page with a tolerance slider; and on the
  CNF page the time slider → the transform's particles redrawn.

Times are taken in the page's own clock (``performance.now()``: the press or click to the moment the
browser holds the new picture), so the test driver's overhead is left out. The machine may be shared:
the report carries ``uptime``'s load averages; absolute numbers are only comparable within one run.

    PYTHONPATH=. python benchmarks/bench_latency.py [--presses 8] [--pages classifier,cnf,continuity]
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

from harness import free_port, launch_chromium, running  # noqa: E402

# Records when the person acted (a key press, a click, an input on a range) in the page's clock.
ACTION_CLOCK_JS = """() => {
  window.__acted = null;
  for (const kind of ['keydown', 'click', 'input'])
    document.addEventListener(kind, () => { window.__acted = performance.now(); }, true);
}"""
# True (and the time noted) once the readout names the tolerance the page was asked for.
# (Read from the readout's Bokeh model: Panel draws it inside a shadow root; the pictures come in the same message.)
READOUT_SHOWS_JS = """(text) => {
  const readout = [...Bokeh.documents[0].all_models].find(m => (m.css_classes || []).includes('odeviz-readout'));
  if (!readout || !String(readout.text).includes(text)) return false;
  window.__shown = performance.now();
  return true;
}"""
SOURCE_CHANGED_JS = """([name, column, before]) => {
  const source = Bokeh.documents[0].get_model_by_name(name);
  const now = Array.from(source.data[column]);
  if (now.length === before.length && now.every((v, i) => v === before[i])) return false;
  window.__shown = performance.now();
  return true;
}"""
COLUMN_JS = "([name, column]) => Array.from(Bokeh.documents[0].get_model_by_name(name).data[column])"
HAS_COLUMN_JS = "([name, column]) => (Bokeh.documents[0].get_model_by_name(name)?.data[column]?.length ?? 0) > 0"
PAGES = {  # slug: (text once the first picture is there, a source the first picture fills)
    "classifier": ("text=Iteration 0", "trajectories-0", "x"),
    "cnf": ("text=Iteration 0", "cnf-samples", "x"),
    "continuity": ("text=Iteration 0", None, None),
}
RTOL_STEPS = ("3e-04", "1e-03")  # a press left, then right: the slider's neighbours of the default 1e-3


def seconds_since_action(page) -> float:
    return page.evaluate("() => (window.__shown - window.__acted) / 1000")


def percentiles(values: list[float]) -> dict:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50_ms": round(1e3 * statistics.median(ordered), 1), "p95_ms": round(1e3 * p95, 1),
            "max_ms": round(1e3 * ordered[-1], 1), "n": len(ordered)}


def rtol_latency(page, presses: int, first_picture: tuple[str, str] | None = None) -> dict:
    """Key press → the readout names the new tolerance (everything re-solved); with ``first_picture``
    (a source, a column), also → that source redrawn (the first re-solved picture)."""
    handle = page.locator(".odeviz-rtol .noUi-handle")
    handle.focus()
    times, firsts = [], []
    for index in range(presses):
        key, shown = ("ArrowLeft", RTOL_STEPS[0]) if index % 2 == 0 else ("ArrowRight", RTOL_STEPS[1])
        before = page.evaluate(COLUMN_JS, list(first_picture)) if first_picture else None
        page.keyboard.press(key)
        if first_picture:
            page.wait_for_function(SOURCE_CHANGED_JS, arg=[*first_picture, before], polling="raf", timeout=60_000)
            firsts.append(seconds_since_action(page))
        page.wait_for_function(READOUT_SHOWS_JS, arg=f"rtol {shown}", polling="raf", timeout=60_000)
        times.append(seconds_since_action(page))
        page.wait_for_timeout(150)
    return {"all_redrawn": percentiles(times), **({"first_picture": percentiles(firsts)} if firsts else {})}


def time_slider_latency(page, presses: int) -> dict:
    slider, times = page.locator(".odeviz-time input[type=range]"), []
    for index in range(presses):
        before = page.evaluate(COLUMN_JS, ["cnf-transform-particles", "x"])
        slider.fill(str(3 + index % 2 * 4))  # 30 % and 70 % of the flow, in turn
        page.wait_for_function(SOURCE_CHANGED_JS, arg=["cnf-transform-particles", "x", before], polling="raf",
                               timeout=60_000)
        times.append(seconds_since_action(page))
        page.wait_for_timeout(150)
    return percentiles(times)


def measure_page(browser, base: str, slug: str, presses: int) -> dict:
    ready, source, column = PAGES[slug]
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    start = time.perf_counter()
    page.goto(f"{base}/{slug}")
    page.wait_for_selector(ready, timeout=600_000)
    result = {"open_to_first_plot_s": round(time.perf_counter() - start, 2)}
    page.evaluate(ACTION_CLOCK_JS)
    if source is not None:  # Train → the first redrawn picture
        page.wait_for_function(HAS_COLUMN_JS, arg=[source, column], timeout=120_000)  # the first picture is in
        before = page.evaluate(COLUMN_JS, [source, column])
        page.get_by_role("button", name="Train", exact=True).click()
        page.wait_for_function(SOURCE_CHANGED_JS, arg=[source, column, before], polling="raf", timeout=60_000)
        result["click_train_to_first_picture_s"] = round(seconds_since_action(page), 3)
    else:
        page.get_by_role("button", name="Train", exact=True).click()
    page.wait_for_timeout(3000)
    result["rtol_while_training"] = rtol_latency(page, presses)
    if slug == "cnf":
        result["time_slider_while_training"] = time_slider_latency(page, presses)
    page.get_by_role("button", name="Pause").click()
    page.wait_for_selector("button:has-text('Train')", timeout=30_000)
    page.wait_for_timeout(1000)
    result["rtol_paused"] = rtol_latency(page, presses, ("cnf-samples", "x") if slug == "cnf" else None)
    if slug == "cnf":
        result["time_slider_paused"] = time_slider_latency(page, presses)
    page.close()
    return result


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=8)
    parser.add_argument("--pages", default=",".join(PAGES))
    args = parser.parse_args()
    loads = {"start": [round(v, 2) for v in os.getloadavg()]}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "odeviz", "serve", "--port", str(port)]
    launched = time.perf_counter()
    report: dict = {"benchmark": "interactive latency, odeviz serve + Chromium", "pages": {}}
    with running(command, base + "/", timeout=300) as _, sync_playwright() as playwright:
        report["serve_to_index_s"] = round(time.perf_counter() - launched, 2)  # polled every 0.5 s
        browser = launch_chromium(playwright)
        for slug in args.pages.split(","):
            report["pages"][slug] = measure_page(browser, base, slug, args.presses)
            loads[f"after_{slug}"] = [round(v, 2) for v in os.getloadavg()]
        browser.close()
    report["load_average_1_5_15min"] = loads
    report["note"] = "a shared machine: compare numbers within one run; the load averages say how busy it was"
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
