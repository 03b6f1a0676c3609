"""`panel serve apps/figure3.py`: the paper's Figure 3 (NFE against error, time, backward NFE and
training) and the memory of direct backprop against the adjoint, measured on a classifier training live."""

from odeviz.runtime import configure_session
from odeviz.views import Figure3Page

configure_session()
Figure3Page().servable(title="odeviz · Figure 3")
