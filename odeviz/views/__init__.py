"""Views: one :class:`ExperimentPage` subclass per page, drawing experiments' snapshots. No torch here.

The page classes and :data:`PAGES` (the classes by URL slug) come from :mod:`.pages` on first use:
they import their experiments and torch (~2 s), and a server lists the pages from :mod:`.catalog`
before it needs one.
"""
from .catalog import CATALOG

__all__ = ["PAGES", "ExperimentPage", *(listing.class_name for listing in CATALOG.values())]


def __getattr__(name: str):
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import pages

    return getattr(pages, name)
