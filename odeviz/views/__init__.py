"""Views: one ``pn.viewable.Viewer`` per page, drawing experiments' snapshots. No torch here."""
from .classifier import ClassifierPage
from .continuity import ContinuityPage

# Every page odeviz serves, by URL slug.
PAGES = {"continuity": ContinuityPage}
PAGES["classifier"] = ClassifierPage

__all__ = ["PAGES", "ContinuityPage"]
__all__ += ["ClassifierPage"]
