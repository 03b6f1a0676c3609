"""The page frame every page shares: one ExperimentPage base, pages that appear at once while their
experiment builds on its training thread, and messages that are text."""
import html.parser
import threading
import time
import urllib.request

import panel as pn
import pytest

from odeviz.experiments import CNFExperiment, ClassifierExperiment, ContinuityExperiment
from odeviz.experiments.trainer import StopReason
from odeviz.views import PAGES, ClassifierPage, CNFPage, ContinuityPage, ExperimentPage
from odeviz.views.page import PREPARING

EVIL = '<img src=x onerror="window.__xss=1">'


def test_every_page_is_an_experiment_page():
    for slug, page_class in PAGES.items():
        assert issubclass(page_class, ExperimentPage), slug
        assert page_class.title and page_class.intro and page_class.experiment_class is not ExperimentPage.experiment_class


# ---- pages built off the event loop ---------------------------------------------------------------
class GatedContinuity(ContinuityExperiment):
    """A continuity experiment whose first build waits until the test opens the gate."""

    gate = threading.Event()

    def _build(self) -> None:
        assert self.gate.wait(120), "the test never opened the gate"
        super()._build()


class GatedPage(ContinuityPage):
    experiment_class = GatedContinuity


@pytest.fixture
def gate():
    GatedContinuity.gate.clear()
    yield GatedContinuity.gate
    GatedContinuity.gate.set()  # whatever happened, let the training threads finish their builds


def test_a_page_appears_at_once_while_its_experiment_builds(gate):
    start = time.perf_counter()
    page = GatedPage()  # its experiment cannot finish building before the gate opens
    seconds = time.perf_counter() - start
    try:
        assert not gate.is_set() and page.stream.snapshot is None
        assert seconds < 30  # building figures only (~0.3 s idle); the build itself is still blocked
        pn.panel(page).get_root()
        page.stream.poll()  # a poll while preparing changes nothing and waits on nothing
        assert PREPARING in page.controls.status.object
        assert len(page.figures.sources["ode"].data["h"]) == 0
        gate.set()
        page.ready()
        assert page.stream.snapshot is not None and "untrained" in page.controls.status.object
        assert len(page.figures.sources["ode"].data["h"]) > 0
    finally:
        page.stream.stop()


