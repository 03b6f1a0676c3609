"""The pages odeviz serves, by URL slug, in the index's order (the order of the paper's story): each
page's class by name, its title and its one line for the index. A server lists the pages from here
before it imports one (the pages import their experiments and torch); each page class takes its
title and summary from here, and :data:`odeviz.views.PAGES` holds the classes themselves."""
from __future__ import annotations

from typing import NamedTuple


class Listing(NamedTuple):
    class_name: str  # in odeviz.views
    title: str
    summary: str  # one line on what the page teaches


CATALOG = {
    "continuity": Listing(
        "ContinuityPage", "ResNet → ODE-Net: depth becomes time",
        "A ResNet's layers become an ODE's time: Euler steps converge to the ODE-Net, the solver's evaluation points "
        "appear as circles, and trajectories that cannot cross need augmenting."),
    "classifier": Listing(
        "ClassifierPage", "ODE-Net classifier: a flow that separates classes",
        "An ODE-Net classifies by moving the plane: watch its flow pull two moons apart, and why two nested circles "
        "need an extra dimension."),
    "figure3": Listing(
        "Figure3Page", "Figure 3: what the ODE solver costs",
        "What the solver costs (the paper's Figure 3): tolerance against evaluations, error and time; the adjoint's "
        "backward pass; NFE growing over training; memory O(1)."),
    "table1": Listing(
        "Table1Page", "Table 1: MLP, ResNet, RK-Net and ODE-Net on digits",
        "The paper's Table 1 filled in live: MLP, ResNet, RK-Net and ODE-Net on digits, their errors, parameters and "
        "memory, and one digit's hidden state through depth and time."),
    "cnf": Listing(
        "CNFPage", "Continuous normalizing flows: density transforms",
        "Continuous normalizing flows: a Gaussian bends into a target density over time (Figure 5), against planar "
        "flows of growing depth (Figure 4); draw your own density."),
    "latent": Listing(
        "LatentPage", "Latent ODE: irregularly sampled time series",
        "Spirals observed at irregular times (the paper's Section 5): a latent ODE infers where a series starts and "
        "extrapolates it, beside an RNN; click to add an observation; Table 2 filled in live."),
}


def title_and_summary(slug: str) -> tuple[str, str]:
    return CATALOG[slug].title, CATALOG[slug].summary


def page_class(slug: str) -> type:
    """The page class of ``slug`` (imports the pages, their experiments and torch on first use)."""
    from .. import views

    return getattr(views, CATALOG[slug].class_name)
