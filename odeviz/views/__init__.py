"""Views: one ``pn.viewable.Viewer`` per page, drawing experiments' snapshots. No torch here."""
from .continuity import ContinuityPage
from .table1 import Table1Page

# Every page odeviz serves, by URL slug.
PAGES = {"continuity": ContinuityPage, "table1": Table1Page}

__all__ = ["PAGES", "ContinuityPage", "Table1Page"]
