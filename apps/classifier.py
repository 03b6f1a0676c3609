"""`panel serve apps/classifier.py`: a 2-D ODE-Net classifier with its live vector field and flow."""

from odeviz.runtime import configure_session
from odeviz.views import ClassifierPage

configure_session()
ClassifierPage().servable(title="odeviz · ODE-Net classifier")
