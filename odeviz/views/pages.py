"""Every page class, and :data:`PAGES`: the classes by URL slug, in the catalog's order (what
:mod:`odeviz.views` hands out on first use)."""
from .catalog import CATALOG
from .classifier import ClassifierPage
from .cnf import CNFPage
from .continuity import ContinuityPage
from .figure3 import Figure3Page
from .latent import LatentPage
from .page import ExperimentPage
from .table1 import Table1Page

PAGES = {slug: globals()[listing.class_name] for slug, listing in CATALOG.items()}