def test_the_index_answers_while_a_page_is_building(gate):
    from harness import free_port

    pages = []

    def gated():
        pages.append(GatedPage())
        return pages[-1]

    port = free_port()
    server = pn.serve({"gated": gated, "other": gated}, port=port, address="127.0.0.1",
                      websocket_origin=f"127.0.0.1:{port}", show=False, threaded=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/", timeout=30)
                break
            except OSError:
                assert time.monotonic() < deadline, "the in-process server did not come up"
                time.sleep(0.2)
        page = urllib.request.urlopen(base + "/gated", timeout=60).read().decode()
        assert "<html" in page.lower() and pages and not gate.is_set()  # served while its build is blocked
        start = time.monotonic()
        index = urllib.request.urlopen(base + "/", timeout=30).read().decode()
        assert "/gated" in index and time.monotonic() - start < 10 and not gate.is_set()
    finally:
        gate.set()
        server.stop()
        for page in pages:
            page.stream.stop()


# ---- messages are text ------------------------------------------------------------------------
class Rendered(html.parser.HTMLParser):
    """What a browser would make of an HTML string: its tags and its text."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags, self.text = [], ""
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text += data


@pytest.fixture
def notifications(monkeypatch):
    """The notification area a page without a server session (a notebook) reports to."""
    area = pn.io.notifications.NotificationArea()
    monkeypatch.setattr(pn.state, "_notification", area)
    return area


def test_a_file_name_is_shown_as_text_not_markup(notifications):
    experiment = CNFExperiment(width=8, batch_size=64, compare_planar=False)
    page = CNFPage(experiment=experiment)
    try:
        page.file_input.param.update(filename=f"{EVIL}.csv", value=b"1,2\n3,4\n")  # too few points: refused
        (message,) = [n.message for n in notifications.notifications]
        shown = Rendered(message)
        assert shown.tags == [] and f"{EVIL}.csv" in shown.text and "has 2 points" in shown.text
        page.file_input.param.update(filename="empty.csv", value=b"")  # an empty file is refused, not ignored
        assert "'empty.csv' is empty" in Rendered(notifications.notifications[-1].message).text
        experiment.trainer._stop_with(StopReason.FAILED, f"Paused: cannot read {EVIL}")  # the alert shows it as text
        page.controls.update()
        assert page.controls.alert.visible and "<img" not in page.controls.alert.object
        assert Rendered(page.controls.alert.object).text == f"Paused: cannot read {EVIL}"
    finally:
        page.stream.stop()


def test_refused_values_are_told_in_the_knobs_words(notifications):
    page = ClassifierPage(experiment=ClassifierExperiment(samples=64))
    try:
        noise = next(w for w in page._layout.select(pn.widgets.FloatInput) if w.label == "Noise")
        samples = next(w for w in page._layout.select(pn.widgets.IntInput) if w.label == "Samples")
        noise.value = None  # the box cleared
        samples.value = -3
        empty, negative = (Rendered(n.message).text for n in notifications.notifications)
        assert empty == "Noise cannot be empty; noise stays 0.1"
        assert negative == "Samples must be at least 16, not -3; samples stays 64"
        assert page.experiment.noise == 0.1 and noise.value == 0.1 and samples.value == 64
        for message in (empty, negative):
            assert "parameter" not in message and "Experiment" not in message and "not ." not in message
    finally:
        page.stream.stop()


def test_param_refusals_are_translated_in_one_place():
    from odeviz.experiments import Experiment
    from odeviz.views.text import escape_html, user_message

    with pytest.raises(ValueError) as refused:
        Experiment.param.seed._validate(-3)  # param's words: "Integer parameter 'Experiment.seed' must be …"
    assert user_message(refused.value) == "Seed must be at least 0, not -3"
    assert user_message(ValueError("no MNIST train images in /data")) == "no MNIST train images in /data"
    assert escape_html("a_b *c* <i>") == "a&#95;b &#42;c&#42; &lt;i&gt;"


@pytest.mark.parametrize("text", ["Euler's method", 'a "quoted" <b>tag</b> & more', "# heading *bold* `code` [x](y)"])
def test_escaped_text_reads_back_as_typed(text):
    import html

    from odeviz.views.text import escape_html

    escaped = escape_html(text)
    assert "<" not in escaped and html.unescape(escaped) == text  # one pass: no entity broken by a second


def test_a_page_in_a_lesson_leaves_the_tabs_url_to_the_lesson():
    """The lesson's URL names its step (``?step=3``): its page must not read it as knobs nor rewrite it
    with its own link (Next then read no step and walked back to step 2)."""
    from odeviz.views.lesson import LessonPage
    from odeviz.views.lesson_file import read_lesson

    lesson = LessonPage(read_lesson(), step=3)
    try:
        assert lesson.page.owns_url is False and lesson.page.experiment.target == "reflection"
        assert ContinuityPage.owns_url is True  # a page in a tab of its own follows its URL
    finally:
        lesson.close()


def _with_parents(layout, parent=None):
    yield layout, parent
    for child in getattr(layout, "objects", None) or []:
        yield from _with_parents(child, layout)


@pytest.mark.parametrize("slug", list(PAGES))
def test_every_knob_in_the_sidebar_says_what_it_does(slug):
    page = PAGES[slug]()
    try:
        not_knobs = (pn.widgets.Button, pn.widgets.TooltipIcon, pn.widgets.FileDownload, pn.widgets.FileInput,
                     pn.widgets.Progress)
        tips = {}
        for widget, parent in _with_parents(page._sidebar):
            if not isinstance(widget, pn.widgets.Widget) or isinstance(widget, not_knobs):
                continue
            if "description" in widget.param:
                tips[widget.name] = widget.description
            else:  # a slider or a checkbox: its ⓘ beside it
                icons = [o for o in getattr(parent, "objects", []) if isinstance(o, pn.widgets.TooltipIcon)]
                tips[widget.name] = icons[0].value if isinstance(parent, pn.Row) and icons else None
        assert len(tips) >= 6
        untold = [name for name, tip in tips.items() if not tip or len(tip) < 40 or not tip.rstrip().endswith(".")]
        assert untold == [], f"{slug}: no tooltip sentence for {untold}"
    finally:
        page.experiment.close()
