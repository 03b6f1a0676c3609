"""The CNF page in a real browser: train, scrub time, draw a density and learn it, refused input."""
import pytest

from harness import REPO, SOURCE_COLUMN_JS, plot_frame, wait_for_first_picture, wait_for_source

pytestmark = pytest.mark.browser
ARTIFACTS = REPO / "test-artifacts"

IMAGE_SUM_JS = """name => {
  const source = Bokeh.documents[0].get_model_by_name(name);
  if (!source.data.image || !source.data.image.length) return null;
  let total = 0;
  for (const v of source.data.image[0]) total += v;
  return total;
}"""
DRAWN_JS = "n => Bokeh.documents[0].get_model_by_name('cnf-drawn').data.x.length === n"
# A smiley in the target plot, as fractions of its frame: two eyes and a mouth.
SMILEY = [(0.38, 0.32), (0.40, 0.36), (0.62, 0.32), (0.60, 0.36)] + [
    (0.3 + 0.04 * i, 0.6 + 0.12 * (1 - ((i - 5) / 5) ** 2)) for i in range(11)
]


def test_train_scrub_draw_and_refuse_in_the_browser(odeviz_server, chromium, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    page = chromium.page
    url = odeviz_server + "cnf"
    page.goto(url)
    wait_for_first_picture(page, timeout=90_000)
    wait_for_source(page, "cnf-samples", timeout=120_000)

    def column(name, key):
        return page.evaluate(SOURCE_COLUMN_JS, [name, key])

    samples_before = column("cnf-samples", "x")
    density_before = page.evaluate(IMAGE_SUM_JS, "cnf-log-density")
    assert samples_before and len(samples_before) == 1000 and density_before is not None

    # Train: the samples move and the log-density image is redrawn.
    page.get_by_role("button", name="Train", exact=True).click()
    page.wait_for_function(
        "([name, before]) => Bokeh.documents[0].get_model_by_name(name).data.x.some((v, i) => Math.abs(v - before[i]) > 1e-3)",
        arg=["cnf-samples", samples_before], timeout=20_000,
    )
    page.wait_for_function(
        f"before => {{ const sum = ({IMAGE_SUM_JS})('cnf-log-density'); return sum !== null && Math.abs(sum - before) > 1e-3; }}",
        arg=density_before, timeout=180_000,  # grids are spaced by 10× their cost: long under load
    )
    page.wait_for_function("() => Bokeh.documents[0].get_model_by_name('cnf-history').data.iteration.length >= 5",
                           timeout=30_000)
    page.get_by_role("button", name="Pause").click()
    page.wait_for_selector("button:text-is('Train')", timeout=10_000)

    # Scrub the time slider back: the transform shows an earlier frame, particles move towards the base.
    particles_at_end = column("cnf-transform-particles", "x")
    slider = page.locator(".odeviz-time input[type=range]")
    slider.fill("3")
    page.wait_for_selector(".odeviz-time-label >> text=t = 30 %", timeout=10_000)
    page.wait_for_function(
        "([name, before]) => Bokeh.documents[0].get_model_by_name(name).data.x.some((v, i) => Math.abs(v - before[i]) > 1e-4)",
        arg=["cnf-transform-particles", particles_at_end], timeout=10_000,
    )

    # Refused input: a width of 0 and a file with NaN are reported, and the page keeps working.
    width = page.get_by_label("Hidden units M per layer")
    width.fill("0")
    width.press("Enter")
    page.wait_for_selector("text=/must be at least 1, not 0/", timeout=10_000)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(f"{i},{'nan' if i == 3 else i}" for i in range(20)))
    page.locator("input[type=file][accept='.npy,.csv']").set_input_files(str(bad))
    page.wait_for_selector("text=/NaN or infinite values/", timeout=10_000)

    # Draw a smiley with the draw tool (active on the target plot), learn it, train on it.
    canvas = plot_frame(page, "cnf-drawn")  # the target plot, where the draw tool is active
    for count, (fx, fy) in enumerate(SMILEY, start=1):
        page.mouse.click(canvas["x"] + fx * canvas["width"], canvas["y"] + fy * canvas["height"])
        page.wait_for_function(DRAWN_JS, arg=count, timeout=10_000)  # the browser took it: one point more
        page.wait_for_timeout(350)  # slower than a double tap, which would not add a point
    page.wait_for_selector(f"text={len(SMILEY)} points drawn", timeout=10_000)
    drawn = column("cnf-drawn", "x")
    page.get_by_role("button", name="Learn my drawing").click()
    page.wait_for_function(
        "n => Bokeh.documents[0].get_model_by_name('cnf-target').data.x.length === n", arg=len(SMILEY), timeout=20_000
    )
    wait_for_first_picture(page, timeout=20_000)
    assert page.locator("select").first.input_value() == "drawn"
    target_x = column("cnf-target", "x")
    assert min(target_x) >= min(drawn) - 1.0 and max(target_x) <= max(drawn) + 1.0  # the drawing, jitter aside
    samples_drawn = column("cnf-samples", "x")
    page.get_by_role("button", name="Train", exact=True).click()
    page.wait_for_function(
        "([name, before]) => Bokeh.documents[0].get_model_by_name(name).data.x.some((v, i) => Math.abs(v - before[i]) > 1e-3)",
        arg=["cnf-samples", samples_drawn], timeout=20_000,
    )
    page.wait_for_selector("text=/Iteration [1-9]/", timeout=20_000)
    page.get_by_role("button", name="Pause").click()
    page.screenshot(path=str(ARTIFACTS / "cnf.png"), full_page=True)
    errors = [e for e in chromium.errors if "favicon" not in e]
    assert errors == [], f"browser console errors: {errors}"
