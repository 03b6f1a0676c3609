"""`panel serve apps/cnf.py`: continuous normalizing flows learning 2-D densities (the paper's Figures 4–5)."""

from odeviz.runtime import configure_session
from odeviz.views import CNFPage

configure_session()
CNFPage().servable(title="odeviz · continuous normalizing flows")
