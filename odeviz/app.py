"""Process-wide settings shared by every entry point (served apps, the CLI, notebooks)."""
import holoviews as hv
import panel as pn

from .nets import configure_torch


def configure_session() -> None:
    """Panel and HoloViews settings for a page, under `panel serve` or in Jupyter."""
    configure_torch()
    pn.extension(notifications=True)
    hv.extension("bokeh", logo=False)
