"""Help in the page: what each knob does and what to watch for, one or two sentences a student reads in
the knob's tooltip (ⓘ). Keyed by the experiment's param name; a page where the same name means
something else has its own entry under its experiment's slug."""
from __future__ import annotations

import panel as pn

from ..experiments.knobs import experiment_class_of
from ..experiments.saved import kind

HELP = {
    # the ODE solver, on every page
    "method": "The ODE solver. dopri5 picks its own steps to meet the tolerances (watch NFE change); euler, "
              "midpoint and rk4 take a fixed number of equal steps, like a ResNet's layers.",
    "fixed_steps": "Steps of the fixed-grid methods (euler, midpoint, rk4) over the whole time span: more steps, "
                   "more evaluations of f, a smaller error. dopri5 ignores it.",
    "rtol": "Relative tolerance of the adaptive solver: each step's estimated error must stay below it (times "
            "the state's size). Tighter means more steps: watch NFE and the error readout move.",
    "atol": "Absolute tolerance: the error allowed where the state is near zero. Together with rtol it sets how "
            "many steps dopri5 takes.",
    "adjoint": "Compute gradients by solving the adjoint ODE backwards in time (the paper's Section 2): memory "
               "stays flat in the number of steps, at the price of a second solve (NFE-B).",
    "seminorm": "Let the backward solve ignore the parameter gradients' error when choosing its steps (Kidger et "
                "al. 2021). Here the steps are set by the re-solved state, so it rarely changes NFE-B.",
    "adjoint_rtol": "Tolerance of the backward (adjoint) solve, the forward's unless set. Looser gives fewer "
                    "backward evaluations and a less accurate gradient: Figure 3 shows the trade.",
    "adjoint_atol": "Absolute tolerance of the backward (adjoint) solve, the forward's unless set.",
    # training, on every page
    "learning_rate": "Adam's step size at the start of training (it then decays). Too large and the loss jumps: "
                     "training stops and rolls back to the last good weights; lower it and press Train.",
    "batch_size": "Examples per training step: larger steps are smoother and slower.",
    "regularization": "Weight of the RNODE penalty (kinetic energy + Jacobian norm of f, Finlay et al. 2020): "
                      "straighter, simpler flows that need fewer solver steps. Watch NFE fall.",
    "width": "Hidden units of the network f(h, t) that defines the dynamics.",
    # continuity (the paper's Figure 1)
    "continuity.target": "The map g(x) the two models learn from x in [-2, 2]. The reflection g(x) = -x cannot "
                         "be an ODE's flow in one dimension (trajectories cannot cross): watch the ODE-Net fail.",
    "continuity.augment": "Give the ODE a second, zero-started dimension (Augmented Neural ODEs, Dupont et al. "
                          "2019): trajectories can go around each other and the reflection becomes learnable.",
    "continuity.depth": "Layers L of the ResNet, which are L Euler steps of its ODE: few layers show the jumps "
                        "of discrete depth, many approach the continuous flow.",
    # the classifier and Figure 3
    "dataset": "The two-class points in the plane that the ODE-Net learns to separate by flowing them apart.",
    "noise": "Spread of the points around their shape: more noise, classes that overlap.",
    "samples": "Points in the data set (training and the picture).",
    "augment": "Zero dimensions appended to the state: with none, concentric circles cannot be separated by "
               "a flow in the plane; with one, they can.",
    "sweep_every": "While training, re-measure the tolerance sweep of Figure 3 every this many iterations "
                   "(0: only when paused or asked). Each sweep solves at eight tolerances.",
    # Table 1
    "epochs": "Passes over the training digits for each model. The errors should stop falling before the end.",
    "seeds": "Trainings of each model from other initial weights and batch orders: the table shows mean ± "
             "standard deviation, so a difference smaller than the spread is not a difference.",
    "channels": "Channels of the convolutional nets (the paper uses 64): fewer train faster on this CPU.",
    "rk_steps": "RK4 steps L̃ of the RK-Net, which backpropagates through them: its memory grows with L̃.",
    "models": "The rows of the table that train, one after another.",
    "digit": "The test digit whose hidden state is drawn through the ResNet's depth and the ODE-Net's time.",
    "mnist_dir": "A directory of MNIST's IDX files inside the server's data root; empty: scikit-learn's 8×8 "
                 "digits, which ship with it.",
    # CNF
    "cnf.target": "The density the CNF learns to make from a Gaussian: a shape of the paper's Figure 4, your "
                  "own points (drawn or from a file). Watch the particles and the density flow over t.",
    "cnf.depth": "Hidden layers of the CNF's field f(z, t).",
    "trace": "How d log p/dt = -tr(∂f/∂z) is computed: exactly (forward-mode, fine in 2-D) or by Hutchinson's "
             "estimator (FFJORD's trick for high dimensions: unbiased but noisy).",
    "planar_layers": "Layers K of the planar normalizing flow drawn beside the CNF (the paper's Figure 4): "
                     "watch how many it needs for what the CNF does with one.",
    # latent ODE
    "series": "The test spiral drawn: its observations, the latent ODE's and the RNN's predictions. Click the "
              "plot to drop or add observations.",
    "observations": "Irregular observation times per spiral (the paper's Table 2: 30, 50, 100). Fewer "
                    "observations: the ODE still interpolates, the RNN struggles.",
    "horizon": "How far past the observed window both models extrapolate, in window lengths.",
    "posterior_samples": "Samples of z₀ from the encoder's posterior, each decoded to a trajectory: their "
                         "spread is the model's uncertainty.",
    "latent_dim": "Dimensions of the latent state z that the ODE carries.",
    "kl_warmup": "Iterations over which the ELBO's KL term is phased in, so the encoder learns before the "
                 "prior pulls it in.",
}


def help_text(owner, name: str) -> str:
    """The tooltip of ``owner``'s knob ``name`` ("" where there is none)."""
    cls = experiment_class_of(owner)
    if hasattr(cls, "param") and name in cls.param:
        return HELP.get(f"{kind(cls)}.{name}", HELP.get(name, ""))
    return HELP.get(name, "")


def explained(widget, owner, name: str):
    """``widget``, driving ``owner.name``, with its tooltip: in its ⓘ where the widget has one, else in
    an ⓘ beside it."""
    text = help_text(owner, name)
    if not text:
        return widget
    if "description" in widget.param:
        widget.description = text
        return widget
    # A slider or a checkbox: it shares its row with the icon, which sits level with the slider's bar or
    # the box's label.
    widget.param.update(width=None, sizing_mode="stretch_width")
    beside = (4, 0, 0, 0) if isinstance(widget, (pn.widgets.Checkbox, pn.widgets.CheckBoxGroup)) else (22, 0, 0, -6)
    return pn.Row(widget, pn.widgets.TooltipIcon(value=text, margin=beside), sizing_mode="stretch_width", margin=0)
