"""Views: one :class:`ExperimentPage` subclass per page, drawing experiments' snapshots. No torch here."""
from .classifier import ClassifierPage
from .cnf import CNFPage
from .continuity import ContinuityPage
from .figure3 import Figure3Page
from .latent import LatentPage
from .page import ExperimentPage
from .table1 import Table1Page

# Every page odeviz serves, by URL slug, in the order of the index (the order of the paper's story).
PAGES = {
    "continuity": ContinuityPage,
    "classifier": ClassifierPage,
    "figure3": Figure3Page,
    "table1": Table1Page,
    "cnf": CNFPage,
    "latent": LatentPage,
}

__all__ = [
    "PAGES", "CNFPage", "ExperimentPage", "ClassifierPage", "ContinuityPage", "Figure3Page", "LatentPage",
    "Table1Page",
]
