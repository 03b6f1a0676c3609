"""Process-wide settings shared by every entry point (served apps, the CLI, notebooks)."""
from __future__ import annotations

from .numerics.device import configure_torch

__all__ = ["configure_session", "configure_torch"]


def configure_session() -> None:
    """Panel settings and torch threads for a page, under `panel serve` or in Jupyter."""
    import panel as pn  # here, not at the top: the CLI's training commands never load Panel

    configure_torch()
    served = pn.state.curdoc is not None and pn.state.curdoc.session_context is not None
    # Inline resources: a notebook then renders offline. Toasts only when served: in a notebook
    # their script would come from a CDN, and the page's own alert shows every message anyway.
    pn.extension(notifications=served, inline=True)
