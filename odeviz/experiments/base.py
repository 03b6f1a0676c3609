"""What every odeviz experiment shares: solver and optimiser knobs as params, and a trainer.

An experiment is a ``param.Parameterized`` whose params are its knobs (bounded, so bad values are
refused with a message naming the knob) and whose state is its models plus a :class:`Trainer`.
Subclasses say how to build their models (``_build``), what one loss is (``_loss``), what to
show (``snapshot``) and which params start training over (``restart_on``). No Panel here: experiments run headless, in tests, in the CLI, under any view.
"""
from __future__ import annotations

import contextlib
import math
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path

import param
import torch
from torch.nn.utils import get_total_norm

from ..numerics.device import default_device
from ..numerics.config import DEFAULT_MAX_NFE, SolverConfig
from ..numerics.methods import ADAPTIVE_METHODS, METHODS
from ..numerics.solve import CancelToken, SolveStats, solver_errors
from ..runtime import import_torch_compiler_soon
from .checkpoints import RESTORE_FACTOR, CheckpointRing, LossWatch
from .saved import FORMAT, SavedStateError, check_state, plain, read_state, settings_of, write_state
from .trainer import Trainer, TrainingDiverged


def cosine_decay(rate: float, progress: float | None, floor: float) -> float:
    """``rate`` falling along a half cosine to ``floor`` of it as ``progress`` goes from 0 to 1, then
    staying there (``progress`` None: no schedule, the rate as it is): a large step first, a small one to settle."""
    if progress is None:
        return rate
    progress = min(progress, 1.0)
    return rate * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress)))


class Real(param.Number):
    """A bounded real number that also refuses booleans (``param.Number`` takes True as 1) and NaN
    (which param reports as out of bounds: "must be at most 1.0, not nan")."""

    def _validate_value(self, val, allow_None):
        if isinstance(val, bool) or isinstance(val, float) and math.isnan(val):
            raise ValueError(f"{self.name} must be a number, not {val!r}")
        super()._validate_value(val, allow_None)


