"""`panel serve apps/continuity.py`: the ResNet → ODE-Net continuity page (the paper's Figure 1)."""

from odeviz.runtime import configure_session
from odeviz.views import ContinuityPage

configure_session()
ContinuityPage().servable(title="odeviz · ResNet → ODE-Net")
