"""Process-wide settings shared by every entry point (served apps, the CLI, notebooks)."""
import holoviews as hv
import panel as pn
import torch


def configure_torch() -> None:
    # odeviz's nets are tiny: one intra-op thread per training thread beats a shared pool (≈2× here),
    # and leaves the other cores to other sessions and to the server.
    torch.set_num_threads(1)


def configure_session() -> None:
    """Panel and HoloViews settings for a page, under `panel serve` or in Jupyter."""
    configure_torch()
    pn.extension(notifications=True)
    hv.extension("bokeh", logo=False)
