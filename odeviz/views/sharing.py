"""A page's settings in its URL, and its model in a file.

A link is the page's slug and the knobs that differ from their defaults, by the public names of the
knob table (``/continuity?target=reflection&depth=2&trained=1``); ``trained=1`` opens on the shipped
model nearest those knobs. :class:`ModelFiles` is the sidebar's "Load trained", download and upload.
"""
from __future__ import annotations

import io
from concurrent.futures import Future
from urllib.parse import parse_qsl, urlencode

import panel as pn

from ..experiments.knobs import TRUE_WORDS, knob_text, link_knobs, query_settings
from ..experiments.pretrained import trained_state
from ..experiments.saved import SavedStateError, kind, read_state, state_bytes
from .controls import notify_error
from .text import user_message

TRAINED = "trained"  # the link's flag: open on a shipped trained model
COPY_LINK_JS = """
const link = window.location.href;
if (navigator.clipboard && window.isSecureContext) {
  navigator.clipboard.writeText(link).then(() => { source.label = 'Link copied'; setTimeout(() => { source.label = 'Copy link'; }, 1500); });
} else {
  window.prompt('Copy this link:', link);
}
"""


def page_url(slug: str, knobs: dict | None = None, trained: bool = False) -> str:
    """The link to a page with these knobs (public names, values as Python values or text)."""
    query = {name: knob_text(value) for name, value in (knobs or {}).items()}
    if trained:
        query[TRAINED] = "1"
    return f"/{slug}" + (f"?{urlencode(query)}" if query else "")


class Link:
    """What the URL a page was opened with asks for, read once when the page is made."""

    def __init__(self, experiment_class, query: dict[str, str]) -> None:
        self.settings, self.refused = query_settings(experiment_class, query)
        self.texts = query
        self.trained = str(query.get(TRAINED, "")).lower() in TRUE_WORDS

    @classmethod
    def of_session(cls, experiment_class) -> Link:
        location = pn.state.location if pn.state.curdoc is not None else None
        # The raw text of each value (Panel's query_params would already have made "true" a bool).
        return cls(experiment_class, dict(parse_qsl(location.search.lstrip("?"))) if location is not None else {})

    def state(self, experiment_class) -> dict | None:
        """The shipped trained run to open on, or None."""
        return trained_state(experiment_class, self.settings) if self.trained else None

    def report_refused(self, experiment) -> None:
        """One notification per value of the link that could not be used; the knob keeps its value."""
        public = {knob.param: knob.public for knob in link_knobs(experiment)}
        for name, error in self.refused:
            value = getattr(experiment, name)
            shown = knob_text(value)
            notify_error(f"The link asks for {public[name]}={self.texts[public[name]]}, which cannot be used: "
                         f"{user_message(error, experiment)}; {experiment.param[name].label.lower()} stays {shown}")


def follow_in_url(experiment, link):
    """Keep the session's URL equal to ``link()`` whenever a knob changes (served pages only); returns
    the function that brings it up to date."""
    location = pn.state.location if pn.state.curdoc is not None else None
    if location is None:
        return lambda: None

    def update(*_events) -> None:
        _, _, query = link().partition("?")
        location.search = f"?{query}" if query else ""

    experiment.param.watch(update, [knob.param for knob in link_knobs(experiment)])
    return update


def copy_link_button() -> pn.widgets.Button:
    button = pn.widgets.Button(label="Copy link", color="light", width=90, css_classes=["odeviz-copy-link"])
    # The button is the callback's ``source``: passing it in ``args`` too would keep every session's
    # button alive (Panel's callback registry is keyed weakly by the button, and its value holds the args).
    button.js_on_click(code=COPY_LINK_JS)
    return button


class ModelFiles:
    """Load trained, save (download) and open (upload) the page's model; a refused file is a message."""

    def __init__(self, experiment, slug: str, on_loaded=lambda: None) -> None:
        self.experiment, self.on_loaded = experiment, on_loaded
        self._pending: tuple[Future, str] | None = None
        self.trained_button = pn.widgets.Button(label="Load trained", color="success", variant="outline",
                                                width=110, css_classes=["odeviz-load-trained"])
        self.trained_button.on_click(lambda _event: self.load_trained())
        self.download = pn.widgets.FileDownload(callback=self._saved_file, filename=f"odeviz-{slug}.pt",
                                                label="Save model", color="light", width=110,
                                                css_classes=["odeviz-save-model"])
        self.upload = pn.widgets.FileInput(accept=".pt", multiple=False, width=200, css_classes=["odeviz-open-model"])
        self.upload.param.watch(self._uploaded, "value")

    def widgets(self) -> list:
        return [pn.Row(self.trained_button, self.download), pn.pane.Markdown("Open a saved model:", margin=(0, 10)), self.upload]

    def load_trained(self) -> None:
        """The shipped model nearest the page's knobs."""
        experiment = type(self.experiment)
        knobs = {knob.param: getattr(self.experiment, knob.param) for knob in link_knobs(self.experiment)}
        try:
            state = trained_state(experiment, knobs)
        except SavedStateError as error:
            notify_error(str(error))
            return
        if state is None:
            notify_error(f"odeviz ships no trained {kind(experiment)} model")
            return
        self.take(state, "the shipped model")

    def take(self, state: dict, what: str) -> None:
        try:
            future = self.experiment.load_state(state, what)
        except SavedStateError as error:
            notify_error(str(error))
            return
        self._pending = (future, what)
        self.on_loaded()

    def check(self) -> None:
        """On every poll: say so if a load's weights turned out not to fit."""
        if self._pending is None or not self._pending[0].done():
            return
        future, _what = self._pending
        self._pending = None
        if future.exception() is not None:
            notify_error(str(future.exception()))

    def _uploaded(self, event) -> None:
        if event.new is None:
            return
        name = repr(self.upload.filename or "the file")
        try:
            state = read_state(event.new, what=name)
        except SavedStateError as error:
            notify_error(str(error))
            return
        self.take(state, name)

    def _saved_file(self) -> io.BytesIO:
        return io.BytesIO(state_bytes(self.experiment.saved_state()))
