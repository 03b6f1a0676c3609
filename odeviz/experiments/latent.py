"""The paper's Section 5 as an experiment: a latent ODE and an RNN learn irregularly sampled spirals.

Both models train side by side on the same batches (one Adam over their disjoint parameters): the
latent ODE on the ELBO, the RNN on one-step predictions over the observed windows. Neither ever sees
a held-out continuation; both are scored there, on the test series, by RMSE against the noise-free
curve (the paper's Table 2). Snapshots show one test series: its observations (which the user may
add to or remove from: the posterior is inferred again at once, no retraining), the latent ODE's
reconstruction and extrapolation on a dense grid with a fan of posterior samples, the RNN's
autoregressive prediction, and the latent trajectory z(t) with the solver's evaluation times.
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import param
import torch
from torch import nn

from ..data.spirals import MAX_OBSERVATIONS, MIN_OBSERVATIONS, NOISE_STD, SeriesSet, spirals
from ..models.latent import LatentODE, rmse, rnn_matching
from ..numerics.config import SolverConfig
from ..numerics.solve import CancelToken, Solution, solve
from .base import Experiment, Real, cosine_decay

DISPLAY_POINTS = 240  # times of the dense display grid, from 0 to the horizon's end
EVALUATE_EVERY = 10  # iterations between test-set RMSEs recorded in the history
SNAPSHOT_SHARE = 0.2  # of the training thread's time, at most, for pictures while training runs
SAVE_FORMAT = "odeviz-latent-1"
LR_FLOOR = 0.1  # of the learning rate, where its cosine decay ends


@dataclass(frozen=True)
class LatentSnapshot:
    """What the latent page draws, as numpy arrays, for one test series; times on the series' clock."""

    iteration: int
    series: int  # index into the test series
    series_count: int  # how many test series there are
    solver: SolverConfig  # of the display solve
    curve_t: np.ndarray  # (K,) the true curve
    curve_x: np.ndarray  # (K, D)
    obs_t: np.ndarray  # (L,) the observations the posterior is inferred from (edits included)
    obs_x: np.ndarray  # (L, D)
    edited: bool  # the user added or removed observations
    observed_until: float  # end of the observed window
    horizon_end: float  # end of the extrapolation shown and scored
    times: np.ndarray  # (G,) dense grid, 0 … horizon_end
    ode_x: np.ndarray  # (G, D) decoded from the posterior mean of z₀
    sample_x: np.ndarray  # (S, G, D) decoded from posterior samples of z₀
    rnn_t: np.ndarray  # (M,) where the RNN predicts: the series' scoring times within the horizon
    rnn_x: np.ndarray  # (M, D)
    latent_z: np.ndarray  # (G, 2) first two coordinates of z(t) from the posterior mean (0 if latent_dim = 1)
    eval_times: np.ndarray  # (E,) where the solver evaluated f
    eval_z: np.ndarray  # (E, 2) z at those times
    z0_mean: np.ndarray  # (latent,)
    z0_std: np.ndarray  # (latent,)
    nfe_forward: int  # of the display solve
    rmse_ode: float  # over the test set, on the extrapolated part within the horizon
    rmse_rnn: float


