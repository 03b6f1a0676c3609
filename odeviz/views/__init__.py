"""Views: one ``pn.viewable.Viewer`` per page, drawing experiments' snapshots. No torch here."""
from .classifier import ClassifierPage
from .continuity import ContinuityPage
from .figure3 import Figure3Page

# Every page odeviz serves, by URL slug.
PAGES = {"continuity": ContinuityPage}
PAGES["classifier"] = ClassifierPage
PAGES["figure3"] = Figure3Page

__all__ = ["PAGES", "ContinuityPage"]
__all__ += ["ClassifierPage", "Figure3Page"]
