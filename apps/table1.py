"""`panel serve apps/table1.py`: the paper's Table 1 live (MLP, ResNet, RK-Net and ODE-Net on digits)."""

from odeviz.runtime import configure_session
from odeviz.views import Table1Page

configure_session()
Table1Page().servable(title="odeviz · Table 1")