class LatentODEExperiment(Experiment):
    """A latent ODE and its RNN baseline on irregularly sampled spirals (or the user's series)."""

    observations = param.Integer(30, bounds=(MIN_OBSERVATIONS, MAX_OBSERVATIONS),
                                 doc="observations per spiral, at irregular times of its window (the paper: 30, 50, 100)")
    dataset = param.ClassSelector(class_=SeriesSet, default=None, allow_None=True,
                                  doc="the user's own series (None: generated spirals)")
    latent_dim = param.Integer(4, bounds=(1, 32), doc="dimensions of the latent state z")
    hidden = param.Integer(20, bounds=(4, 256), doc="hidden units of the latent field f(z) and of the decoder")
    encoder_hidden = param.Integer(25, bounds=(4, 256), doc="hidden units of the recognition GRU")
    batch_size = param.Integer(100, bounds=(8, 1000), doc="series per training iteration (at most all of them)")
    horizon = Real(1.0, bounds=(0.1, 1.0), doc="how far past the observed window to extrapolate, in window lengths")
    posterior_samples = param.Integer(12, bounds=(0, 50), doc="samples of z₀ ~ q(z₀) drawn as a fan")
    series = param.Integer(0, bounds=(0, 10_000), doc="which test series is shown")
    decay_iterations = param.Integer(
        1000, bounds=(0, 10_000_000),
        doc=f"iterations over which the learning rate falls along a cosine to {LR_FLOOR:.0%} of its value, then stays (0: constant)")
    kl_warmup = param.Integer(
        100, bounds=(0, 10_000_000),
        doc="iterations over which the KL term's weight in the loss rises from 0 to 1 (KL annealing: the decoder "
            "learns to use z₀ before the prior pulls q(z₀) in; 0: the ELBO from the start)")
    # Above the example's 1e-2 while the cosine decay is high: the spirals are learnt in fewer steps (at
    # 100 observations, test RMSE 0.47 in ~350 iterations where 1e-2 took ~650; 3e-2 stalled near 0.5).
    learning_rate = Real(1.5e-2)
    adjoint = param.Boolean(False, doc="backpropagate by the adjoint method (O(1) memory) instead of through the solver")
    atol = Real(1e-4, bounds=(1e-12, 1.0), doc="absolute tolerance of adaptive solvers")

    loss_params = ("kl_warmup",)
    restart_on = ("observations", "dataset", "latent_dim", "hidden", "encoder_hidden", "seed")
    snapshot_share = SNAPSHOT_SHARE

    def __init__(self, **params) -> None:
        self._rmse_cache: tuple = (None, (math.nan, math.nan))
        self._last_rmse = (math.nan, math.nan)
        # Where the RNN learns beside the latent ODE (see _loss); one thread for the experiment's life.
        self._beside = ThreadPoolExecutor(1, thread_name_prefix="odeviz-latent-rnn")
        super().__init__(**params)

    def close(self) -> None:
        super().close()
        self._beside.shutdown(wait=False)

    # ---- the one place this experiment solves its latent ODE ------------------------------------
    def _solve(self, z0: torch.Tensor, times: torch.Tensor, solver: SolverConfig, token: CancelToken | None) -> Solution:
        return solve(self.model["ode"].field, z0, times, solver=solver, token=token)

    def _integrator(self, solver: SolverConfig, token: CancelToken | None):
        return lambda _field, z0, times: self._solve(z0, times, solver, token)

    # ---- building -------------------------------------------------------------------------------
    def _build(self) -> None:
        data = self.dataset if self.dataset is not None else spirals(self.observations, seed=self.seed)
        self.train_data, self.test_data = data.split(seed=self.seed)
        self.param.series.bounds = (0, len(self.test_data) - 1)
        self._train = self._tensors(self.train_data)
        self._test = self._tensors(self.test_data)
        ode = LatentODE(data.dim, self.latent_dim, self.hidden, self.encoder_hidden)
        self.model = nn.ModuleDict({"ode": ode, "rnn": rnn_matching(ode, data.dim)}).to(self.device)
        self._batches = torch.Generator().manual_seed(self.seed)
        self._display_noise = torch.Generator()
        self._last_rmse = (math.nan, math.nan)
        self._show_series()

    def _tensors(self, data: SeriesSet) -> dict[str, torch.Tensor]:
        as_float = lambda a: torch.as_tensor(a, dtype=torch.float32, device=self.device)  # noqa: E731
        return {"t": as_float(data.obs_t), "x": as_float(data.obs_x), "count": torch.as_tensor(data.obs_count),
                "future_t": as_float(data.future_t), "future_x": as_float(data.future_x),
                "future_count": torch.as_tensor(data.future_count), "until": as_float(data.observed_until)}

    @param.depends("series", watch=True)
    def _change_series(self) -> None:
        self.trainer.submit(self._show_series)

    @param.depends("horizon", "posterior_samples", watch=True)
    def _redraw(self) -> None:
        self.trainer.refresh()

    def use_file(self, path) -> None:
        """Learn the series of a .csv or .npz file (ValueError with the file and the reason if not)."""
        from ..data.spirals import read_series

        self.dataset = read_series(path)

    # ---- the shown series' observations (touched on the training thread only) -------------------
    def _show_series(self) -> None:
        index = min(self.series, len(self.test_data) - 1)
        self._shown_index = index
        t, x = self.test_data.observations(index)
        self._shown = (t.copy(), x.copy())
        self._edited = False

    def add_observation(self, t: float, x) -> None:
        """Observe the shown series at time ``t`` with value ``x`` (D numbers); the posterior follows at once."""
        t, x = float(t), np.asarray(x, dtype=float).ravel()
        if not math.isfinite(t) or not np.isfinite(x).all():
            raise ValueError(f"an observation needs a finite time and values, got t = {t}, x = {x.tolist()}")
        if t < 0:
            raise ValueError(f"an observation's time must be at or after 0 (the start of the series), not {t:g}")
        if len(x) != self.test_data.dim:
            raise ValueError(f"an observation of this series has {self.test_data.dim} values, not {len(x)}")
        self.trainer.submit(lambda: self._insert(t, x))

    def _insert(self, t: float, x: np.ndarray) -> None:
        times, values = self._shown
        if np.isclose(times, t, rtol=0, atol=1e-6).any():
            return  # the same time twice would make the encoder refuse the series; one is enough
        at = int(np.searchsorted(times, t))
        self._shown = (np.insert(times, at, t), np.insert(values, at, x, axis=0))
        self._edited = True

    def remove_observation(self, index: int) -> None:
        """Forget the shown series' ``index``-th observation (in time order); at least one stays."""
        self.trainer.submit(lambda: self._delete(int(index)))

    def _delete(self, index: int) -> None:
        times, values = self._shown
        if len(times) > 1 and 0 <= index < len(times):
            self._shown = (np.delete(times, index), np.delete(values, index, axis=0))
            self._edited = True

    def reset_observations(self) -> None:
        self.trainer.submit(self._show_series)

    # ---- training -------------------------------------------------------------------------------
    def _loss(self, token: CancelToken):
        data = self._train
        count = min(self.batch_size, len(data["t"]))
        batch = torch.randperm(len(data["t"]), generator=self._batches)[:count]
        t, x, observed = data["t"][batch], data["x"][batch], data["count"][batch]
        # The RNN learns on a second thread meanwhile (its own forward and backward pass: torch's
        # operators release the GIL, and the two models share nothing), so its third of an
        # iteration costs no time where a second core is free.
        rnn_learnt = self._beside.submit(self._rnn_loss_backward, t, x, observed)
        try:
            elbo = self.model["ode"].elbo(t, x, observed, NOISE_STD, self._integrator(self.solver_config(), token))
        except BaseException:  # a cancelled solve: the RNN's pass ends before anything else touches the model
            wait([rnn_learnt])
            raise
        rnn_loss = rnn_learnt.result()
        kl_weight = min(1.0, self.trainer.iteration / self.kl_warmup) if self.kl_warmup else 1.0
        if self.trainer.iteration % EVALUATE_EVERY == 0:
            self._last_rmse = self.test_rmse(token)
        scalars = {"elbo": -elbo.loss.item(), "log_likelihood": elbo.log_likelihood.item(), "kl": elbo.kl.item(),
                   "rnn_mse": rnn_loss.item(), "rmse_ode": self._last_rmse[0], "rmse_rnn": self._last_rmse[1]}
        # (The RNN's gradients are in already: its loss is added as a number, for the blow-up watch.)
        return kl_weight * elbo.kl - elbo.log_likelihood + rnn_loss, scalars, elbo.stats

    def _rnn_loss_backward(self, t: torch.Tensor, x: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        loss = self.model["rnn"].one_step_loss(t, x, observed)
        loss.backward()
        return loss.detach()

    def _learning_rate(self) -> float:
        progress = self.trainer.iteration / self.decay_iterations if self.decay_iterations else None
        return cosine_decay(self.learning_rate, progress, LR_FLOOR)

    # ---- scoring --------------------------------------------------------------------------------
    def _horizon_end(self, until: torch.Tensor | float) -> torch.Tensor | float:
        return until + self.horizon * self.test_data.window

    @torch.no_grad()
    def test_rmse(self, token: CancelToken | None = None) -> tuple[float, float]:
        """(latent ODE, RNN) RMSE on the test series' held-out continuations within the horizon, from
        the posterior mean of z₀; cached until the weights or the settings change."""
        solver = self.display_solver()
        key = (self.weights_version, self.horizon, solver)
        if self._rmse_cache[0] == key:
            return self._rmse_cache[1]
        self.model.eval()
        data = self._test
        within = data["future_t"] <= self._horizon_end(data["until"])[:, None]
        count = torch.minimum(data["future_count"], within.sum(1))
        mean, _ = self.model["ode"].encoder(data["t"], data["x"], data["count"])
        decoded = self.model["ode"].decode(mean, data["future_t"], self._integrator(solver, token))
        predicted = self.model["rnn"].extrapolate(data["t"], data["x"], data["count"], data["future_t"])
        scores = (rmse(decoded.x, data["future_x"], count), rmse(predicted, data["future_x"], count))
        self._rmse_cache = (key, scores)
        return scores

    # ---- display --------------------------------------------------------------------------------
    @torch.no_grad()
    def snapshot(self, token: CancelToken, iteration: int) -> LatentSnapshot:
        self.model.eval()
        ode, rnn = self.model["ode"], self.model["rnn"]
        index, (obs_t, obs_x) = self._shown_index, self._shown
        data = self.test_data
        until = float(data.observed_until[index])
        end = max(float(self._horizon_end(until)), float(obs_t[-1]))
        as_float = lambda a: torch.as_tensor(a, dtype=torch.float32, device=self.device)  # noqa: E731
        t, x, count = as_float(obs_t)[None], as_float(obs_x)[None], torch.tensor([len(obs_t)])
        mean, logvar = ode.encoder(t, x, count)
        self._display_noise.manual_seed(self.seed)  # the same fan from frame to frame: only the model moves
        samples = ode.sample_z0(mean, logvar, self.posterior_samples, self._display_noise)[:, 0]
        times = np.linspace(0.0, end, DISPLAY_POINTS)
        z, stats = self._solve(torch.cat([mean, samples]), as_float(times), self.display_solver(), token)  # (G, 1 + S, latent)
        decoded = ode.decoder(z).cpu().numpy()
        future = data.future_t[index, : data.future_count[index]]
        rnn_t = future[future <= end]
        rnn_x = rnn.extrapolate(t, x, count, as_float(rnn_t)[None])[0] if len(rnn_t) else torch.zeros(0, data.dim)
        latent = np.zeros((len(times), 2))
        shown = min(2, ode.latent_dim)
        latent[:, :shown] = z[:, 0, :shown].cpu().numpy()
        eval_times = np.clip(stats.eval_times, 0.0, end)
        rmse_ode, rmse_rnn = self.test_rmse(token)
        curve = slice(0, data.curve_count[index])
        return LatentSnapshot(
            iteration=iteration, series=index, series_count=len(data), solver=stats.solver,
            curve_t=data.curve_t[index, curve], curve_x=data.curve_x[index, curve],
            obs_t=obs_t, obs_x=obs_x, edited=self._edited, observed_until=until, horizon_end=end,
            times=times, ode_x=decoded[:, 0], sample_x=decoded[:, 1:].transpose(1, 0, 2),
            rnn_t=rnn_t, rnn_x=rnn_x.cpu().numpy(), latent_z=latent, eval_times=eval_times,
            eval_z=np.stack([np.interp(eval_times, times, latent[:, k]) for k in range(2)], 1),
            z0_mean=mean[0].cpu().numpy(), z0_std=(0.5 * logvar[0]).exp().cpu().numpy(),
            nfe_forward=stats.nfe_forward, rmse_ode=rmse_ode, rmse_rnn=rmse_rnn,
        )

    def save(self, path) -> Path:
        """The trained latent ODE and RNN, their sizes and how long they trained, as plain tensors."""
        path = Path(path)
        torch.save({
            "format": SAVE_FORMAT,
            "config": {"obs_dim": self.test_data.dim, "latent_dim": self.latent_dim, "hidden": self.hidden,
                       "encoder_hidden": self.encoder_hidden, "rnn_hidden": self.model["rnn"].gru.hidden_size},
            "state_dict": self.model.state_dict(),
            "metadata": {"data": self.test_data.name, "iterations": self.trainer.iteration},
        }, path)
        return path
