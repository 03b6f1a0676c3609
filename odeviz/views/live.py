"""Following a session live: the "share live" link of a page's own experiment, the count of its
followers, and the read-only frame of a page that follows another (``?follow=ID``)."""
from __future__ import annotations

import panel as pn

from ..experiments.registry import LIVE
from .controls import notify_error
from .text import escape_html

FOLLOWING = "<b>following a live session</b> (read-only)"


def follow_id() -> str | None:
    """The id this session asks to follow (``?follow=ID`` in its URL), or None."""
    args = pn.state.session_args if pn.state.curdoc is not None else {}
    values = args.get("follow") or []
    return values[0].decode(errors="replace").strip() or None if values else None


def followed_experiment(live_id: str | None):
    """A read-only view of the live experiment ``live_id``, or None (told in words if it is gone)."""
    if live_id is None:
        return None
    try:
        return LIVE.follow(live_id)
    except ValueError as error:
        notify_error(str(error))
        return None


class ShareLive(pn.viewable.Viewer):
    """A button that shows the link other sessions follow this page's experiment by."""

    def __init__(self, experiment) -> None:
        super().__init__()
        self.live_id = LIVE.register(experiment)
        self.button = pn.widgets.Button(label="Share live", variant="outline", width=110)
        self.link = pn.pane.HTML("", css_classes=["odeviz-share-link"], visible=False, sizing_mode="stretch_width")
        self.button.on_click(lambda _event: self._show_link())

    def _show_link(self) -> None:
        location = pn.state.location
        page = location.pathname if location is not None and location.pathname else ""
        href = f"{page}?follow={self.live_id}"
        self.link.object = (f"<a href='{escape_html(href)}' target='_blank'>{escape_html(href)}</a>"
                            "<br><small>opens a read-only view of this model training</small>")
        self.link.visible = True

    def describe(self) -> str:
        count = LIVE.followers(self.live_id)
        return f" · <span class='odeviz-followers'>{count} following</span>" if count else ""

    def close(self) -> None:
        LIVE.unregister(self.live_id)

    def __panel__(self):
        return pn.Column(self.button, self.link)
