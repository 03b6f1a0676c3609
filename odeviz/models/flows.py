"""Normalizing flows on 2-D densities: a continuous one (CNF, the paper's section 4) and planar flows.

Both are trained by maximum likelihood in the *normalising* direction, data x → base z ~ N(0, I):

- :class:`CNF`: dz/dt = f(z, t) on t ∈ [0, T] with z(0) = x. The instantaneous change of variables
  (the paper's Theorem 1), d log p(z(t))/dt = −tr(∂f/∂z), is integrated alongside z by
  :class:`~odeviz.numerics.dynamics.AugmentedDynamics` in the same solve, so
  log p(x) = log N(z(T); 0, I) − Δlogp with Δlogp = ∫₀ᵀ −tr(∂f/∂z) dt. Sampling runs the same ODE
  backwards, z(T) ~ N(0, I) → x = z(0). The field is a small MLP of concat-squash layers (FFJORD):
  every layer sees the time through a gate and a bias, so f can change along the flow.
- :class:`PlanarFlow`: K layers z ← z + u·tanh(wᵀz + b) (Rezende & Mohamed, 2015), each with
  log|det| = log|1 + uᵀψ(z)| in closed form; u is constrained so every layer is invertible, and
  sampling inverts a layer by bisection on the scalar wᵀz.

Points are given in data units; a fixed affine map (``shift``, ``scale``, chosen from the training data)
standardises them first, and its log-determinant is part of log p(x), so densities are in data units.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..numerics.dynamics import AugmentedDynamics
from ..numerics.solve import solve

LOG_TWO_PI = math.log(2 * math.pi)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) per row."""
    return -0.5 * (z * z).sum(1) - 0.5 * z.shape[1] * LOG_TWO_PI


class ConcatSquashLinear(nn.Module):
    """A linear layer whose output is gated and shifted by the time: (Wx + b)·σ(a t + c) + d t."""

    def __init__(self, fan_in: int, fan_out: int) -> None:
        super().__init__()
        self.linear = nn.Linear(fan_in, fan_out)
        self.gate = nn.Linear(1, fan_out)
        self.time_bias = nn.Linear(1, fan_out, bias=False)

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        # t is a scalar (a solve) or one time per row, shape (batch, 1) (batched display solves).
        t = t.reshape(-1, 1).to(x.dtype)
        return self.linear(x) * torch.sigmoid(self.gate(t)) + self.time_bias(t)


