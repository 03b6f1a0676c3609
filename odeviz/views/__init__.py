"""Views: one ``pn.viewable.Viewer`` per page, drawing experiments' snapshots. No torch here."""
from .continuity import ContinuityPage

# Every page odeviz serves, by URL slug.
PAGES = {"continuity": ContinuityPage}

__all__ = ["PAGES", "ContinuityPage"]
