"""Views: one ``pn.viewable.Viewer`` per page, drawing experiments' snapshots. No torch here."""
from .cnf import CNFPage
from .continuity import ContinuityPage

# Every page odeviz serves, by URL slug.
PAGES = {"continuity": ContinuityPage, "cnf": CNFPage}

__all__ = ["PAGES", "CNFPage", "ContinuityPage"]