class ConcatSquashField(nn.Module):
    """f(z, t): ``depth`` hidden concat-squash layers of ``width`` units with tanh, then one to ``dim``.

    The last layer starts at zero, so an untrained flow is the identity and its density the base.
    """

    def __init__(self, dim: int = 2, width: int = 64, depth: int = 2) -> None:
        super().__init__()
        if width < 1 or depth < 1:
            raise ValueError(f"the vector field needs width ≥ 1 and depth ≥ 1, got width {width}, depth {depth}")
        sizes = [dim] + [width] * depth + [dim]
        self.layers = nn.ModuleList(ConcatSquashLinear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        last = self.layers[-1]
        for weight in (last.linear.weight, last.linear.bias, last.time_bias.weight):
            nn.init.zeros_(weight)

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            z = torch.tanh(layer(t, z))
        return self.layers[-1](t, z)

    def forward_with_jacobian(self, t: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """f(z, t) and its Jacobian ∂f/∂z exactly, in one pass: (batch, dim) and (dim, batch, dim) with
        ``[j, b, i] = ∂f_i/∂z_j`` at row b.

        The Jacobian is carried forward through the layers as ``dim`` tangents ∂h/∂z_j (forward-mode
        differentiation): in 2-D that is two extra products per layer, about three times cheaper to
        train through than the ``dim`` reverse-mode passes with ``create_graph`` the generic route needs,
        and it gives the trace and RNODE's Frobenius norm ‖∂f/∂z‖²_F exactly, with no estimator noise.
        """
        t = t.reshape(-1, 1).to(z.dtype)
        tangents = torch.eye(z.shape[1], dtype=z.dtype, device=z.device).unsqueeze(1)  # (dim, 1, dim)
        h = z
        for index, layer in enumerate(self.layers):
            gate = torch.sigmoid(layer.gate(t))
            h = layer.linear(h) * gate + layer.time_bias(t)
            tangents = (tangents @ layer.linear.weight.T) * gate  # (dim, 1 or batch, units)
            if index < len(self.layers) - 1:
                h = torch.tanh(h)
                tangents = tangents * (1.0 - h * h)
        return h, tangents.expand(-1, z.shape[0], -1)

    def forward_with_trace(self, t: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """f(z, t) and tr(∂f/∂z) exactly, in one pass (see :meth:`forward_with_jacobian`)."""
        h, jacobian = self.forward_with_jacobian(t, z)
        return h, torch.diagonal(jacobian, dim1=0, dim2=2).sum(-1)


class TimeWindows(nn.Module):
    """Many solves over different time windows as one: row i follows f from ``start[i]`` to ``end[i]``.

    With s ∈ [0, 1] and t = start + s·(end − start), dz/ds = (end − start)·f(z, t); the change of
    variables scales the same way, so one batched solve over s gives every window's Δlogp.
    """

    def __init__(self, field: nn.Module, start: torch.Tensor, end: torch.Tensor) -> None:
        super().__init__()
        self.field = field
        self.start, self.span = start.reshape(-1, 1), (end - start).reshape(-1, 1)

    def forward(self, s: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.span * self.field(self.start + s * self.span, z)

    def forward_with_trace(self, s: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dz, trace = self.field.forward_with_trace(self.start + s * self.span, z)
        return self.span * dz, self.span[:, 0] * trace


class Standardise(nn.Module):
    """x ↦ (x − shift)/scale, with log|det| = −dim·log(scale) per point."""

    def __init__(self, dim: int = 2) -> None:
        super().__init__()
        self.register_buffer("shift", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(()))

    def fit(self, points: torch.Tensor) -> None:
        self.shift.copy_(points.mean(0))
        self.scale.copy_(points.std().clamp_min(1e-12))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_det = -x.shape[1] * torch.log(self.scale)
        return (x - self.shift) / self.scale, log_det.expand(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.scale + self.shift


class CNF(nn.Module):
    """A continuous normalizing flow on ``dim``-D points (see the module docstring)."""

    def __init__(
        self, dim: int = 2, width: int = 64, depth: int = 2, divergence: str = "exact",
        regularize: bool = False, horizon: float = 1.0,
    ) -> None:
        super().__init__()
        if divergence not in ("exact", "hutchinson"):
            raise ValueError(f"divergence must be 'exact' or 'hutchinson', got {divergence!r}")
        self.dim, self.horizon = dim, float(horizon)
        self.standardise = Standardise(dim)
        self.field = ConcatSquashField(dim, width, depth)
        # Training uses the configured trace (and regularisers); densities shown or returned are exact.
        self.dynamics = AugmentedDynamics(self.field, dim, divergence=divergence, regularize=regularize)
        self.exact_dynamics = AugmentedDynamics(self.field, dim, divergence="exact")

    def normalise(self, x: torch.Tensor, exact: bool = False, **solver):
        """x → z(T): (z(T), log p(x) per point, the integrals by name, solve stats), with the training
        trace estimator and regularisers unless ``exact``.

        ``solver`` goes to :func:`odeviz.solve` (method, rtol, atol, adjoint, token, max_nfe, …).
        """
        dynamics = self.exact_dynamics if exact else self.dynamics
        y, log_det = self.standardise(x)
        dynamics.resample()
        ys, stats = solve(dynamics, dynamics.initial_state(y), [0.0, self.horizon], **solver)
        parts = dynamics.split(ys[-1])
        log_prob = standard_normal_log_prob(parts["z"]) - parts["delta_logp"] + log_det
        return parts["z"], log_prob, parts, stats

    def log_prob(self, x: torch.Tensor, **solver) -> torch.Tensor:
        """log p(x) per point, with the exact trace."""
        return self.normalise(x, exact=True, **solver)[1]

    def generate(self, z: torch.Tensor, times, **solver):
        """Base points z = z(T) carried back to the data: their states at each generative fraction in
        ``times`` (0 = base, 1 = data), in data units, shape (len(times), n, dim); and the solve stats."""
        ode_times = [self.horizon * (1.0 - float(s)) for s in times]
        ys, stats = solve(self.field, z, ode_times, **solver)
        return self.standardise.inverse(ys), stats

    def sample(self, n: int, generator: torch.Generator | None = None, **solver) -> torch.Tensor:
        z = torch.randn(n, self.dim, generator=generator, dtype=self.standardise.scale.dtype)
        return self.generate(z, [0.0, 1.0], **solver)[0][-1]

    def densities_over_time(self, x: torch.Tensor, fractions, **solver):
        """log p_s(x) of the density the flow has carried the base to at each generative fraction s.

        At fraction s the points sit at ODE time τ = T(1 − s); their density is the base pushed back
        from T to τ: log p_s(x) = log N(z(T)) − ∫_τ^T −tr(∂f/∂z) dt. All fractions are one batched solve
        (:class:`TimeWindows`). Returns (len(fractions), n) log densities in data units, and the stats.
        """
        y, log_det = self.standardise(x)
        starts = torch.cat([torch.full((len(y),), self.horizon * (1.0 - float(s)), dtype=y.dtype) for s in fractions])
        windows = TimeWindows(self.field, starts, torch.full_like(starts, self.horizon))
        dynamics = AugmentedDynamics(windows, self.dim, divergence="exact")
        ys, stats = solve(dynamics, dynamics.initial_state(y.repeat(len(fractions), 1)), [0.0, 1.0], **solver)
        parts = dynamics.split(ys[-1])
        log_prob = standard_normal_log_prob(parts["z"]) - parts["delta_logp"] + log_det.repeat(len(fractions))
        return log_prob.reshape(len(fractions), len(y)), stats


class PlanarFlow(nn.Module):
    """K planar layers in the normalising direction, x → z; invertible by construction."""

    def __init__(self, dim: int = 2, layers: int = 8) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"a planar flow needs at least 1 layer, got {layers}")
        self.dim, self.layers = dim, layers
        self.standardise = Standardise(dim)
        self.w = nn.Parameter(0.5 * torch.randn(layers, dim))
        self.u = nn.Parameter(0.5 * torch.randn(layers, dim))
        self.b = nn.Parameter(torch.zeros(layers))

    def _u_hat(self) -> torch.Tensor:
        """u moved along w so that wᵀû ≥ −1: then each layer is monotone along w, hence invertible."""
        wu = (self.w * self.u).sum(1, keepdim=True)
        return self.u + (F.softplus(wu) - 1.0 - wu) * self.w / (self.w * self.w).sum(1, keepdim=True)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        z, log_det = self.standardise(x)
        u = self._u_hat()
        for k in range(self.layers):
            h = torch.tanh(z @ self.w[k] + self.b[k])
            log_det = log_det + torch.log(torch.abs(1.0 + (1.0 - h * h) * (u[k] @ self.w[k])) + 1e-12)
            z = z + h[:, None] * u[k]
        return standard_normal_log_prob(z) + log_det

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, iterations: int = 60) -> torch.Tensor:
        """Base samples pushed through the inverse layers, last to first, in data units."""
        z = torch.randn(n, self.dim, generator=generator, dtype=self.w.dtype)
        u = self._u_hat()
        for k in reversed(range(self.layers)):
            # y = z + u tanh(wᵀz + b): solve wᵀy = a + wᵀu tanh(a + b) for a = wᵀz by bisection (monotone in a).
            target, wu = z @ self.w[k], u[k] @ self.w[k]
            low, high = target - wu.abs() - 1.0, target + wu.abs() + 1.0
            for _ in range(iterations):
                middle = 0.5 * (low + high)
                above = middle + wu * torch.tanh(middle + self.b[k]) > target
                low, high = torch.where(above, low, middle), torch.where(above, middle, high)
            z = z - torch.tanh(0.5 * (low + high) + self.b[k])[:, None] * u[k]
        return self.standardise.inverse(z)
