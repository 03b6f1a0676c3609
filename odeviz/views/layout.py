"""The frame every page shares: a header (title, what to look at, the training status) above the
plots, and a grey sidebar of knobs on the left."""
from __future__ import annotations

import panel as pn

from .controls import TrainingControls

SIDEBAR_WIDTH = 300
SIDEBAR_STYLE = {"background": "#f6f7f9", "border-radius": "6px"}
INTRO_STYLE = {"max-width": "1100px", "color": "#444"}


def page_header(title: str, intro: str, controls: TrainingControls) -> pn.Column:
    """Title, a paragraph of what to look at, and the training status line."""
    return pn.Column(
        pn.pane.Markdown(f"## {title}", margin=(0, 10)),
        pn.pane.Markdown(intro, margin=(0, 10), styles=INTRO_STYLE),
        controls.status_line,
    )


def sidebar(*items) -> pn.Column:
    """The page's knobs, in a column of fixed width on a light grey card."""
    return pn.Column(*items, width=SIDEBAR_WIDTH, styles=SIDEBAR_STYLE, margin=(5, 10))
