"""Process-wide settings shared by every entry point (served apps, the CLI, notebooks)."""
import panel as pn

from .nets import configure_torch


def configure_session() -> None:
    """Panel settings and torch threads for a page, under `panel serve` or in Jupyter."""
    configure_torch()
    served = pn.state.curdoc is not None and pn.state.curdoc.session_context is not None
    # Inline resources: a notebook then renders offline. Toasts only when served: in a notebook
    # their script would come from a CDN, and the page's own alert shows every message anyway.
    pn.extension(notifications=served, inline=True)
