"""Messages are text: whatever a page shows as HTML or Markdown that did not come from its own code
(a file name, a path, a typed value, an error's message) goes through :func:`escape_html`, and a
refused value is told in the knob's words (its label), never in param's ("Integer parameter 'X.y'").
"""
from __future__ import annotations

import param

from ..experiments.knobs import refusal

# HTML's special characters and those Markdown would take for formatting, as entities, in one pass
# (escaping twice would break the first pass's entities: "'" → "&#x27;" → "&&#35;x27;"): the text
# then shows as typed in an HTML pane, an Alert (Markdown) and a notification alike.
_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;",
                           **{c: f"&#{ord(c)};" for c in "\\`*_[]#|~"}})


def escape_html(text) -> str:
    """``text`` as inert text for HTML and Markdown: no tag, no entity, no formatting survives."""
    return str(text).translate(_ENTITIES)


def user_message(error: Exception, owner: param.Parameterized | None = None) -> str:
    """An error as plain text for the page (escape it to show it): a param's refusal names the knob by
    its label ("Epochs must be at least 1, not -3"); other messages, written for people, as they are."""
    name, rest = refusal(error)
    if name is None:
        return rest
    label = owner.param[name].label if owner is not None and name in owner.param else name.replace("_", " ").capitalize()
    return f"{label} {rest}"
