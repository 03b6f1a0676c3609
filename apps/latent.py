"""`panel serve apps/latent.py`: a latent ODE and an RNN extrapolating irregularly sampled spirals."""

from odeviz.runtime import configure_session
from odeviz.views import LatentPage

configure_session()
LatentPage().servable(title="odeviz · latent ODE")
