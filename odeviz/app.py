"""Process-wide settings shared by every entry point (served apps, the CLI, notebooks)."""
import panel as pn

from .nets import configure_torch


def configure_session() -> None:
    """Panel settings and torch threads for a page, under `panel serve` or in Jupyter."""
    configure_torch()
    pn.extension(notifications=True, inline=True)