class Experiment(param.Parameterized):
    """Base class: subclasses set ``self.model`` (one nn.Module holding everything trained)."""

    learning_rate = Real(
        1e-2, bounds=(1e-5, 10.0), doc="Adam's step size, read at every iteration (changes apply mid-training)"
    )
    method = param.Selector(default="dopri5", objects=list(METHODS), doc="torchdiffeq solver for the ODE-Net")
    rtol = Real(1e-3, bounds=(1e-10, 1.0), doc="relative tolerance of adaptive solvers")
    atol = Real(1e-6, bounds=(1e-12, 1.0), doc="absolute tolerance of adaptive solvers")
    fixed_steps = param.Integer(
        16, bounds=(1, 1000), doc="steps over the solve's time span taken by fixed-grid methods (euler, rk4, …)"
    )
    adjoint = param.Boolean(True, doc="backpropagate by the adjoint method (O(1) memory) instead of through the solver")
    max_nfe = param.Integer(
        DEFAULT_MAX_NFE, bounds=(10, 10_000_000), doc="evaluations of f one solve may use before it is stopped"
    )
    seed = param.Integer(0, bounds=(0, 2**31 - 1), doc="seed for data and initial weights (reset uses it)")

    # The params that make new data or a new architecture: setting one starts training over.
    restart_on: tuple[str, ...] = ("seed",)
    # How pictures are spaced while training runs (see Trainer): at least this many seconds apart, and
    # with a share set, in at most that share of the training thread's time.
    snapshot_interval: float = Trainer.snapshot_interval
    snapshot_share: float | None = None
    # Params that change what the loss adds up (a penalty's weight): after a change, a jump in the
    # loss is not a blow-up, so the recent losses it is compared with are forgotten.
    loss_params: tuple[str, ...] = ()
    # What a stand-in for the experiment (a page's view of one in a Dask worker, a follower's
    # read-only view; see ``proxy``) offers beyond start/pause/step/reset and the params: methods it
    # forwards to the experiment by name, and methods that only set params, which it runs itself.
    commands: tuple[str, ...] = ()
    param_methods: tuple[str, ...] = ()
    runs_remotely = True  # False: its page reads more than snapshots and history, so it stays in-process
    # The scalar a progress bar shows: the model's own loss, without penalties or models trained beside it.
    model_loss = "loss"

    def __init__(self, *, build_later: bool = False, state: dict | None = None, **params) -> None:
        # ``state``: go on from a saved run (``params`` override its settings; see load_state).
        if state is not None:
            params = {**check_state(state, type(self)), **params}
        self._restoring = False  # settings are being taken from a saved run: they start nothing over
        super().__init__(**params)
        self.device = default_device()
        self.trainer = Trainer(self, name=f"odeviz-{type(self).__name__}", snapshot_interval=self.snapshot_interval,
                               snapshot_share=self.snapshot_share)
        self.param.watch(lambda *events: self._restoring or self._restart(*events), list(self.restart_on))
        self.loss_watch = LossWatch()
        self.checkpoints = CheckpointRing()
        self.weights_version = 0  # grows whenever the weights change, so derived results can be cached
        self.model: torch.nn.Module
        self._optimizer: torch.optim.Optimizer | None = None
        if self.loss_params:
            self.param.watch(lambda _: self.trainer.submit(self.loss_watch.clear), list(self.loss_params))
        build = self.rebuild if state is None else lambda: self._apply_state(state)
        if build_later:
            # A page's experiment: the request that makes the page must not wait for data, models
            # and the first picture. The training thread builds them; the page shows them when its
            # first snapshot comes. (Headless code builds at once, so it may use ``model`` straight away.)
            self.trainer.submit(build)
            import_torch_compiler_soon()
        else:
            build()
            self.trainer.refresh()

    # ---- convenience controls -------------------------------------------------------------
    def start(self) -> None:
        self.trainer.start()

    def pause(self) -> None:
        self.trainer.pause()

    def step(self, count: int = 1) -> None:
        self.trainer.step(count)

    def reset(self) -> None:
        self.trainer.reset()

    def close(self) -> None:
        self.trainer.close()

    def _restart(self, *_events) -> None:
        # New data or a new architecture (a param of restart_on): start over, and keep training if it was.
        was_running = self.trainer.running
        self.trainer.reset()
        if was_running:
            self.trainer.start()

    # ---- solver settings ------------------------------------------------------------------
    def solver_config(self) -> SolverConfig:
        """How training solves, from the current params (read fresh every call)."""
        steps = None if self.method in ADAPTIVE_METHODS else self.fixed_steps
        return SolverConfig(self.method, self.rtol, self.atol, steps=steps, adjoint=self.adjoint, max_nfe=self.max_nfe)

    def display_solver(self) -> SolverConfig:
        """How pictures and measurements solve: as training, but nothing is backpropagated."""
        return replace(self.solver_config(), adjoint=False)

    @param.depends("method", "rtol", "atol", "fixed_steps", watch=True)
    def _redraw_with_new_solver(self) -> None:
        # A trained model is re-solved at once for display; training picks the change up next step.
        self.trainer.refresh()

    # ---- the Trainable protocol ------------------------------------------------------------
    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """Adam over the model's parameters, made when training first needs it (afresh after a rebuild,
        unless ``_build`` sets its own). torch imports its compiler the first time any optimizer is made (~1.8 s here),
        and a page's first picture needs no optimizer: it must not wait for that."""
        if self._optimizer is None:
            self._optimizer = torch.optim.Adam(self.model.parameters(), lr=self.learning_rate)
        return self._optimizer

    @optimizer.setter
    def optimizer(self, optimizer: torch.optim.Optimizer | None) -> None:
        self._optimizer = optimizer

    def rebuild(self) -> None:
        torch.manual_seed(self.seed)
        self.optimizer = None  # Adam over the new model, made at its first step
        self._build()
        self.forget_checkpoints()
        self.weights_version += 1

    def train_step(self, token: CancelToken) -> dict[str, float]:
        self.model.train()
        for group in self.optimizer.param_groups:
            group["lr"] = self._learning_rate()
        self.optimizer.zero_grad(set_to_none=True)
        loss, scalars, stats = self._loss(token)
        self.last_solve = stats  # its backward counts grow in .backward() below
        value = loss.item()
        trouble = self.loss_watch.trouble(value)
        if trouble:
            raise TrainingDiverged(trouble)
        with solver_errors():
            loss.backward()
        gradients = [p.grad for p in self.model.parameters() if p.grad is not None]
        # The largest |gradient| in one call (a check per tensor cost 0.6 ms a ResNet step); no overflow.
        if gradients and not torch.isfinite(get_total_norm(gradients, norm_type=math.inf)):
            raise TrainingDiverged("a gradient became NaN or infinite")
        self.checkpoints.keep(value, self.model, self.optimizer)
        self.loss_watch.add(value)
        self.optimizer.step()
        self.weights_version += 1
        nfe_forward, nfe_backward = (stats.nfe_forward, stats.nfe_backward or 0) if stats is not None else (0, 0)
        scalars.update(loss=value, nfe_forward=nfe_forward, nfe_backward=nfe_backward)
        return scalars

    def restore_last_good(self) -> None:
        # From before a spike: the newest weights whose loss was near the recent level, not the ones
        # a climbing loss had already spoiled.
        if self.checkpoints.restore(self.model, self.optimizer, below=self.loss_watch.top(RESTORE_FACTOR)):
            self.weights_version += 1

    def forget_checkpoints(self) -> None:
        """The models were rebuilt (or the one trained changed): old weights and losses no longer apply."""
        self.checkpoints.clear()
        self.loss_watch.clear()

    # ---- saving and loading: one mechanism for every experiment ---------------------------
    def state_dict(self, with_optimizer: bool = True) -> dict:
        """Where this experiment is, to go on from later: its kind, every setting, the weights and
        optimiser state (unless not wanted: a shipped model is a third the size without), the iteration and the
        history. Call it while nothing trains (or use :meth:`save`)."""
        return {
            "format": FORMAT, "experiment": type(self).__name__, "settings": settings_of(self),
            "weights": self._weights_state(with_optimizer), "extra": plain(self._extra_state()), "iteration": self.trainer.iteration,
            "history": plain(self.trainer.history.rows()),
        }

    def saved_state(self, timeout: float = 60.0) -> dict:
        """:meth:`state_dict`, taken on the training thread between iterations (training may go on)."""
        return self.trainer.call(self.state_dict).result(timeout)

    def save(self, path) -> Path:
        return write_state(self.saved_state(), path)

    def load(self, source, timeout: float = 60.0) -> None:
        """Go on from a file saved by :meth:`save` (a path, or the bytes of an uploaded file)."""
        self.load_state(read_state(source)).result(timeout)

    def load_state(self, state: dict, what: str = "the file") -> Future:
        """Take back a saved run: its settings at once (a file that does not fit is refused here with
        :class:`SavedStateError`, and nothing changes), its weights and history on the training thread;
        the Future fails with SavedStateError if its weights do not fit, and the run before it stays."""
        settings = check_state(state, type(self), what)
        self.pause()
        previous = {name: getattr(self, name) for name in settings}
        with self._taking_settings():
            self.param.update(settings)
        return self.trainer.call(lambda: self._apply_state(state, previous, what))

    @contextlib.contextmanager
    def _taking_settings(self):
        self._restoring = True
        try:
            yield
        finally:
            self._restoring = False

    def _apply_state(self, state: dict, previous: dict | None = None, what: str = "the file") -> None:
        kept = dict(vars(self))  # what _build replaces: put back if the weights do not fit
        try:
            self.rebuild()
            self._load_weights_state(state["weights"])
            self._load_extra_state(state.get("extra", {}))
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError):
            if previous is None:
                raise SavedStateError(f"{what} holds weights that do not fit the model its settings describe") from None
            vars(self).update(kept)
            self.weights_version += 1
            with self._taking_settings():
                self.param.update(previous)
            raise SavedStateError(f"{what} holds weights that do not fit the model its settings describe; "
                                  "the model you had is kept") from None
        self.forget_checkpoints()
        self.weights_version += 1
        self.trainer.restore_progress(state.get("iteration", 0), state.get("history", []))

    def _weights_state(self, with_optimizer: bool) -> dict:
        """What is trained, as state dicts (subclasses with more than one optimiser override both)."""
        return {"model": self.model.state_dict(), **({"optimizer": self.optimizer.state_dict()} if with_optimizer else {})}

    def _load_weights_state(self, weights: dict) -> None:
        self.model.load_state_dict(weights["model"])
        if "optimizer" in weights:  # else Adam starts afresh from these weights
            self.optimizer.load_state_dict(weights["optimizer"])

    def _extra_state(self) -> dict:
        """What else training goes on from (the state of a batch sampler): plain values and tensors."""
        return {}

    def _load_extra_state(self, extra: dict) -> None:
        pass

    # ---- for subclasses -------------------------------------------------------------------
    def _build(self) -> None:
        raise NotImplementedError

    def _loss(self, token: CancelToken) -> tuple[torch.Tensor, dict[str, float], SolveStats | None]:
        """The total loss, extra scalars to record, and the stats of the ODE solve (None: no solve)."""
        raise NotImplementedError

    def _learning_rate(self) -> float:
        """The step size of this iteration (subclasses may schedule it); the param by default."""
        return self.learning_rate
