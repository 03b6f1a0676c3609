"""The lesson page: a lesson's steps one at a time, each a short text and, live below it, the page its
link names with its settings. Back and Next walk the steps; leaving a step ends its page's training.
The step shown is in the URL (``/lesson?step=3``), so a link can open the lesson at any step; Back and
Next load the lesson at the step before or after (a new page in the tab, rather than one page swapped
for another inside the document: BokehJS could then receive updates of the old page's models after
they were gone, "reference … isn't known").
"""
from __future__ import annotations

import panel as pn
import param

from ..runtime import in_served_session
from .lesson_file import Lesson, Step
from .text import escape_html

GO_TO_STEP = """
const url = new URL(window.location.href);
const step = Math.min(Math.max((parseInt(url.searchParams.get('step')) || 1) + offset, 1), count);
url.searchParams.set('step', step);
window.location.href = url.toString();
"""
HEADER_STYLE = {"background": "#eef2fb", "border-radius": "6px", "padding": "4px 12px"}


class LessonPage(pn.viewable.Viewer):
    """One lesson in a browser tab (``lesson`` from :func:`odeviz.views.lesson_file.read_lesson`)."""

    step = param.Integer(default=1, doc="the step shown, counted from 1 (a number past either end shows that end)")

    def __init__(self, lesson: Lesson, **params) -> None:
        super().__init__(**params)
        self.lesson = lesson
        self.back = pn.widgets.Button(name="◀ Back", width=100, css_classes=["odeviz-lesson-back"])
        self.next = pn.widgets.Button(name="Next ▶", button_type="primary", width=100, css_classes=["odeviz-lesson-next"])
        for button, offset in ((self.back, -1), (self.next, +1)):
            button.js_on_click(args={"offset": offset, "count": len(lesson.steps)}, code=GO_TO_STEP)
        self.where = pn.pane.HTML("", css_classes=["odeviz-lesson-where"], margin=(8, 10))
        self.text = pn.pane.Markdown("", css_classes=["odeviz-lesson-text"], styles={"max-width": "1100px"}, margin=(0, 10))
        self.holder = pn.Column(sizing_mode="stretch_width")
        self.page = None  # the live page of the step shown
        heading = pn.pane.Markdown(f"# {escape_html(lesson.title)}\n\n{lesson.intro}", margin=(0, 10))
        self._layout = pn.Column(
            pn.Column(heading, pn.Row(self.back, self.next, self.where), self.text, styles=HEADER_STYLE,
                      sizing_mode="stretch_width", margin=(5, 10)),
            self.holder, sizing_mode="stretch_width",
        )
        self.step = _step_from_url(self.step)
        self._show()

    @property
    def current(self) -> Step:
        return self.lesson.steps[self.step - 1]

    @param.depends("step", watch=True)
    def _show(self) -> None:
        count = len(self.lesson.steps)
        if not 1 <= self.step <= count:  # e.g. ?step=99 in a link
            self.step = min(max(self.step, 1), count)
            return
        step = self.current
        self.back.disabled, self.next.disabled = self.step == 1, self.step == count
        own_tab = (f" · <a href='{escape_html(step.link)}' target='_blank' class='odeviz-lesson-link'>open this page on its "
                   "own ↗</a>" if step.link else "")
        self.where.object = f"<b>Step {self.step} of {count}</b>: {escape_html(step.title)}{own_tab}"
        self.text.object = step.text
        self._replace_page(self._make_page(step))

    @staticmethod
    def _make_page(step: Step):
        if step.page is None:
            return None
        from . import PAGES  # the page modules import the frame this module sits beside

        page_class = PAGES[step.page]
        if not step.settings:
            return page_class(owns_url=False)
        return page_class(experiment=page_class.experiment_class(build_later=True, **step.settings), owns_url=False)

    def _replace_page(self, page) -> None:
        old, self.page = self.page, page
        if old is not None:
            old.stream.stop()  # first: no frame of it is sent once its plots are gone; its training ends
        self.holder.objects = [] if page is None else [page]

    def close(self) -> None:
        self._replace_page(None)

    def __panel__(self):
        if in_served_session():
            pn.state.on_session_destroyed(lambda _context: self.close())
        return self._layout


def _step_from_url(default: int) -> int:
    """The step a link asks for (``?step=3``), else ``default``; out-of-range steps are clamped by _show."""
    args = pn.state.session_args if isinstance(pn.state.session_args, dict) else {}
    try:
        return int((args.get("step") or [b""])[0])
    except ValueError:
        return default
